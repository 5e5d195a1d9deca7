"""Salesforce Outbound Messages: the URL token and the org id, the SOAP body parsed safely, one
source event per Notification, the SOAP acknowledgement."""

from __future__ import annotations

from pathlib import Path

import pytest
from timeline_bridge.config import Settings
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import base, salesforce, source_spec

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = (ROOT / "events" / "salesforce" / "opportunity-stage-change.xml").read_bytes()
TOKEN = "sf-outbound-7Qk2Lm9Xv4Rt8Wz3"
ORG = "00D5g000004XyZaEAK"


def message(*notifications: str, organization: str | None = ORG, prolog: str = "") -> bytes:
    """An Outbound Message envelope holding `notifications` (Notification elements as XML text)."""
    org = f"<OrganizationId>{organization}</OrganizationId>" if organization is not None else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"{org}<ActionId>04k5g000000CaBcAAK</ActionId><SessionId>00D5g!AQ0AQsecret-session</SessionId>"
        f"{''.join(notifications)}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def notification(notification_id: str, stage: str = "Prospecting", kind: str = "Opportunity") -> str:
    return (
        f"<Notification><Id>{notification_id}</Id>"
        f'<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>0065g00000AbCdEAAV</sf:Id><sf:StageName>{stage}</sf:StageName>"
        '<sf:Amount xsi:nil="true"/></sObject></Notification>'
    )


def source(organization_ids: tuple[str, ...] = (ORG,)) -> salesforce.SalesforceSource:
    return salesforce.SalesforceSource(organization_ids)


# --- the token ------------------------------------------------------------------------------------


def test_verify_accepts_when_the_query_token_matches(make_request):
    source().verify(make_request(SAMPLE, query=f"token={TOKEN}"), [TOKEN])


def test_verify_accepts_either_token_when_two_are_active_during_a_rotation(make_request):
    for active in ([TOKEN, "old-token-5Yb1"], ["old-token-5Yb1", TOKEN]):
        source().verify(make_request(SAMPLE, query=f"other=1&token={TOKEN}"), active)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        pytest.param("", "signature_missing", id="no-query"),
        pytest.param("token=", "signature_missing", id="empty-token"),
        pytest.param(f"tok={TOKEN}", "signature_missing", id="other-parameter"),
        pytest.param(f"token={TOKEN}&token={TOKEN}", "signature_missing", id="two-tokens"),
        pytest.param(f"token={TOKEN[:-1]}", "signature_invalid", id="shorter"),
        pytest.param(f"token={TOKEN}x", "signature_invalid", id="longer"),
        pytest.param(f"token={TOKEN.upper()}", "signature_invalid", id="other-case"),
    ],
)
def test_verify_refuses_with_401_when_the_token_is_missing_or_wrong(make_request, query, reason):
    with pytest.raises(SignatureError) as refused:
        source().verify(make_request(SAMPLE, query=query), [TOKEN])
    assert (refused.value.status, refused.value.reason) == (401, reason)


