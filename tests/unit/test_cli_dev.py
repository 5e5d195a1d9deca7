"""What `bridge dev` prints when it is ready: generated secrets cut, and the README showing the same."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from timeline_bridge_tools.cli.dev import banner, shown_secret
from timeline_bridge_tools.local import state as state_files

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRETS = (
    "GENERIC_WEBHOOK_SECRET",
    "HUBSPOT_CLIENT_SECRET",
    "PIPEDRIVE_BASIC_AUTH",
    "SLACK_SIGNING_SECRET",
)


def fake_runtime(generated: dict[str, str], mappings: dict[str, Any] | None = None) -> Any:
    """The parts of a started `LocalRuntime` the banner reads."""
    loaded = mappings or {"folder": "mappings", "names": ["hubspot-deal-stage-to-stora"], "errors": []}
    return SimpleNamespace(
        loaded_mappings=lambda: loaded,
        startup_seconds=1.3,
        webhook_urls={"hubspot": "http://127.0.0.1:3000/hubspot"},
        url="http://127.0.0.1:3000",
        generated_secrets=list(generated),
        secret_values=dict(generated),
        targets=lambda: {"stora": {"real": False, "url": "http://127.0.0.1:43129"}},
        aws_endpoint_url="http://127.0.0.1:41145",
        root=ROOT,
    )


def secret_lines(text: str) -> dict[str, str]:
    """NAME -> value shown, from the lines under the "Development secrets" heading."""
    block = text.split("Development secrets", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"^  ([A-Z_]+) +(\S+)$", block, flags=re.MULTILINE))


def test_generated_secrets_are_printed_cut_with_where_the_full_values_are_when_generated_now() -> None:
    generated = {name: state_files.generate_secret(name) for name in WEBHOOK_SECRETS}

    printed = banner(fake_runtime(generated))

    for value in generated.values():
        assert value not in printed
    shown = secret_lines(printed)
    assert set(shown) == set(WEBHOOK_SECRETS)
    for name, value in generated.items():
        assert shown[name].endswith("…") and value.startswith(shown[name].removesuffix("…"))
        assert len(shown[name]) - 1 <= len(value) // 3  # never more than a third of the value
    assert ".bridge/secrets.json, mode 0600" in printed


def test_readme_shows_the_secret_lines_bridge_dev_prints_when_secrets_are_generated() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    generated = {name: state_files.generate_secret(name) for name in WEBHOOK_SECRETS}
    printed = banner(fake_runtime(generated))

    heading = next(line for line in printed.splitlines() if line.startswith("Development secrets"))
    assert heading in readme.splitlines()
    documented = secret_lines(readme)
    assert set(documented) == set(WEBHOOK_SECRETS)
    for name, value in documented.items():
        # Same shape as printed: the value's first characters (as many as the code shows), then "…".
        assert len(value) == len(shown_secret(generated[name])), name
        assert value.endswith("…"), name


def test_a_short_secret_shows_at_most_a_third_of_itself_when_cut() -> None:
    assert shown_secret("abcdefghi") == "abc…"
    assert shown_secret("ab") == "…"
    assert shown_secret("whsec_" + "A" * 32) == "whsec_AAAAAA…"


def test_the_mappings_loaded_at_start_are_listed_on_one_line_when_bridge_dev_is_ready() -> None:
    names = ["hubspot-deal-stage-to-matter", "hubspot-deal-stage-to-stora"]
    loaded = {"folder": "mappings", "names": names, "errors": []}

    printed = banner(fake_runtime({}, loaded)).splitlines()

    assert (
        "Mappings       2 from mappings/ (reloaded when a file changes): "
        "hubspot-deal-stage-to-matter, hubspot-deal-stage-to-stora"
    ) in printed


def test_why_no_mapping_is_loaded_is_printed_when_the_folder_is_invalid_at_start() -> None:
    error = "mappings/m.yaml:8: target: 'nowhere' is not a target"
    loaded = {"folder": "mappings", "names": [], "errors": [error]}

    printed = banner(fake_runtime({}, loaded)).splitlines()

    heading = printed.index("Mappings       none loaded: 1 error(s) in mappings/ (fixed files are reloaded)")
    assert printed[heading + 1] == f"  {error}"
