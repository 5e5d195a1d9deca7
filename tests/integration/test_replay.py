"""`bridge replay` against moto and the provider sandboxes: after a mapping was added, a dry run
counts the jobs it would add and the ones already delivered and moves nothing; a replay, run twice,
leaves one timeline event per (event, mapping) in the providers' stores; an interrupted replay
resumes with the archive objects it had not sent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery_harness import (
    FAULT_MAPPINGS,
    Pipeline,
    delivered_keys,
    envelopes,
    scale_sandboxes,
    set_scaled_env,
)
from timeline_bridge import TARGETS
from timeline_bridge.archive import ArchivedEvent, ArchivedJob, EventArchive
from timeline_bridge.models import DeliveryJob, Envelope, utc_now_iso
from timeline_bridge_tools import history, replay
from timeline_bridge_tools.cli import main
from timeline_bridge_tools.local import moto_sqs

BUCKET = "timeline-bridge-test-replay"
ADDED = "fault-generic-invoice-to-matter"  # the mapping that was missing when the events came


@pytest.fixture(autouse=True)
def scaled_world(aws: Any, sandboxes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from timeline_bridge.observability import logger

    # Not delivery_harness.fast_moto: its unsigned requests break moto S3's checksums.
    moto_sqs.thread_safe(monkeypatch.setattr)
    set_scaled_env(monkeypatch)
    scale_sandboxes(sandboxes)
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.fixture
def archive(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EventArchive:
    """An archive bucket where the tools look for it; run from an empty folder (its `.bridge/`
    holds the replays' progress), so no `bridge dev` of the working tree is found."""
    import boto3

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.chdir(tmp_path)
    return EventArchive(BUCKET, s3)


def without_added_mapping(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings-before"
    folder.mkdir()
    for path in FAULT_MAPPINGS.glob("*.yaml"):
        if path.stem != ADDED:
            shutil.copy(path, folder / path.name)
    return folder


def route_and_archive(aws: Any, archive: EventArchive, events: list[Envelope], mappings: Path) -> None:
    """The events as they came: routed and delivered through `mappings`, each archived with the
    jobs it became (the archive is switched on only after, so route writes none of its own)."""
    before = Pipeline(aws, mappings_dir=mappings)
    before.send(events)
    before.run(timeout=60)
    lines = []
    for event in events:
        jobs = [
            ArchivedJob(o.mapping, o.target, o.key)
            for o in before.router.mappings.render_jobs(event)
            if isinstance(o, DeliveryJob)
        ]
        lines.append(ArchivedEvent(event, utc_now_iso(), jobs))
    half = len(lines) // 2
    archive.write(lines[:half])  # two route batches: two objects per (hour, source)
    archive.write(lines[half:])


def queued(aws: Any) -> dict[str, int]:
    return {name: aws.count(name) for name in ("events", *TARGETS)}


def cli_json(capsys: Any, *argv: str) -> Any:
    capsys.readouterr()  # what the pipeline printed (its metrics) before
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_replay_after_a_mapping_was_added_delivers_only_what_it_missed_and_twice_nothing_more(
    aws, sandboxes, archive, monkeypatch, tmp_path, capsys
):
    events = envelopes(20, "replay")
    route_and_archive(aws, archive, events, without_added_mapping(tmp_path))
    monkeypatch.setenv("EVENTS_ARCHIVE_BUCKET", BUCKET)
    after = Pipeline(aws, mappings_dir=FAULT_MAPPINGS)
    expected = after.expected_jobs(events)
    assert sum(1 for e in events if e.source == "generic") == 4

    # A dry run counts and moves nothing.
    before = queued(aws)
    dry = cli_json(
        capsys, "replay", "--since", "10m", "--dry-run", "--json", "--mappings", str(FAULT_MAPPINGS)
    )
    assert queued(aws) == before == {name: 0 for name in ("events", *TARGETS)}
    assert dry["events"] == 20
    assert dry["mappings"][ADDED] == {"new": 4, "delivered": 0, "skipped": 0, "errors": 0}
    others = {name: c for name, c in dry["mappings"].items() if name != ADDED}
    assert sum(c["delivered"] for c in others.values()) == len(expected) - 4
    assert sum(c["new"] for c in others.values()) == 0

    # `--mapping` renders that mapping only: the others' jobs are counted as skipped.
    narrow = cli_json(
        capsys,
        "replay",
        "--since",
        "10m",
        "--dry-run",
        "--json",
        "--mapping",
        ADDED,
        "--mappings",
        str(FAULT_MAPPINGS),
    )
    assert narrow["events"] == 4  # only the source that mapping reads
    assert narrow["mappings"][ADDED]["new"] == 4
    assert narrow["mappings"]["fault-generic-invoice-to-hubspot-timeline"] == {
        "new": 0,
        "delivered": 0,
        "skipped": 4,
        "errors": 0,
    }

    # Replayed twice: one timeline event per (event, mapping).
    for _ in range(2):
        sent = cli_json(
            capsys, "replay", "--since", "10m", "--json", "--rate", "500", "--mappings", str(FAULT_MAPPINGS)
        )
        assert (sent["sent"], sent["complete"], sent["error"]) == (20, True, None)
        after.run(timeout=60)
    stored = delivered_keys(sandboxes)
    assert {k: stored[t][k] for k, t in expected.items()} == {k: 1 for k in expected}
    assert sum(sum(keys.values()) for keys in stored.values()) == len(expected)

    # What became of a generic event: both its mappings, the added one included, delivered.
    invoice = next(e for e in events if e.source == "generic")
    [shown] = cli_json(
        capsys, "events", "show", invoice.event_id, "--json", "--mappings", str(FAULT_MAPPINGS)
    )
    assert shown["status"] == "delivered"
    assert {j["mapping"]: j["state"] for j in shown["jobs"]} == {
        "fault-generic-invoice-to-hubspot-timeline": "delivered",
        ADDED: "delivered",
    }


def test_replayed_events_carry_the_replay_and_the_mapping_they_are_limited_to(
    aws, archive, monkeypatch, capsys
):
    events = envelopes(10, "marked")
    archive.write([ArchivedEvent(e, utc_now_iso()) for e in events])
    monkeypatch.setenv("EVENTS_ARCHIVE_BUCKET", BUCKET)

    report = cli_json(
        capsys, "replay", "--since", "10m", "--mapping", ADDED, "--json", "--mappings", str(FAULT_MAPPINGS)
    )
    bodies = aws.receive("events")
    assert report["sent"] == len(bodies) == 2  # the generic events: the only ones that mapping reads
    assert {json.dumps(b["replay"]) for b in bodies} == {
        json.dumps({"id": report["id"], "mappings": [ADDED]})
    }
    assert sorted(b["event_id"] for b in bodies) == sorted(
        e.event_id for e in events if e.source == "generic"
    )


def test_an_interrupted_replay_resumes_with_the_archive_objects_it_had_not_sent(
    aws, archive, monkeypatch, capsys
):
    events = envelopes(10, "resumed")
    archive.write([ArchivedEvent(e, utc_now_iso()) for e in events[:5]])
    archive.write([ArchivedEvent(e, utc_now_iso()) for e in events[5:]])
    monkeypatch.setenv("EVENTS_ARCHIVE_BUCKET", BUCKET)
    found = history.History(history.local_deployment())
    window = history.Window.of("10m")
    progress = replay.Progress(replay.new_id(), window.since.isoformat(), window.until.isoformat())
    keys = history.archive_objects(found.s3, BUCKET, window)
    first = keys[0]
    progress.done.append(first)  # as an interrupted run leaves it: its first object sent
    progress.sent = sum(1 for _ in history.read_object(found.s3, BUCKET, first))
    progress.save()

    report = cli_json(capsys, "replay", "--resume", progress.id, "--json")
    resent = aws.receive("events")
    assert report["complete"] and report["objects_done"] == report["objects"] == len(keys)
    assert len(resent) == len(events) - progress.sent
    assert report["sent"] == len(events)
    assert sorted(replay.Progress.load(progress.id).done) == sorted(keys)


def test_a_paced_replay_sends_no_faster_than_its_rate():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pace = replay.Pace(20, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pace.wait(10)
    assert now[0] == pytest.approx(2.0)  # 40 messages at 20 a second before the fifth batch
