"""What the fuzzers and the review found, kept found: each case failed before its fix.

- A JSON body may escape a lone surrogate (`"\\ud800"`): Python decodes it, but no UTF-8 encoder
  can write it back, so the event crashed ingest on its way to the queue. NaN and Infinity are not
  JSON either and would reach a target's body. Both are refused as malformed (400).
- A Slack interactivity payload whose `type` is an object crashed the parser (unhashable).
- A Standard Webhooks secret of just `whsec_` is an empty HMAC key anyone can sign with.
"""

from __future__ import annotations

import json

import pytest
from timeline_bridge import config, ingest
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.observability import metrics
from timeline_bridge.signing import sign_request
from timeline_bridge.sources import generic, hubspot, pipedrive, slack

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
    config.settings.cache_clear()
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
        config.settings.cache_clear()
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
