"""What the fuzzers and the review found, kept found: each case failed before its fix.

- A JSON body may escape a lone surrogate (`"\\ud800"`): Python decodes it, but no UTF-8 encoder
  can write it back, so the event crashed ingest on its way to the queue. NaN and Infinity are not
  JSON either and would reach a target's body. Both are refused as malformed (400).
- A Slack interactivity payload whose `type` is an object crashed the parser (unhashable).
- A Standard Webhooks secret of just `whsec_` is an empty HMAC key anyone can sign with.
- A time no datetime holds (an integer of 400 digits, 1e400, past the year 9999, an ISO offset
  that leaves the years 1 to 9999) crashed ingest with a 5xx the sender retried forever. A time
  the sender always sends is refused (400, the field named); an informative one is null.
"""

from __future__ import annotations

import json

import pytest
from timeline_bridge import ingest
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, TimestampOutOfRangeError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.observability import metrics
from timeline_bridge.sources import generic, hubspot, pipedrive, slack
from timeline_bridge.sources.base import iso_from_epoch
from timeline_bridge_tools.signing import sign_request

NOW = 1763900000.0
BODIES = {
    "hubspot": '[{"eventId":1,"subscriptionType":"deal.creation","objectId":%s}]',
    "pipedrive": '{"meta":{"version":"2.0","id":"e1","action":"change","entity":"deal"},"data":{"title":%s}}',
    "generic": '{"type":"invoice.paid","data":{"note":%s}}',
    "slack": '{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","text":%s}}',
}
PARSERS = {
    "hubspot": hubspot.parse,
    "pipedrive": pipedrive.parse,
    "generic": generic.parse,
    "slack": slack.parse,
}


def request(body: str | bytes, content_type: str = "application/json") -> WebhookRequest:
    raw = body.encode() if isinstance(body, str) else body
    return WebhookRequest("POST", "/", "", {"content-type": content_type}, raw)


@pytest.mark.parametrize("value", ['"\\ud800"', '"a\\udfffb"', '"\\ude00\\ud83d"', "NaN", "-Infinity"])
@pytest.mark.parametrize("source", PARSERS)
def test_body_refused_as_malformed_when_it_is_not_strict_json(source, value):
    with pytest.raises(MalformedBodyError):
        PARSERS[source](request(BODIES[source] % value))


@pytest.mark.parametrize("source", PARSERS)
def test_body_accepted_when_it_escapes_a_surrogate_pair(source):
    (event,) = PARSERS[source](request(BODIES[source] % '"deal \\ud83d\\ude00"')).events
    assert "deal \U0001f600" in json.dumps(event.event, ensure_ascii=False)


def test_slack_interactivity_refused_as_malformed_when_payload_is_not_strict_json():
    with pytest.raises(MalformedBodyError):
        slack.parse(request('payload={"type":"block_actions","x":"%5Cud800"}', slack.FORM))


@pytest.mark.parametrize("kind", ["{}", "[]", '{"email":"jane.doe@example.com"}', "1"])
def test_slack_payload_acknowledged_as_unknown_when_its_type_is_not_text(kind):
    interaction = slack.parse(request(f'payload={{"type":{kind},"trigger_id":"t1"}}', slack.FORM))
    event_api = slack.parse(request(f'{{"type":{kind},"event_id":"Ev1"}}'))
    for parsed in (interaction, event_api):
        (event,) = parsed.events
        assert (event.known, event.event_type) == (False, "unknown")


def test_signed_request_answered_400_not_crashed_when_its_body_escapes_a_lone_surrogate(monkeypatch):
    secret = "hook:Zk3pL9qW2xV7nB4m"
    monkeypatch.setenv("PIPEDRIVE_BASIC_AUTH", secret)
    monkeypatch.delenv("PIPEDRIVE_BASIC_AUTH_SECRET_ID", raising=False)
    body = BODIES["pipedrive"] % '"\\ud800"'
    event = {
        "rawPath": "/",
        "headers": {k.lower(): v for k, v in sign_request("pipedrive", body, secret).items()},
        "requestContext": {"http": {"method": "POST"}},
        "body": body,
        "isBase64Encoded": False,
    }
    try:
        answer = ingest.handle(
            event, None, source="pipedrive", now=lambda: NOW, store=object(), queue=object()
        )
    finally:
        metrics.clear_metrics()
    assert answer["statusCode"] == 400


@pytest.mark.parametrize("secret", ["whsec_", " whsec_ ", "whsec_="])
def test_standard_webhooks_fail_closed_when_the_secret_holds_no_key(secret):
    body = b'{"type":"invoice.paid"}'
    forged = generic.hmac_signature("", b"msg_1.1763900000." + body, encoding="base64")
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1763900000", "webhook-signature": f"v1,{forged}"}
    with pytest.raises(SecretNotConfiguredError):
        generic.verify_standard(
            WebhookRequest("POST", "/generic/x", "", headers, body), [secret], now=lambda: NOW
        )


OUT_OF_RANGE_TIMES = [
    10**400,
    -(10**400),
    float("inf"),
    1e308,
    10**18,  # read as microseconds: the year 33658
    -1,  # epoch numbers start at 1970
    "1" + "0" * 400,
    "1e400",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_iso_from_epoch_names_the_field_when_a_required_time_is_out_of_range(value):
    with pytest.raises(TimestampOutOfRangeError, match=r"^occurredAt is out of range") as caught:
        iso_from_epoch(value, field="occurredAt")
    assert (caught.value.status, caught.value.reason, caught.value.field) == (
        400,
        "timestamp_out_of_range",
        "occurredAt",
    )


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_iso_from_epoch_gives_null_when_an_optional_time_is_out_of_range(value):
    assert iso_from_epoch(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (253402300799, "1978-01-11T21:31:40.799Z"),  # >= 10^11: milliseconds
        (253402300799000000, "9999-12-31T23:59:59.000Z"),  # microseconds: the last second of 9999
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("yesterday", None),  # unreadable, not out of range: null either way
    ],
)
def test_iso_from_epoch_reads_the_edges_when_a_required_time_is_in_range(value, expected):
    assert iso_from_epoch(value, field="occurredAt") == expected
