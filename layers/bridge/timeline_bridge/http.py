"""Lambda Function URL (payload format 2.0) requests and answers, and the one place where ingest
errors become HTTP answers."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from timeline_bridge.errors import IngestError, MalformedBodyError, PayloadTooLargeError


@dataclass(slots=True)
class WebhookRequest:
    """What a verifier needs: the raw body bytes and case-insensitive headers."""

    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]  # lowercased names
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    # requestContext.domainName: the Function URL's own domain, set by Lambda (never by the client).
    domain_name: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def url(self) -> str:
        """The URL the sender called, rebuilt on this Function URL's own domain.

        The host is `requestContext.domainName`, which Lambda sets. `X-Forwarded-Host` is the
        client's to choose (a Function URL passes it through): trusting it would accept a request
        signed for another host. `Host` stands in only when an event carries no domain name (one
        built by hand). Behind a custom domain, configure the URL instead (`HUBSPOT_WEBHOOK_URL`).
        """
        proto = (self.header("x-forwarded-proto") or "https").split(",")[0].strip()
        host = self.domain_name or self.header("host") or ""
        query = f"?{self.raw_query}" if self.raw_query else ""
        return f"{proto}://{host}{self.raw_path}{query}"

    @classmethod
    def from_function_url_event(cls, event: dict[str, Any], *, max_body_bytes: int) -> WebhookRequest:
        """Build from a Function URL event; raises 413 before decoding anything oversized."""
        raw = event.get("body") or ""
        encoded = bool(event.get("isBase64Encoded"))
        # base64 grows 4/3: a cheap bound before decoding, then the exact check after.
        if len(raw) > (max_body_bytes * 4 // 3 + 4 if encoded else max_body_bytes * 4):
            raise PayloadTooLargeError(f"body exceeds {max_body_bytes} bytes")
        if encoded:
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedBodyError("body is not valid base64") from exc
        else:
            body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        if len(body) > max_body_bytes:
            raise PayloadTooLargeError(f"body exceeds {max_body_bytes} bytes")
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        return cls(
            method=str(http.get("method") or "POST").upper(),
            raw_path=event.get("rawPath") or http.get("path") or "/",
            raw_query=event.get("rawQueryString") or "",
            headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
            body=body,
            path_params=dict(event.get("pathParameters") or {}),
            domain_name=str(context.get("domainName") or ""),
        )


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(payload, separators=(",", ":")),
    }


def text_response(status: int, text: str, content_type: str = "text/plain") -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": text}


def error_response(error: IngestError) -> dict[str, Any]:
    """The sender's answer for an ingest error. Says why, never echoes secrets or the body."""
    headers = {"retry-after": str(error.retry_after)} if error.retry_after is not None else None
    return json_response(error.status, {"error": error.reason, "message": str(error)}, headers)
