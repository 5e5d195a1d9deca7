"""Salesforce Outbound Messages: a SOAP 1.1 body, a token in the URL (Salesforce signs nothing).

An Outbound Message (sent by a Flow or a workflow rule) posts `notifications`: the org's
`OrganizationId`, the `ActionId`, an optional `SessionId`, the org's API URLs, and 1 to 100
`Notification`s, each an `Id` and the `sObject` with the fields the action picked.

Credentials (`SalesforceSource.verify`), checked in this order:
- the query's `token` equals `SALESFORCE_WEBHOOK_TOKEN` (constant time; a JSON list of several
  during a rotation): the endpoint URL configured in Salesforce carries it, `?token=<value>`. It is
  checked before any XML is read, and never logged (ingest logs headers, never the query);
- the body's `OrganizationId` is one of `SALESFORCE_ORGANIZATION_IDS`: a token that leaked does not
  let another org post (a body that cannot be read for it is 400). Both refusals are 401; no
  org id configured is 503 (fail closed). `parse` checks neither, so dry runs read samples.

The body is parsed with defusedxml: a DTD (so any entity) is refused as malformed (400), like
bad XML and a body that is no Outbound Message. Each Notification is one source event:

- type: the sObject's type (`Opportunity`), what the action was defined on;
- identity: the Notification `Id`. Salesforce resends a message until it is acknowledged (for
  24 h) and a resend carries the record's latest values, so a resend is a duplicate whatever its
  fields say: the fingerprint is the id alone;
- event: `{OrganizationId, ActionId, EnterpriseUrl, PartnerUrl, NotificationId, sObjectType,
  sObject: {field: value}}`, each field as the text Salesforce sent (`xsi:nil` is null). The
  `SessionId` (an API session of the sending user) is never kept.

An accepted request, duplicates included, is answered with the SOAP acknowledgement
(`notificationsResponse` with `<Ack>true</Ack>`, `text/xml`): anything else and Salesforce retries.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from xml.etree.ElementTree import Element  # the type only: parsing is defusedxml's

from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.http import WebhookRequest, text_response
from timeline_bridge.sources.base import (
    Clock,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceEvent,
    SourceSpec,
    equal,
    fixed_secret,
    iso_from_epoch,
    require_secrets,
)

NAME = "salesforce"
SECRET_NAME = "SALESFORCE_WEBHOOK_TOKEN"  # noqa: S105 - the variable name, not a value
ORGANIZATION_IDS_VARIABLE = "SALESFORCE_ORGANIZATION_IDS"
TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter's name
# The org of events/salesforce/: what `bridge dev` accepts unless SALESFORCE_ORGANIZATION_IDS is set.
SAMPLE_ORGANIZATION_ID = "00D5g000004XyZaEAK"
MAX_NOTIFICATIONS = 100  # what Salesforce sends at most in one message

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
# The fields of the message itself, kept on every event (SessionId is left out on purpose).
MESSAGE_FIELDS = ("OrganizationId", "ActionId", "EnterpriseUrl", "PartnerUrl")

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body>"
    "</soapenv:Envelope>"
)


def acknowledgement() -> dict[str, Any]:
    """The answer Salesforce takes as delivered: without it, the message is sent again."""
    return text_response(200, ACK, "text/xml; charset=utf-8")


def organization_key(value: str) -> str:
    """An org id compared by its 15 characters: the 18-character form only appends a checksum of
    their case, and Setup shows the 15-character one while messages carry 18."""
    return value.strip()[:15]


def verify(request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
    """Raise SignatureError unless the query's `token` equals one of `secrets`. `now` is unused
    (nothing is timestamped) and kept for the common verifier signature."""
    keys = require_secrets(secrets, SECRET_NAME)
    given = parse_qs(request.raw_query, keep_blank_values=True).get(TOKEN_PARAMETER) or []
    if len(given) != 1 or not given[0]:
        raise SignatureError("the URL carries no single token parameter", reason="signature_missing")
    # Compare against every configured value so timing says nothing about which one matched.
    matched = False
    for secret in keys:
        matched |= equal(secret, given[0])
    if not matched:
        raise SignatureError("the URL's token does not match")


def check_organization(notifications: Element, organization_ids: Sequence[str]) -> None:
    """Raise SignatureError unless the message's OrganizationId is one of `organization_ids`
    (SecretNotConfiguredError when there is none: fail closed)."""
    allowed = {organization_key(o) for o in organization_ids if o.strip()}
    if not allowed:
        raise SecretNotConfiguredError(f"{ORGANIZATION_IDS_VARIABLE} is not configured")
    organization = _text(notifications.find(f"{{{OUTBOUND_NS}}}OrganizationId"))
    if not organization:
        raise SignatureError("the message names no OrganizationId", reason="organization_missing")
    if organization_key(organization) not in allowed:
        raise SignatureError(
            f"OrganizationId is not one of {ORGANIZATION_IDS_VARIABLE}", reason="organization_not_allowed"
        )


def parse(request: WebhookRequest) -> ParsedRequest:
    """The Notifications of a verified Outbound Message: one source event each."""
    return parse_notifications(_notifications(request.body))


def parse_notifications(notifications: Element) -> ParsedRequest:
    """One source event per Notification of an Outbound Message's `notifications` element."""
    message = {name: _text(notifications.find(f"{{{OUTBOUND_NS}}}{name}")) for name in MESSAGE_FIELDS}
    items = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    if not items:
        raise MalformedBodyError("the Outbound Message holds no Notification")
    if len(items) > MAX_NOTIFICATIONS:
        raise MalformedBodyError(f"the Outbound Message holds more than {MAX_NOTIFICATIONS} Notifications")
    return ParsedRequest(
        events=[_event(item, message) for item in items], recorded_response=acknowledgement()
    )


