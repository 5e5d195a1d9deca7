"""The ingest pipeline with in-memory fakes for the dedupe table and the queue (FM-14: an
oversized body is answered 413 before anything else, a malformed one 400 once it is verified).

What is checked here is the order of the gates (413 → 503 → 401 → 400 → dedupe → enqueue) and
what happens to claims when the queue fails. The real Powertools/DynamoDB/SQS path runs in
tests/integration/test_ingest_*.py.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from timeline_bridge import ingest
from timeline_bridge.claims import ClaimState
from timeline_bridge.observability import logger, metrics
from timeline_bridge.sources import slack
from timeline_bridge.sources.base import SourceEvent
from timeline_bridge_tools.signing import sign_event, sign_request

NOW = 1763900000.0
SECRETS = {
    "hubspot": "hs-client-secret-1",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "pipedrive": "hook:Zk3pL9qW2xV7nB4m",
    "generic": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
ENV = {
    "hubspot": "HUBSPOT_CLIENT_SECRET",
    "slack": "SLACK_SIGNING_SECRET",
    "pipedrive": "PIPEDRIVE_BASIC_AUTH",
    "generic": "GENERIC_WEBHOOK_SECRET",
}
PATHS = {"hubspot": "/", "slack": "/", "pipedrive": "/", "generic": "/generic/billing"}
GOOD_BODIES = {
    "hubspot": [
        {
            "eventId": 1,
            "subscriptionId": 2,
            "portalId": 3,
            "occurredAt": 1763899315724,
            "subscriptionType": "deal.propertyChange",
            "objectId": 4,
            "attemptNumber": 0,
        }
    ],
    "pipedrive": {
        "meta": {"version": "2.0", "id": "evt-1", "action": "change", "entity": "deal", "attempt": 1},
        "data": {"id": 1},
    },
    "generic": {"type": "invoice.paid", "data": {"id": "inv_1"}},
    "slack": {
        "type": "event_callback",
        "event_id": "Ev1",
        "event": {"type": "app_mention"},
        "event_time": 1763900000,
    },
}


class Untouchable:
    """Stands for the dedupe table and the queue where a request must not reach them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called: the request should have been refused earlier")


