"""`bridge dev` reloads the route function's mapping files when they change: a file dropped in is
routed with, an invalid edit keeps the running set and says why (file and line), a file removed
is routed with no more. Each test runs its own runtime on a copy of the project's mappings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_local_runtime import ROOT, SAMPLE, bridge_send, sample_deal_id, stored_with, wait_for
from timeline_bridge_tools.local.runtime import LocalRuntime

STORA = "hubspot-deal-stage-to-stora"
MATTER = "hubspot-deal-stage-to-matter"
RELOAD_SECONDS = 10.0  # the watcher looks twice a second and waits for a change to settle


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """The route function's mappings folder: the HubSpot → Stora and HubSpot → Matter mappings."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in (STORA, MATTER):
        shutil.copy(ROOT / "mappings" / f"{name}.yaml", folder)
    return folder


@pytest.fixture
def said() -> list[str]:
    """What the runtime printed to the terminal."""
    return []


def runtime_on(mappings_dir: Path, state_dir: Path, said: list[str]) -> LocalRuntime:
    """A runtime (not started) whose route function reads `mappings_dir`, printing into `said`."""
    return LocalRuntime(
        ROOT,
        port=0,
        state_dir=state_dir,
        environ={"BRIDGE_MAPPINGS_DIR": str(mappings_dir)},
        log_level="WARNING",
        echo=said.append,
    )


@pytest.fixture
def runtime(tmp_path: Path, mappings_dir: Path, said: list[str]) -> Iterator[LocalRuntime]:
    with runtime_on(mappings_dir, tmp_path, said) as running:
        yield running


def loaded(runtime: LocalRuntime) -> list[str]:
    return list(runtime.console_state()["mappings"]["names"])


def delivered_to(runtime: LocalRuntime, tmp_path: Path, targets: tuple[str, ...]) -> bool:
    """Send the HubSpot sample; True once every one of `targets` has stored it."""
    sent = bridge_send(tmp_path, "hubspot", str(SAMPLE))
    assert sent.returncode == 0 and sent.stdout.startswith("200 "), sent.stdout + sent.stderr
    deal = sample_deal_id()
    return wait_for(lambda: all(stored_with(runtime, t, deal) for t in targets), timeout=10.0)


def test_a_mapping_file_dropped_into_the_folder_is_routed_with_when_the_next_event_arrives(
    tmp_path: Path, mappings_dir: Path, said: list[str]
) -> None:
    (mappings_dir / f"{MATTER}.yaml").unlink()
    with runtime_on(mappings_dir, tmp_path, said) as runtime:
        assert loaded(runtime) == [STORA]

        shutil.copy(ROOT / "mappings" / f"{MATTER}.yaml", mappings_dir)

        assert wait_for(lambda: loaded(runtime) == [MATTER, STORA], RELOAD_SECONDS), said
        assert f"mappings reloaded from {mappings_dir}: {MATTER}, {STORA}" in said
        assert runtime.console_state()["mappings"]["errors"] == []
        assert delivered_to(runtime, tmp_path, ("stora", "matter")), runtime.console_state()["jobs"]


def test_an_invalid_edit_keeps_the_running_set_and_names_the_file_and_line_when_checked(
    runtime: LocalRuntime, tmp_path: Path, mappings_dir: Path, said: list[str]
) -> None:
    matter = mappings_dir / f"{MATTER}.yaml"
    valid = matter.read_text("utf-8")
    assert "\ntarget: matter\n" in valid.split("# ", 1)[0]  # line 8, the edit below
    matter.write_text(valid.replace("\ntarget: matter\n", "\ntarget: nowhere\n"), "utf-8")

    state = lambda: runtime.console_state()["mappings"]  # noqa: E731
    assert wait_for(lambda: state()["errors"], RELOAD_SECONDS), said
    errors = state()["errors"]
    assert errors[0].startswith(f"{matter}:8: target: "), errors
    assert state()["names"] == [MATTER, STORA] and state()["failed_at"]
    assert f"mappings NOT reloaded from {mappings_dir} (still routing with: {MATTER}, {STORA}):" in said
    assert f"  {errors[0]}" in said
    page = runtime.console_html()
    assert 'id="mapping-errors"' in page and f"{matter.name}:8: target:" in page

    # The running set routes on: the Matter mapping as it was before the edit.
    assert delivered_to(runtime, tmp_path, ("stora", "matter")), runtime.console_state()["jobs"]

    matter.write_text(valid, "utf-8")  # fixed: the next reload clears the error
    assert wait_for(lambda: not state()["errors"], RELOAD_SECONDS), said
    assert state()["names"] == [MATTER, STORA]


def test_removing_a_mapping_file_stops_its_mapping_when_the_next_event_is_routed(
    runtime: LocalRuntime, tmp_path: Path, mappings_dir: Path, said: list[str]
) -> None:
    assert loaded(runtime) == [MATTER, STORA]
    before = len(runtime.sandboxes["matter"].events())

    (mappings_dir / f"{MATTER}.yaml").unlink()

    assert wait_for(lambda: loaded(runtime) == [STORA], RELOAD_SECONDS), said
    assert f"mappings reloaded from {mappings_dir}: {STORA}" in said
    assert delivered_to(runtime, tmp_path, ("stora",)), runtime.console_state()["jobs"]
    runtime.wait_idle()
    assert len(runtime.sandboxes["matter"].events()) == before
    assert {j["mapping"] for j in runtime.console_state()["jobs"]} == {STORA}
