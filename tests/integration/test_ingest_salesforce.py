"""Salesforce handler in-process against moto: an Outbound Message behind the URL token and the org
id gets the SOAP acknowledgement and its Notifications are enqueued once each; and end to end, under
the local runtime, the sample becomes a Stora timeline event."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "salesforce" / "opportunity-stage-change.xml"
TOKEN = "sf-outbound-Hq7Rk2Wm9Tz4Lp8V"
ORG = "00D5g000004XyZaEAK"
ACK = "<Ack>true</Ack>"


def outbound_event(body: bytes, query: str = f"token={TOKEN}") -> dict[str, Any]:
    """The Function URL event of an Outbound Message POST, as Salesforce sends it."""
    host = "abcdefghijklmnopqrstuvwxyz234567.lambda-url.eu-west-1.on.aws"
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {
            "content-type": "text/xml; charset=utf-8",
            "soapaction": '""',
            "user-agent": "Jakarta Commons-HttpClient/3.1",
            "host": host,
        },
        "requestContext": {"domainName": host, "http": {"method": "POST", "path": "/"}, "requestId": "r-1"},
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of the test with its extra fields, as the handlers would write them."""
    return "\n".join(json.dumps(vars(r), default=str) for r in caplog.records)


def two_notifications() -> bytes:
    text = SAMPLE.read_text()
    start, end = text.index("<Notification>"), text.index("</Notification>") + len("</Notification>")
    second = text[start:end].replace("04l5g00000BxYzQAAV", "04l5g00000BxYzRAAV")
    return text.replace(text[start:end], text[start:end] + second).encode()


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("SALESFORCE_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("SALESFORCE_ORGANIZATION_IDS", f"00D000000000001,{ORG}")
    module = load_function("salesforce")
    return lambda event: module.lambda_handler(event, lambda_context)


def test_outbound_message_gets_the_soap_ack_and_is_enqueued(handler, aws):
    answer = handler(outbound_event(SAMPLE.read_bytes()))

    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"].startswith("text/xml")
    assert ACK in answer["body"]
    [envelope] = aws.receive()
    assert (envelope["source"], envelope["event_type"], envelope["event_id"]) == (
        "salesforce",
        "Opportunity",
        "04l5g00000BxYzQAAV",
    )
    assert envelope["event"]["sObject"]["StageName"] == "Negotiation/Review"


def test_resend_gets_the_ack_and_nothing_is_enqueued_again(handler, aws):
    first = handler(outbound_event(SAMPLE.read_bytes()))
    # Salesforce resends with the record's latest values: still the same notification.
    resend = handler(outbound_event(SAMPLE.read_bytes().replace(b"Negotiation/Review", b"Closed Won")))

    assert ACK in first["body"]
    assert (resend["statusCode"], ACK in resend["body"]) == (200, True)
    assert len(aws.receive()) == 1


def test_each_notification_of_a_message_is_enqueued_once(handler, aws):
    answer = handler(outbound_event(two_notifications()))
    again = handler(outbound_event(two_notifications()))

    assert ACK in answer["body"] and ACK in again["body"]
    assert sorted(e["event_id"] for e in aws.receive()) == ["04l5g00000BxYzQAAV", "04l5g00000BxYzRAAV"]


@pytest.mark.parametrize(
    ("query", "body"),
    [
        pytest.param("", SAMPLE.read_bytes(), id="no-token"),
        pytest.param("token=sf-outbound-guess-0000", SAMPLE.read_bytes(), id="wrong-token"),
        pytest.param(
            f"token={TOKEN}", SAMPLE.read_bytes().replace(ORG.encode(), b"00D5g000009ZzZzEAK"), id="other-org"
        ),
    ],
)
def test_wrong_token_or_org_answers_401_enqueues_nothing_and_logs_no_token(handler, aws, caplog, query, body):
    answer = handler(outbound_event(body, query))

    assert answer["statusCode"] == 401
    assert ACK not in answer["body"]
    assert aws.count() == 0
    logged = logged_text(caplog)
    assert "webhook refused" in logged  # the refusal is logged, without the query
    assert TOKEN not in logged
    assert "sf-outbound-guess-0000" not in logged


def test_accepted_message_logs_no_token_and_no_session_id(handler, aws, caplog):
    caplog.set_level("DEBUG", logger="timeline-bridge")  # "webhook ingested" is a DEBUG line
    handler(
        outbound_event(
            SAMPLE.read_bytes().replace(b'<SessionId xsi:nil="true"/>', b"<SessionId>00D!AQsess</SessionId>")
        )
    )

    logged = logged_text(caplog)
    assert "webhook ingested" in logged
    assert TOKEN not in logged and "00D!AQsess" not in logged
    [envelope] = aws.receive()
    assert "SessionId" not in envelope["event"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<soapenv:Envelope", id="bad-xml"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
            id="entities",
        ),
    ],
)
def test_malformed_or_dtd_body_answers_400_and_enqueues_nothing(handler, aws, body):
    answer = handler(outbound_event(body))

    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"] == "malformed_body"
    assert aws.count() == 0


def test_oversized_body_answers_413(handler, aws, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    body = SAMPLE.read_bytes().replace(b"Acme Storage - 3 units", b"A" * 4096)

    assert handler(outbound_event(body))["statusCode"] == 413
    assert aws.count() == 0


def test_no_org_configured_answers_503_and_enqueues_nothing(handler, aws, monkeypatch):
    monkeypatch.setenv("SALESFORCE_ORGANIZATION_IDS", "")

    assert handler(outbound_event(SAMPLE.read_bytes()))["statusCode"] == 503
    assert aws.count() == 0


# --- end to end, under the local runtime (bridge dev) -------------------------------------------------


def test_outbound_message_becomes_a_stora_timeline_event_under_the_local_runtime(local_runtime):
    token = local_runtime.secret_values["SALESFORCE_WEBHOOK_TOKEN"]
    url = f"{local_runtime.url}/salesforce"
    headers = {"content-type": "text/xml; charset=utf-8", "soapaction": '""'}

    answer = requests.post(
        url, params={"token": token}, data=SAMPLE.read_bytes(), headers=headers, timeout=15
    )
    assert (answer.status_code, ACK in answer.text) == (200, True)
    stora = local_runtime.sandboxes["stora"]
    deadline = time.monotonic() + 10
    while not stora.events() and time.monotonic() < deadline:
        time.sleep(0.05)
    [stored] = [e for e in stora.events() if "salesforce_opportunity_0065g00000AbCdEAAV" in json.dumps(e)]
    assert "Negotiation/Review" in json.dumps(stored)

    resend = requests.post(
        url, params={"token": token}, data=SAMPLE.read_bytes(), headers=headers, timeout=15
    )
    wrong_token = requests.post(
        url, params={"token": "nope"}, data=SAMPLE.read_bytes(), headers=headers, timeout=15
    )
    other_org = requests.post(
        url,
        params={"token": token},
        data=SAMPLE.read_bytes().replace(ORG.encode(), b"00D5g000009ZzZzEAK"),
        headers=headers,
        timeout=15,
    )
    assert (resend.status_code, ACK in resend.text) == (200, True)
    assert (wrong_token.status_code, other_org.status_code) == (401, 401)
    local_runtime.wait_idle()
    assert len([e for e in stora.events() if "salesforce_opportunity" in json.dumps(e)]) == 1