def test_verify_compares_the_token_in_constant_time_with_every_active_value(make_request, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = base.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(base.hmac, "compare_digest", spy)
    source().verify(make_request(SAMPLE, query=f"token={TOKEN}"), [TOKEN, "old-token-5Yb1"])

    # Both values are compared, even after the first matched: timing tells nothing.
    assert compared == [(TOKEN.encode(), TOKEN.encode()), (b"old-token-5Yb1", TOKEN.encode())]


def test_verify_fails_closed_with_503_when_no_token_is_configured(make_request):
    with pytest.raises(SecretNotConfiguredError):
        source().verify(make_request(SAMPLE, query=f"token={TOKEN}"), [])


def test_no_xml_is_read_when_the_token_is_wrong(make_request):
    # A stranger's body, however broken, gets the 401 before any parsing.
    with pytest.raises(SignatureError):
        source().verify(make_request(b"<unclosed", query="token=guess"), [TOKEN])


# --- the organization -------------------------------------------------------------------------------


@pytest.mark.parametrize("configured", [ORG, ORG[:15], f"00D000000000001,{ORG}"], ids=["18", "15", "list"])
def test_verify_accepts_when_the_org_id_is_listed_in_15_or_18_characters(make_request, configured):
    ids = Settings.from_environ({"SALESFORCE_ORGANIZATION_IDS": configured}).salesforce_organization_ids
    source(ids).verify(make_request(SAMPLE, query=f"token={TOKEN}"), [TOKEN])


OTHER_ORG = "00D5g000004XyZbEAK"


@pytest.mark.parametrize(
    ("organization", "reason"),
    [
        pytest.param(OTHER_ORG, "organization_not_allowed", id="other-org"),
        pytest.param(OTHER_ORG[:15], "organization_not_allowed", id="other-org-15"),
        pytest.param(None, "organization_missing", id="missing"),
        pytest.param("", "organization_missing", id="empty"),
    ],
)
def test_verify_refuses_with_401_when_the_org_id_is_missing_or_not_listed(make_request, organization, reason):
    body = message(notification("04l1"), organization=organization)
    with pytest.raises(SignatureError) as refused:
        source((ORG,)).verify(make_request(body, query=f"token={TOKEN}"), [TOKEN])
    assert (refused.value.status, refused.value.reason) == (401, reason)


def test_verify_fails_closed_with_503_when_no_org_id_is_configured(make_request):
    with pytest.raises(SecretNotConfiguredError) as refused:
        source(()).verify(make_request(SAMPLE, query=f"token={TOKEN}"), [TOKEN])
    assert "SALESFORCE_ORGANIZATION_IDS" in str(refused.value)


@pytest.mark.parametrize("value", ["00D5g000004XyZ", "00X5g000004XyZaEAK", "00D5g000004XyZaEAK;x"])
def test_settings_refuse_a_value_that_is_no_org_id_naming_the_variable(value):
    with pytest.raises(ValueError, match="SALESFORCE_ORGANIZATION_IDS"):
        Settings.from_environ({"SALESFORCE_ORGANIZATION_IDS": value})


# --- the body -------------------------------------------------------------------------------------


def test_parse_gives_the_sample_opportunity_as_plain_json(make_request):
    [event] = salesforce.parse(make_request(SAMPLE)).events

    assert (event.event_type, event.event_id, event.occurred_at) == (
        "Opportunity",
        "04l5g00000BxYzQAAV",
        "2026-11-23T12:05:00.000Z",
    )
    assert event.event["OrganizationId"] == ORG
    assert event.event["sObjectType"] == "Opportunity"
    assert event.event["sObject"]["StageName"] == "Negotiation/Review"
    assert event.event["sObject"]["Name"] == "Acme Storage - 3 units"


def test_parse_gives_one_event_per_notification_each_with_its_own_id(make_request):
    body = message(notification("04l1", "Prospecting"), notification("04l2", "Closed Won"))
    events = salesforce.parse(make_request(body)).events

    assert [(e.event_id, e.event["sObject"]["StageName"]) for e in events] == [
        ("04l1", "Prospecting"),
        ("04l2", "Closed Won"),
    ]
    assert all(e.known for e in events)


def test_parse_keeps_nil_fields_as_null_and_never_the_session_id(make_request):
    [event] = salesforce.parse(make_request(message(notification("04l1")))).events

    assert event.event["sObject"]["Amount"] is None
    assert "SessionId" not in event.event
    assert "secret-session" not in repr(event)


def test_a_resend_with_newer_values_has_the_same_identity_and_fingerprint(make_request):
    [first] = salesforce.parse(make_request(message(notification("04l1", "Prospecting")))).events
    [resend] = salesforce.parse(make_request(message(notification("04l1", "Closed Won")))).events

    assert (first.event_id, first.fingerprint) == (resend.event_id, resend.fingerprint)


def test_parse_answers_with_the_soap_acknowledgement(make_request):
    answer = salesforce.parse(make_request(SAMPLE)).recorded_response

    assert answer is not None
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"].startswith("text/xml")
    assert "<Ack>true</Ack>" in answer["body"]
    assert "notificationsResponse" in answer["body"]


def test_parse_takes_100_notifications_and_refuses_101(make_request):
    hundred = [notification(f"04l{i}") for i in range(100)]
    assert len(salesforce.parse(make_request(message(*hundred))).events) == 100
    with pytest.raises(MalformedBodyError):
        salesforce.parse(make_request(message(*hundred, notification("04l100"))))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<soapenv:Envelope", id="truncated"),
        pytest.param(b"not xml at all", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"OrganizationId": "00D5g000004XyZaEAK"}', id="json"),
        pytest.param(b"<Envelope><Body/></Envelope>", id="not-soap"),
        pytest.param(message(), id="no-notification"),
        pytest.param(b"\xff\xfe<x/>", id="bad-encoding"),
    ],
)
def test_parse_refuses_with_400_when_the_body_is_no_outbound_message(make_request, body):
    with pytest.raises(MalformedBodyError) as refused:
        salesforce.parse(make_request(body))
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "prolog",
    [
        pytest.param('<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>', id="entities"),
        pytest.param('<!DOCTYPE x SYSTEM "http://169.254.169.254/latest/meta-data/">', id="external-dtd"),
        pytest.param("<!DOCTYPE x []>", id="empty-dtd"),
    ],
)
def test_parse_refuses_with_400_when_the_body_declares_a_dtd_or_entities(make_request, prolog):
    body = message(notification("04l1"), prolog=prolog)
    with pytest.raises(MalformedBodyError, match="DTD"):
        salesforce.parse(make_request(body))


def test_an_unknown_sobject_kind_is_acknowledged_and_not_enqueued(make_request):
    body = message(notification("04l1").replace(' xsi:type="sf:Opportunity"', ""))
    [event] = salesforce.parse(make_request(body)).events
    assert (event.event_type, event.known) == ("unknown", False)


# --- the signing recipe ---------------------------------------------------------------------------


def test_signed_url_appends_the_token_and_keeps_other_parameters():
    spec = source_spec("salesforce")
    assert spec.signed_url is not None
    assert spec.signed_url("http://127.0.0.1:3301/salesforce", "a b&c") == (
        "http://127.0.0.1:3301/salesforce?token=a+b%26c"
    )
    assert spec.signed_url("https://x.example/salesforce?x=1&token=old", TOKEN) == (
        f"https://x.example/salesforce?x=1&token={TOKEN}"
    )
    assert spec.sample_content_type(SAMPLE).startswith("text/xml")
