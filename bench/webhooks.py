"""Signed Function URL events (payload format 2.0) for every source, as each sender signs them.

Signing uses the same functions the verifiers check against (`sources.<name>`), so a request built
here is accepted by ingest exactly like the sender's own.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from bench.context import ROOT

SECRETS = {
    "HUBSPOT_CLIENT_SECRET": "bench-hubspot-client-secret",
    "SLACK_SIGNING_SECRET": "bench-slack-signing-secret",
    "PIPEDRIVE_BASIC_AUTH": "bench:pipedrive-password",
    "GENERIC_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"bench-generic-secret-32-bytes!!!").decode(),
    "SALESFORCE_WEBHOOK_TOKEN": "bench-salesforce-token",
}
HOST = "abcdefghij.lambda-url.eu-west-1.on.aws"
TIMESTAMP = 1_767_225_600  # fixed clock (seconds): signatures stay valid however long the bench runs


def hubspot_body(n: int = 1, *, first_id: int = 1000) -> bytes:
    """A HubSpot batch of `n` deal stage changes (the seed use case)."""
    events = [
        {
            "eventId": first_id + i,
            "subscriptionId": 2413503,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": TIMESTAMP * 1000 - 5000 + i,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": 9_000_000 + i,
            "propertyName": "dealstage",
            "propertyValue": "contractsent",
            "changeSource": "CRM_UI",
            "sourceId": "userId:76023669",
        }
        for i in range(n)
    ]
    return json.dumps(events, separators=(",", ":")).encode()


def slack_body(n: int = 0) -> bytes:
    """A Slack interactivity click (block_actions, approve button), form-encoded as Slack posts it."""
    payload = {
        "type": "block_actions",
        "trigger_id": f"1337.42.{n:08d}abcdef",
        "user": {"id": "U04ABCDEF", "username": "ana", "name": "ana", "team_id": "T0123"},
        "team": {"id": "T0123", "domain": "acme"},
        "container": {"type": "message", "message_ts": "1767225590.000100", "channel_id": "C0456"},
        "channel": {"id": "C0456", "name": "approvals"},
        "message": {"ts": "1767225590.000100", "text": "Approve discount for deal 9000001?"},
        "actions": [
            {
                "action_id": "approve",
                "block_id": "deal-9000001",
                "value": "deal:9000001",
                "type": "button",
                "action_ts": f"{TIMESTAMP - 3}.{n:06d}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def pipedrive_body(n: int = 0) -> bytes:
    """A Pipedrive v2 deal stage change, with `previous`."""
    body = {
        "meta": {
            "action": "change",
            "entity": "deal",
            "entity_id": str(5000 + n),
            "id": f"c9f5d7a2-0b1e-4f53-9d5c-{n:012d}",
            "company_id": "7771234",
            "user_id": "1234567",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "version": "2.0",
            "webhook_id": "998877",
            "attempt": 1,
        },
        "data": {"id": 5000 + n, "title": "Acme renewal", "stage_id": 3, "status": "open", "value": 1200},
        "previous": {"stage_id": 2},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def generic_body(n: int = 0) -> bytes:
    body = {"type": "invoice.paid", "id": f"evt_{n:08d}", "data": {"invoice": "in_1", "amount": 4200}}
    return json.dumps(body, separators=(",", ":")).encode()


def salesforce_body(n: int = 0) -> bytes:
    """The shipped Outbound Message sample (one opportunity Notification), its org the one
    `local_settings()` lets in."""
    return (ROOT / "events" / "salesforce" / "opportunity-stage-change.xml").read_bytes()


# One request's body per source, by sequence number (HubSpot's: a batch of one).
BODIES = {
    "hubspot": lambda n=0: hubspot_body(1, first_id=1000 + n),
    "slack": slack_body,
    "pipedrive": pipedrive_body,
    "generic": generic_body,
    "salesforce": salesforce_body,
}


def local_settings() -> dict[str, str]:
    """The settings each source's function gets in a local run when none are set (its spec's
    `local_settings`: Salesforce accepts the org its sample comes from)."""
    from timeline_bridge.sources import SOURCE_SPECS

    return {name: value for spec in SOURCE_SPECS.values() for name, value in spec.local_settings.items()}


@dataclass(frozen=True, slots=True)
class SignedRequest:
    source: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""  # a sender that signs its URL (Salesforce's ?token=) puts it here

    def function_url_event(self) -> dict[str, Any]:
        """What Lambda hands the handler for this request (payload format 2.0, text body)."""
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": dict(self.headers),
            "requestContext": {
                "http": {
                    "method": "POST",
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.9",
                },
                "domainName": HOST,
                "timeEpoch": TIMESTAMP * 1000,
            },
            "body": self.body.decode(),
            "isBase64Encoded": False,
        }


SECRET_NAMES = {
    "hubspot": "HUBSPOT_CLIENT_SECRET",
    "slack": "SLACK_SIGNING_SECRET",
    "pipedrive": "PIPEDRIVE_BASIC_AUTH",
    "generic": "GENERIC_WEBHOOK_SECRET",
    "salesforce": "SALESFORCE_WEBHOOK_TOKEN",
}


def sign(
    source: str,
    body: bytes,
    *,
    host: str = HOST,
    scheme: str = "https",
    path: str | None = None,
    timestamp: int = TIMESTAMP,
    secrets: dict[str, str] | None = None,
) -> SignedRequest:
    """Sign `body` for `source` as its sender would (`timeline_bridge_tools.signing`, what `bridge send`
    uses), for a POST to `scheme://host/path`: a Function URL's root by default, generic endpoints
    named by their path."""
    from timeline_bridge.sources import source_spec
    from timeline_bridge_tools import signing

    spec = source_spec(source)
    path = path or ("/generic/bench" if source == "generic" else "/")
    secret = (secrets or SECRETS)[SECRET_NAMES[source]]
    content_type = spec.sample_content_type(body)
    url = f"{scheme}://{host}{path}"
    query = urllib.parse.urlsplit(spec.signed_url(url, secret)).query if spec.signed_url else ""
    options: dict[str, Any] = {"now": timestamp}
    if source == "hubspot":
        options["url"] = url
    if source == "generic":
        options["name"] = path.rstrip("/").rsplit("/", 1)[-1]
        options["webhook_id"] = "msg_" + str(json.loads(body).get("id", "x"))
    headers = {"host": host, "x-forwarded-proto": scheme, "user-agent": "bench", "content-type": content_type}
    headers.update({k.lower(): v for k, v in signing.sign_request(source, body, secret, **options).items()})
    return SignedRequest(source, path, headers, body, query)
