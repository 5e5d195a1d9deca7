"""Slack: the documented signature example, and interactivity / Events API parsing."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import slack

# docs.slack.dev "Verifying requests from Slack", as used by python-slack-sdk's verifier tests.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def doc_request(make_request, body: str = DOC_BODY, **headers: str):
    base = {
        "X-Slack-Request-Timestamp": DOC_TIMESTAMP,
        "X-Slack-Signature": DOC_SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return make_request(body, base | headers)


def at_doc_time() -> float:
    return float(DOC_TIMESTAMP)


def test_signature_matches_documented_example():
    assert slack.signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY.encode()) == DOC_SIGNATURE


def test_documented_example_accepted_when_clock_frozen(make_request):
    slack.verify(doc_request(make_request), [DOC_SECRET], now=at_doc_time)


def test_documented_example_accepted_when_body_arrives_base64(make_request):
    request = make_request(
        DOC_BODY,
        {"X-Slack-Request-Timestamp": DOC_TIMESTAMP, "X-Slack-Signature": DOC_SIGNATURE},
        encode=True,
    )
    slack.verify(request, [DOC_SECRET], now=at_doc_time)


def test_documented_example_rejected_when_body_extended(make_request):
    with pytest.raises(SignatureError):
        slack.verify(doc_request(make_request, DOC_BODY + "------"), [DOC_SECRET], now=at_doc_time)


def test_documented_example_rejected_when_clock_is_real(make_request):
    with pytest.raises(SignatureError) as caught:
        slack.verify(doc_request(make_request), [DOC_SECRET])
    assert caught.value.reason == "timestamp_expired"


@pytest.mark.parametrize("secrets", [[], [""], ["  "], None])
def test_verify_fails_closed_when_no_secret(make_request, secrets):
    with pytest.raises(SecretNotConfiguredError):
        slack.verify(doc_request(make_request), secrets, now=at_doc_time)


def test_verify_rejects_when_signature_uses_another_version(make_request):
    request = doc_request(make_request, **{"X-Slack-Signature": DOC_SIGNATURE.replace("v0=", "v1=")})
    with pytest.raises(SignatureError):
        slack.verify(request, [DOC_SECRET], now=at_doc_time)


# --- parsing ----------------------------------------------------------------------------------

BLOCK_ACTIONS = {
    "type": "block_actions",
    "user": {"id": "U04ABCD1234", "username": "maria.lopez", "team_id": "T01ABCDEF12"},
    "container": {"type": "message", "message_ts": "1763900123.000200", "channel_id": "C05QWERTY12"},
    "trigger_id": "6012345678901.1234567890123.4f0c9e1b2a3d4c5e6f708192a3b4c5d6",
    "channel": {"id": "C05QWERTY12", "name": "deal-approvals"},
    "actions": [
        {
            "action_id": "approve_request",
            "block_id": "approval_actions",
            "value": "deal 18147040851",
            "type": "button",
            "action_ts": "1763900187.412345",
        }
    ],
}


def form(payload: dict, quoting=quote_plus) -> bytes:
    return ("payload=" + quoting(json.dumps(payload))).encode()


@pytest.mark.parametrize("quoting", [quote_plus, quote], ids=["plus-for-space", "percent-20-for-space"])
def test_parse_block_actions_when_form_encoded(make_request, quoting):
    parsed = slack.parse(
        make_request(form(BLOCK_ACTIONS, quoting), {"Content-Type": "application/x-www-form-urlencoded"})
    )
    assert parsed.interactive
    [event] = parsed.events
    assert event.event == BLOCK_ACTIONS  # spaces decoded either way
    assert event.event_type == "block_actions"
    assert event.event_id == BLOCK_ACTIONS["trigger_id"]
    assert event.occurred_at == "2025-11-23T12:16:27.412Z"


def test_identity_from_message_and_action_ts_when_no_trigger_id(make_request):
    payload = {k: v for k, v in BLOCK_ACTIONS.items() if k != "trigger_id"}
    parsed = slack.parse(make_request(form(payload), {"Content-Type": "application/x-www-form-urlencoded"}))
    assert parsed.events[0].event_id == "1763900123.000200:1763900187.412345"


def test_identity_absent_when_no_trigger_id_nor_action_ts(make_request):
    payload = {k: v for k, v in BLOCK_ACTIONS.items() if k not in ("trigger_id", "actions")}
    parsed = slack.parse(make_request(form(payload), {"Content-Type": "application/x-www-form-urlencoded"}))
    assert parsed.events[0].event_id is None


def test_parse_answers_challenge_when_url_verification(make_request):
    body = {
        "token": "t",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }
    parsed = slack.parse(make_request(json.dumps(body), {"Content-Type": "application/json"}))
    assert parsed.reply == {"challenge": body["challenge"]}
    assert parsed.events == []


def test_parse_event_callback_uses_event_id_and_inner_type(make_request):
    body = {
        "type": "event_callback",
        "team_id": "T01ABCDEF12",
        "event": {
            "type": "app_mention",
            "user": "U04ABCD1234",
            "text": "<@U0BOT> status",
            "ts": "1763900300.000100",
        },
        "event_id": "Ev08MFMKH6",
        "event_time": 1763900300,
    }
    parsed = slack.parse(make_request(json.dumps(body), {"Content-Type": "application/json"}))
    [event] = parsed.events
    assert (event.event_type, event.event_id, event.occurred_at) == (
        "app_mention",
        "Ev08MFMKH6",
        "2025-11-23T12:18:20.000Z",
    )
    assert not parsed.interactive


def test_parse_reads_json_when_content_type_missing(make_request):
    parsed = slack.parse(make_request(json.dumps({"type": "url_verification", "challenge": "abc"})))
    assert parsed.reply == {"challenge": "abc"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(DOC_BODY.encode(), "application/x-www-form-urlencoded", id="slash-command"),
        pytest.param(b"ssl_check=1&token=x", "application/x-www-form-urlencoded", id="ssl-check"),
        pytest.param(
            form({"type": "block_suggestion", "value": "ac"}),
            "application/x-www-form-urlencoded",
            id="suggestion",
        ),
        pytest.param(
            b'{"type": "app_rate_limited", "minute_rate_limited": 1518467820}',
            "application/json",
            id="rate-limited",
        ),
    ],
)
def test_parse_marks_unknown_when_not_an_event_we_map(make_request, body, content_type):
    parsed = slack.parse(make_request(body, {"Content-Type": content_type}))
    assert parsed.events and not any(e.known for e in parsed.events)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"payload=%7Bnot-json", "application/x-www-form-urlencoded", id="payload-not-json"),
        pytest.param(b"payload=%5B1%5D", "application/x-www-form-urlencoded", id="payload-not-object"),
        pytest.param(b"[1]", "application/json", id="json-not-object"),
        pytest.param(b'{"type": "url_verification"}', "application/json", id="challenge-missing"),
        pytest.param(b"\xff\xfe", "application/x-www-form-urlencoded", id="form-not-utf8"),
    ],
)
def test_parse_rejects_when_body_is_malformed(make_request, body, content_type):
    with pytest.raises(MalformedBodyError):
        slack.parse(make_request(body, {"Content-Type": content_type}, encode=True))