def _notifications(body: bytes) -> Element:
    """The `notifications` element of a SOAP envelope; MalformedBodyError for anything else."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedBodyError("the Outbound Message declares a DTD or entities") from exc
    except (ParseError, ValueError) as exc:
        raise MalformedBodyError("the Outbound Message is not well-formed XML") from exc
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise MalformedBodyError("the body is not a SOAP 1.1 envelope")
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise MalformedBodyError("the SOAP body holds no Outbound Message notifications")
    return notifications


def _event(item: Element, message: dict[str, str | None]) -> SourceEvent:
    notification_id = _text(item.find(f"{{{OUTBOUND_NS}}}Id"))
    sobject = item.find(f"{{{OUTBOUND_NS}}}sObject")
    kind = _sobject_type(sobject)
    fields = _fields(sobject) if sobject is not None else {}
    event = {**message, "NotificationId": notification_id, "sObjectType": kind, "sObject": fields}
    return SourceEvent(
        event_type=kind or "unknown",
        event_id=notification_id,
        occurred_at=iso_from_epoch(fields.get("LastModifiedDate")),
        event=event,
        fingerprint={"NotificationId": notification_id},
        known=bool(kind),
    )


def _sobject_type(sobject: Element | None) -> str | None:
    """`Opportunity` from `xsi:type="sf:Opportunity"`."""
    declared = sobject.get(f"{{{XSI_NS}}}type") if sobject is not None else None
    if not declared:
        return None
    return declared.rpartition(":")[2].strip() or None


def _fields(element: Element) -> dict[str, Any]:
    """An sObject's fields by name: text, null for `xsi:nil`, an object for a nested record."""
    fields: dict[str, Any] = {}
    for child in element:
        name = child.tag.rpartition("}")[2]
        if child.get(f"{{{XSI_NS}}}nil") == "true":
            fields[name] = None
        elif len(child):
            fields[name] = _fields(child)
        else:
            fields[name] = child.text or ""
    return fields


def _text(element: Element | None) -> str | None:
    if element is None or element.get(f"{{{XSI_NS}}}nil") == "true":
        return None
    return (element.text or "").strip() or None


class SalesforceSource(Source):
    name = NAME
    secret_name = SECRET_NAME
    scope = NAME

    def __init__(self, organization_ids: Sequence[str]) -> None:
        self.organization_ids = tuple(organization_ids)
        # The body verify read for the org id, and what it read: parse reuses it (one XML parse).
        self._read: tuple[bytes, Element] | None = None

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        verify(request, secrets, now=now)  # the token first: no XML is read for a stranger
        self._read = (request.body, _notifications(request.body))
        check_organization(self._read[1], self.organization_ids)

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        read = self._read  # read once: another request's verify may replace it meanwhile
        if read is not None and read[0] is request.body:
            return parse_notifications(read[1])
        return parse(request)


def with_token(url: str, token: str) -> str:
    """`url` with the `token` query parameter Salesforce's endpoint URL carries (any other kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, values in parse_qs(parts.query, keep_blank_values=True).items() for v in values]
    query = [(k, v) for k, v in query if k != TOKEN_PARAMETER] + [(TOKEN_PARAMETER, token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def sign(request: SigningRequest) -> dict[str, str]:
    """No header: Salesforce sends only its SOAPAction. The token rides in the URL (`signed_url`)."""
    return {"SOAPAction": '""'}


SPEC = SourceSpec(
    name=NAME,
    source=lambda _request, settings: SalesforceSource(settings.salesforce_organization_ids),
    identity="Notification Id",
    secret_names=fixed_secret(SECRET_NAME),
    sign=sign,
    signed_url=with_token,
    example="events/salesforce/opportunity-stage-change.xml",
    content_type=lambda _body: "text/xml; charset=utf-8",
    local_settings={ORGANIZATION_IDS_VARIABLE: SAMPLE_ORGANIZATION_ID},
)
