"""The events `sam local invoke -e` is given, run through the real handlers in-process against moto:
what `bridge send --print-event` writes for each source, and the route and deliver samples under
events/route/ and events/deliver/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.sources import source_spec
from timeline_bridge_tools.cli import build_parser, send

ROOT = Path(__file__).resolve().parents[2]
ROUTE_SAMPLES = sorted((ROOT / "events" / "route").glob("*.json"))
DELIVER_SAMPLES = sorted((ROOT / "events" / "deliver").glob("*.json"))

# A sample per source, and the secret its sender signs with.
SENDERS = {
    "hubspot": ("hubspot/deal-stage-change.json", "hubspot-client-secret-3f9a"),
    "slack": ("slack/approve-button.json", "slack-signing-secret-7c2e"),
    "pipedrive": ("pipedrive/deal-stage-change-v2.json", "bridge:pipedrive-pass-5b1d"),
    "salesforce": ("salesforce/opportunity-stage-change.xml", "sf-outbound-Hq7Rk2Wm9Tz4Lp8V"),
    "generic": ("generic/standard-webhook.json", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
}


def print_event(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run `bridge send ... --print-event` and parse what it wrote on stdout."""
    args = build_parser(["send", *argv]).parse_args(["send", *argv, "--print-event"])
    assert send.run(args) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def sqs_bodies(path: Path) -> list[str]:
    return [record["body"] for record in json.loads(path.read_text())["Records"]]


@pytest.mark.parametrize("source", sorted(SENDERS))
def test_printed_event_is_accepted_and_enqueued_when_the_webhook_function_is_invoked_with_it(
    aws, load_function, lambda_context, monkeypatch, tmp_path, capsys, source
) -> None:
    sample, secret = SENDERS[source]
    monkeypatch.chdir(tmp_path)  # no `.bridge/` development secret: the environment's is used
    monkeypatch.setenv(source_spec(source).secret_names(None)[-1], secret)  # the source-wide one
    for name, value in source_spec(source).local_settings.items():
        monkeypatch.setenv(name, value)

    event = print_event(capsys, source, str(ROOT / "events" / sample))
    answer = load_function(source).lambda_handler(event, lambda_context)

    assert 200 <= answer["statusCode"] < 300, answer
    assert [Envelope(**body).source for body in aws.receive("events")] != []


def test_printed_event_is_refused_when_the_function_holds_another_secret(
    aws, load_function, lambda_context, monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "the-secret-it-is-signed-with")
    event = print_event(capsys, "hubspot", str(ROOT / "events" / SENDERS["hubspot"][0]))
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "the-function-s-own-secret")

    answer = load_function("hubspot").lambda_handler(event, lambda_context)

    assert answer["statusCode"] == 401
    assert aws.receive("events") == []


def test_printed_event_names_the_function_url_given_when_url_is_passed(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENERIC_WEBHOOK_SECRET", SENDERS["generic"][1])
    host = "zyxwvutsrqponmlkjihgfedcba765432.lambda-url.us-east-1.on.aws"
    event = print_event(
        capsys, "generic", str(ROOT / "events" / SENDERS["generic"][0]), "--url", f"https://{host}/"
    )

    assert event["requestContext"]["domainName"] == host
    assert event["rawPath"] == "/generic/billing"  # the sample's endpoint, on the URL given


def test_printed_event_is_signed_now_when_the_sample_is_old(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SENDERS["hubspot"][1])
    sample = json.loads((ROOT / "events" / SENDERS["hubspot"][0]).read_text())
    event = print_event(capsys, "hubspot", str(ROOT / "events" / SENDERS["hubspot"][0]))

    signed_at = int(event["headers"]["x-hubspot-request-timestamp"])
    assert signed_at > sample["requestContext"]["timeEpoch"]
    assert abs(signed_at - event["requestContext"]["timeEpoch"]) < 60_000


def test_nothing_is_printed_when_no_secret_is_set(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUBSPOT_CLIENT_SECRET", raising=False)
    argv = ["send", "hubspot", str(ROOT / "events" / SENDERS["hubspot"][0]), "--print-event"]

    assert send.run(build_parser(argv).parse_args(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "HUBSPOT_CLIENT_SECRET" in captured.err


def test_every_route_sample_has_the_deliver_samples_of_its_jobs() -> None:
    assert ROUTE_SAMPLES and DELIVER_SAMPLES
    event_ids = {Envelope(**json.loads(b)).event_id for path in ROUTE_SAMPLES for b in sqs_bodies(path)}
    for path in DELIVER_SAMPLES:
        assert {DeliveryJob.from_json(b).event_id for b in sqs_bodies(path)} <= event_ids, path.name


@pytest.mark.parametrize("sample", ROUTE_SAMPLES, ids=lambda p: p.name)
def test_route_sample_becomes_its_deliver_sample_jobs_when_the_route_function_is_invoked_with_it(
    aws, sandboxes, load_function, lambda_context, monkeypatch, tmp_path, sample
) -> None:
    event_ids = {Envelope(**json.loads(body)).event_id for body in sqs_bodies(sample)}
    expected = [
        DeliveryJob.from_json(body)
        for path in DELIVER_SAMPLES
        for body in sqs_bodies(path)
        if DeliveryJob.from_json(body).event_id in event_ids
    ]
    # Only the mappings the deliver samples came from: a mapping a user adds changes nothing here.
    folder = tmp_path / "mappings"
    folder.mkdir()
    for job in expected:
        shutil.copy(ROOT / job.mapping_file, folder)
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(folder))

    answer = load_function("route").lambda_handler(json.loads(sample.read_text()), lambda_context)

    assert answer == {"batchItemFailures": []}
    for job in expected:
        [queued] = [DeliveryJob(**body) for body in aws.receive(job.target)]
        assert (queued.key, queued.mapping, queued.body) == (job.key, job.mapping, job.body)


@pytest.mark.parametrize("sample", DELIVER_SAMPLES, ids=lambda p: p.name)
def test_deliver_sample_reaches_its_target_when_the_deliver_function_is_invoked_with_it(
    aws, sandboxes, load_function, lambda_context, monkeypatch, sample
) -> None:
    jobs = [DeliveryJob.from_json(body) for body in sqs_bodies(sample)]
    (target,) = {job.target for job in jobs}
    monkeypatch.setenv("TARGET", target)

    answer = load_function("deliver").lambda_handler(json.loads(sample.read_text()), lambda_context)

    assert answer == {"batchItemFailures": []}
    assert len(sandboxes[target].events()) == len(jobs)
    assert aws.count(f"{target}-dlq") == 0 and aws.count(target) == 0
