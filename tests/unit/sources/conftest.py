"""Fixtures for the source tests: Function URL requests built the way Lambda delivers them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from timeline_bridge.http import WebhookRequest

# A fixed "now" for every verifier test: 2025-11-23T12:13:20Z.
NOW = 1763900000.0


def function_url_event(
    body: bytes | str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    host: str = "hooks.example.com",
    path: str = "/",
    query: str = "",
    proto: str = "https",
    encode: bool = False,
) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": host, "x-forwarded-proto": proto, **(headers or {})},
        # Lambda names the Function URL's own domain here, whatever headers the client sent.
        "requestContext": {"domainName": host, "http": {"method": method, "path": path}},
        "body": base64.b64encode(raw).decode() if encode else raw.decode("utf-8", "surrogateescape"),
        "isBase64Encoded": encode,
    }


@pytest.fixture
def make_request() -> Any:
    """`make_request(body, headers, host=..., path=..., query=..., proto=..., method=..., encode=...)`
    → the WebhookRequest Lambda would hand us (headers lowercased, body as raw bytes)."""

    def build(body: bytes | str, headers: dict[str, str] | None = None, **options: Any) -> WebhookRequest:
        return WebhookRequest.from_function_url_event(
            function_url_event(body, headers, **options), max_body_bytes=1024 * 1024
        )

    return build


@pytest.fixture
def frozen() -> Any:
    """The frozen clock: a callable returning NOW."""
    return lambda: NOW