class FakeStore:
    """Claims in a dict, with the same answers as the DynamoDB store."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], tuple[str, Any]] = {}
        self.released: list[str] = []
        self.fail = False

    def claim(self, scope: str, event: SourceEvent, *, remaining_ms: int = 0) -> ClaimState:
        if self.fail:
            raise ConnectionError("dynamodb unavailable")
        if event.event_id is None:
            return ClaimState.NO_KEY
        key = (scope, event.event_id)
        if key in self.records:
            status, fingerprint = self.records[key]
            if fingerprint != event.fingerprint:
                return ClaimState.MISMATCH
            return ClaimState.DUPLICATE if status == "COMPLETED" else ClaimState.IN_PROGRESS
        self.records[key] = ("INPROGRESS", event.fingerprint)
        return ClaimState.NEW

    def complete(self, scope: str, event: SourceEvent) -> None:
        self.records[(scope, str(event.event_id))] = ("COMPLETED", event.fingerprint)

    def release(self, scope: str, event: SourceEvent) -> None:
        self.released.append(str(event.event_id))
        del self.records[(scope, str(event.event_id))]


class FakeQueue:
    def __init__(self, fail_positions: set[int] | None = None) -> None:
        self.sent: list[ingest.Envelope] = []
        self.fail_positions = fail_positions or set()

    def send(self, envelopes):
        failed = sorted(p for p in self.fail_positions if p < len(envelopes))
        self.sent.extend(e for i, e in enumerate(envelopes) if i not in self.fail_positions)
        return failed


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for source, name in ENV.items():
        monkeypatch.setenv(name, SECRETS[source])
        monkeypatch.delenv(f"{name}_SECRET_ID", raising=False)
    monkeypatch.delenv("HUBSPOT_SIGNATURE_VERSIONS", raising=False)
    monkeypatch.delenv("HUBSPOT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    yield
    metrics.clear_metrics()  # the handler decorator flushes them; these tests call ingest directly


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line ingest writes, DEBUG included, formatted as in Lambda (Powertools JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield stream
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)


def event_for(source: str, body: Any, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    content_type = "application/json"
    return {
        "version": "2.0",
        "rawPath": PATHS[source],
        "rawQueryString": "",
        "headers": {"host": "hooks.example.com", "x-forwarded-proto": "https", "content-type": content_type}
        | (headers or {}),
        "requestContext": {"http": {"method": "POST", "path": PATHS[source]}},
        "body": raw,
        "isBase64Encoded": False,
    }


def signed(source: str, body: Any, **options: Any) -> dict[str, Any]:
    return sign_event(source, event_for(source, body), SECRETS[source], now=NOW, **options)


def run(event: dict[str, Any], source: str, store: Any = None, queue: Any = None) -> dict[str, Any]:
    return ingest.handle(
        event,
        None,
        source=source,
        now=lambda: NOW,
        store=store or Untouchable(),
        queue=queue or Untouchable(),
    )


def forged(source: str, body: str) -> dict[str, Any]:
    """Signed with a secret the bridge does not know."""
    other = {"pipedrive": "hook:nope", "generic": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}.get(
        source, "not-it"
    )
    return sign_event(source, event_for(source, body), other, now=NOW)


@pytest.mark.parametrize("source", list(SECRETS))
def test_unparseable_body_gets_401_when_signature_is_bad(source):
    answer = run(forged(source, "{not json at all"), source)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"] == "signature_invalid"


@pytest.mark.parametrize("source", list(SECRETS))
def test_unparseable_body_gets_401_when_signature_missing(source):
    answer = run(event_for(source, "{not json at all"), source)
    assert answer["statusCode"] == 401


@pytest.mark.parametrize("source", list(SECRETS))
def test_unparseable_body_gets_400_when_signature_is_good(source):
    assert run(signed(source, "{not json at all"), source)["statusCode"] == 400


@pytest.mark.parametrize("source", list(SECRETS))
def test_every_request_gets_503_when_secret_not_configured(monkeypatch, source):
    monkeypatch.delenv(ENV[source])
    answer = run(signed(source, GOOD_BODIES[source]), source)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "secret_not_configured"
    assert answer["headers"]["retry-after"] == "60"  # senders that read it wait for the operator


@pytest.mark.parametrize("source", list(SECRETS))
def test_oversized_body_gets_413_before_anything_else(monkeypatch, source):
    monkeypatch.setenv("MAX_BODY_BYTES", "64")
    monkeypatch.delenv(ENV[source])  # not even the secret is looked at
    assert run(event_for(source, "x" * 65), source)["statusCode"] == 413


@pytest.mark.parametrize("source", list(SECRETS))
def test_good_request_is_enqueued_once_when_repeated(source):
    store, queue = FakeStore(), FakeQueue()
    event = signed(source, GOOD_BODIES[source])
    assert run(event, source, store, queue)["statusCode"] == 200
    assert run(event, source, store, queue)["statusCode"] == 200
    assert len(queue.sent) == 1
    assert queue.sent[0].source == source


def test_unknown_event_type_acknowledged_without_claim_when_hubspot():
    body = [GOOD_BODIES["hubspot"][0] | {"subscriptionType": "deal.somethingNew"}]
    answer = run(signed("hubspot", body), "hubspot")
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["ignored"] == 1


def test_only_failed_events_released_when_queue_fails_part_of_a_batch():
    events = [GOOD_BODIES["hubspot"][0] | {"eventId": i} for i in range(12)]
    store, queue = FakeStore(), FakeQueue(fail_positions={3, 11})
    answer = run(signed("hubspot", events), "hubspot", store, queue)
    assert answer["statusCode"] == 503 and answer["headers"]["retry-after"] == "5"
    assert len(queue.sent) == 10
    assert sorted(store.released) == sorted(f"3:2:{i}:4:1763899315724" for i in (3, 11))
    retry = run(signed("hubspot", events), "hubspot", store, FakeQueue())
    assert json.loads(retry["body"]) == {"accepted": 2, "duplicates": 10, "ignored": 0, "rejected": 0}


class PairedStore(FakeStore):
    """A store whose calls only return in pairs: run one after the other, the first call waits
    for a partner that never comes and fails. HubSpot's 100-event batches need the dedupe calls
    in parallel to answer inside its 5 s (200 round trips in a row would not)."""

    def __init__(self):
        super().__init__()
        self.pairs = threading.Barrier(2, timeout=5)

    def claim(self, scope, event, *, remaining_ms=0):
        self.pairs.wait()
        return super().claim(scope, event, remaining_ms=remaining_ms)

    def complete(self, scope, event):
        self.pairs.wait()
        super().complete(scope, event)


def test_claims_and_completions_run_in_parallel_when_hubspot_sends_a_full_batch():
    events = [GOOD_BODIES["hubspot"][0] | {"eventId": i} for i in range(100)]
    store, queue = PairedStore(), FakeQueue()

    answer = run(signed("hubspot", events), "hubspot", store, queue)

    assert json.loads(answer["body"])["accepted"] == 100 and len(queue.sent) == 100
    assert not store.pairs.broken


def test_nothing_enqueued_and_claims_released_when_dedupe_table_fails():
    store, queue = FakeStore(), FakeQueue()
    store.fail = True
    answer = run(signed("hubspot", GOOD_BODIES["hubspot"]), "hubspot", store, queue)
    assert answer["statusCode"] == 503
    assert queue.sent == []


def test_retry_later_when_a_claim_is_in_progress_elsewhere():
    store, queue = FakeStore(), FakeQueue()
    first, second = (GOOD_BODIES["hubspot"][0] | {"eventId": i} for i in (1, 2))
    store.records[("hubspot", "3:2:1:4:1763899315724")] = (
        "INPROGRESS",
        {k: v for k, v in first.items() if k != "attemptNumber"},
    )
    answer = run(signed("hubspot", [first, second]), "hubspot", store, queue)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "in_progress"
    assert [e.event["eventId"] for e in queue.sent] == [2]  # the new one is not held back


def test_same_id_with_other_body_rejected_and_not_enqueued():
    store, queue = FakeStore(), FakeQueue()
    run(signed("generic", GOOD_BODIES["generic"], webhook_id="msg_same"), "generic", store, queue)
    tampered = GOOD_BODIES["generic"] | {"data": {"id": "inv_2"}}
    answer = run(signed("generic", tampered, webhook_id="msg_same"), "generic", store, queue)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["rejected"] == 1
    assert len(queue.sent) == 1


def test_copies_inside_one_batch_enqueued_once():
    store, queue = FakeStore(), FakeQueue()
    body = GOOD_BODIES["hubspot"] * 3
    answer = run(signed("hubspot", body), "hubspot", store, queue)
    assert json.loads(answer["body"]) == {"accepted": 1, "duplicates": 2, "ignored": 0, "rejected": 0}
    assert len(queue.sent) == 1


def test_400_when_no_event_carries_an_identity():
    body = [{k: v for k, v in GOOD_BODIES["hubspot"][0].items() if k != "eventId"}]
    assert run(signed("hubspot", body), "hubspot")["statusCode"] == 400


def test_event_without_identity_rejected_while_the_rest_is_enqueued():
    store, queue = FakeStore(), FakeQueue()
    missing = {k: v for k, v in GOOD_BODIES["hubspot"][0].items() if k != "eventId"}
    answer = run(signed("hubspot", [missing, *GOOD_BODIES["hubspot"]]), "hubspot", store, queue)
    assert json.loads(answer["body"])["rejected"] == 1
    assert len(queue.sent) == 1


def slack_click(payload: dict[str, Any]) -> dict[str, Any]:
    from urllib.parse import quote_plus

    body = "payload=" + quote_plus(json.dumps(payload))
    event = event_for("slack", body, headers={"content-type": "application/x-www-form-urlencoded"})
    return sign_event("slack", event, SECRETS["slack"], now=NOW)


CLICK = {
    "type": "block_actions",
    "trigger_id": "1.2.abc",
    "actions": [{"action_id": "approve_request", "action_ts": "1763900000.1"}],
}


def test_click_acknowledged_with_empty_body_when_enqueued():
    queue = FakeQueue()
    answer = run(slack_click(CLICK), "slack", FakeStore(), queue)
    assert (answer["statusCode"], answer["body"]) == (200, "")
    assert queue.sent[0].event_type == "block_actions"


def test_click_answered_with_try_again_text_when_queue_fails():
    store = FakeStore()
    answer = run(slack_click(CLICK), "slack", store, FakeQueue(fail_positions={0}))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["text"] == slack.RETRY_TEXT
    assert store.released == ["1.2.abc"]


def test_challenge_answered_when_url_verification_is_signed():
    body = {"type": "url_verification", "challenge": "c-123", "token": "t"}
    answer = run(signed("slack", body), "slack")
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"challenge": "c-123"})


def test_challenge_refused_when_url_verification_is_forged():
    assert (
        run(forged("slack", json.dumps({"type": "url_verification", "challenge": "c"})), "slack")[
            "statusCode"
        ]
        == 401
    )


def test_404_when_generic_path_is_not_an_endpoint():
    event = signed("generic", GOOD_BODIES["generic"])
    event["rawPath"] = "/generic/a/b"
    assert run(event, "generic")["statusCode"] == 404


def test_hubspot_versions_setting_enables_v1(monkeypatch):
    monkeypatch.setenv("HUBSPOT_SIGNATURE_VERSIONS", "v3,v1")
    event = event_for("hubspot", GOOD_BODIES["hubspot"])
    event["headers"] |= {
        k.lower(): v
        for k, v in sign_request("hubspot", event, SECRETS["hubspot"], hubspot_versions=("v1",)).items()
    }
    assert run(event, "hubspot", FakeStore(), FakeQueue())["statusCode"] == 200


def test_logs_carry_no_secret_nor_signature(log_output):
    event = forged("pipedrive", json.dumps(GOOD_BODIES["pipedrive"]))
    run(event, "pipedrive")
    slack_event = signed("slack", GOOD_BODIES["slack"])
    run(slack_event, "slack", FakeStore(), FakeQueue())
    out = log_output.getvalue()
    assert "webhook refused" in out and "webhook ingested" in out
    secrets = (SECRETS["slack"], SECRETS["pipedrive"], "Zk3pL9qW2xV7nB4m")
    signatures = (event["headers"]["authorization"].split()[1], slack_event["headers"]["x-slack-signature"])
    for value in (*secrets, *signatures, 'app_mention"}'):  # nor the body
        assert value not in out
