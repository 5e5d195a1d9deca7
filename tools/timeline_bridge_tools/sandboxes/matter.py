"""Matter sandbox: `POST /v1/timeline_events`, as Matter documents it.

Enforces: the one append-only route (405 for PATCH/PUT/DELETE), Bearer key (401
`auth_token_invalid`) whose mode matches the host (401 `auth_token_mode_mismatch`),
`Matter-Version` in the active set, a UUID `Idempotency-Key` of at most 255 chars (400
`validation_header_invalid`), JSON bodies (400 `validation_body_invalid`), field rules (422
`validation_failed` with `errors[{field, code, message}]`), 201 with the resource envelope and a
`Matter-Request-Id` header, idempotency per key and token for 24 h (same body replays status, body
and request id; another body is 409 `validation_idempotency_key_conflict`; 5xx never memoised),
`X-RateLimit-*` on every answer, 429 `rate_limited` with `Retry-After` and `retry_after`, and
RFC 7807 `application/problem+json` for every non-2xx.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from timeline_bridge_tools.sandboxes.base import (
    RateState,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    parses_as_datetime,
)

EVENTS = "/v1/timeline_events"
KINDS = ("formation", "governance", "equity", "filing", "personnel", "banking", "compliance", "mail", "audit")
FIELDS = frozenset({"kind", "title", "occurred_at", "actor", "ref"})
VERSIONS = ("2026-06-10", "2026-05-01")
KEY_PREFIXES = ("sk_test_", "sk_live_", "pk_", "tok_")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# sk_test_ keys get the test-mode limits; live keys the live ones.
LIMITS = {"test": ((25, 1.0), (250, 60.0)), "live": ((100, 1.0), (1000, 60.0))}
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
}


@dataclass(frozen=True)
class _Memo:
    fingerprint: str
    response: SandboxResponse


def request_id() -> str:
    return f"req_{secrets.token_urlsafe(9)}"


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    rid: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> SandboxResponse:
    rid = rid or request_id()
    body = {
        "type": f"https://mattermode.com/docs/errors/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": f"/requests/{rid}",
        "code": code,
        "doc_url": f"https://docs.mattermode.com/errors/{code}",
        "request_id": rid,
        **extra,
    }
    return SandboxResponse.json(
        status, body, {"Matter-Request-Id": rid, **(headers or {})}, content_type=PROBLEM
    )


class MatterSandbox(Sandbox):
    name = "matter"
    default_rate_limits = LIMITS["test"]

    def __init__(
        self,
        api_key: str = "sk_test_sandbox",
        *,
        mode: str | None = None,
        versions: Iterable[str] = VERSIONS,
        **options: Any,
    ) -> None:
        """`mode`: the host's mode, "test" (api.test.mattermode.com) or "live"; by default the
        mode of `api_key`, so that key works and a key of the other mode gets
        `auth_token_mode_mismatch`."""
        self.mode = mode or ("live" if api_key.startswith("sk_live_") else "test")
        if self.mode not in LIMITS:
            raise ValueError("mode must be 'test' or 'live'")
        self.default_rate_limits = LIMITS[self.mode]
        super().__init__(**options)
        self.api_keys = {api_key}
        self.versions = frozenset(versions)

    def add_key(self, api_key: str) -> None:
        self.api_keys.add(api_key)

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.path.rstrip("/") != EVENTS and not request.path.startswith(EVENTS + "/"):
            return problem(404, "resource_not_found", f"No route for {request.path}")
        if request.method != "POST" or request.path.rstrip("/") != EVENTS:
            # Append-only: there is no PATCH or DELETE on TimelineEvent.
            return problem(
                405, "method_not_allowed", "Timeline events are append-only.", headers={"Allow": "POST"}
            )
        authorization = request.header("authorization")
        if not authorization:
            return problem(401, "auth_token_invalid", "Missing Authorization header.")
        key = request.bearer()
        if key is None or any(ord(c) < 32 for c in authorization):
            return problem(
                400,
                "validation_header_invalid",
                "Authorization must be 'Bearer <key>'.",
                param="Authorization",
            )
        if not key.startswith(KEY_PREFIXES) or key not in self.api_keys:
            return problem(401, "auth_token_invalid", "The API key is not valid.")
        key_mode = "live" if key.startswith("sk_live_") else "test" if key.startswith("sk_test_") else None
        if key_mode and key_mode != self.mode:
            return problem(
                401, "auth_token_mode_mismatch", f"A {key_mode} key cannot be used on the {self.mode} host."
            )
        version = request.header("matter-version")
        if not version or version not in self.versions:
            return problem(
                400,
                "validation_header_invalid",
                f"Matter-Version must be one of {sorted(self.versions)}.",
                param="Matter-Version",
            )
        idem = request.header("idempotency-key")
        if not idem or len(idem) > 255 or not _is_uuid(idem):
            return problem(
                400, "validation_header_invalid", "Idempotency-Key must be a UUID.", param="Idempotency-Key"
            )
        if not request.content_type_is_json():
            return problem(
                400,
                "validation_header_invalid",
                "Content-Type must be application/json.",
                param="Content-Type",
            )
        try:
            body = request.json()
        except ValueError:
            return problem(400, "validation_body_invalid", "The body is not valid JSON.")

        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        scoped = f"{key}\x1f{idem.lower()}"  # keys are scoped per token
        memo = self.idempotency.begin(scoped)
        if memo is not None:
            if memo.fingerprint == fingerprint:
                return SandboxResponse(memo.response.status, memo.response.body, dict(memo.response.headers))
            return problem(
                409,
                "validation_idempotency_key_conflict",
                "This Idempotency-Key was used with a different request body.",
                param="Idempotency-Key",
            )
        record = None
        try:
            response = self._append(request, body)
            # Only successes and permanent failures are memoised; a 5xx is never stored, so a
            # retry with the same key runs fresh.
            if response.status < 500:
                record = _Memo(fingerprint, response)
            return response
        finally:
            self.idempotency.finish(scoped, record)

    def _append(self, request: SandboxRequest, body: Any) -> SandboxResponse:
        failure = self.server_error(request)
        if failure is not None:
            return failure
        errors = _validate(body)
        if errors:
            return problem(422, "validation_failed", "The request body failed validation.", errors=errors)
        rid = request_id()
        now = int(time.time())
        event = {
            "id": f"tle_{secrets.token_hex(8)}",
            "object": "timeline_event",
            "created": now,
            "updated": now,
            "mode": self.mode,
            "metadata": {},
            "kind": body["kind"],
            "title": body["title"],
            "occurred_at": body["occurred_at"],
            "actor": body.get("actor"),
            "ref": body.get("ref"),
        }
        self.store(event, key=event["id"])
        return SandboxResponse.json(201, event, {"Matter-Request-Id": rid})

    # --- throttling and failures ------------------------------------------------------------

    def decorate(self, response: SandboxResponse, rate: RateState | None) -> SandboxResponse:
        if rate is not None:
            response.headers.update(_rate_headers(rate.limit, rate.remaining, rate.reset_at))
        response.headers.setdefault("Matter-Request-Id", request_id())
        return response

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        if rate is not None and rate.exceeded and "retry_after" not in params:
            wait = max(math.ceil(rate.reset_at - time.time()), 1)
            limit = rate.limit
        else:
            wait = int(params.get("retry_after", 1))
            limit = int(params.get("limit", 25))
        headers = {"Retry-After": str(wait), **_rate_headers(limit, 0, time.time() + wait)}
        return problem(
            429,
            "rate_limited",
            "Too many requests; retry after the indicated delay.",
            headers=headers,
            retry_after=wait,
        )

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return problem(status, "internal_error", "An unexpected error occurred. Retrying is safe.")


def _rate_headers(limit: int, remaining: int, reset_at: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(math.ceil(reset_at)),
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)


def _validate(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict):
        return [{"field": "", "code": "invalid_type", "message": "The body must be an object."}]
    errors = [
        {"field": name, "code": "unknown_field", "message": f"Unknown field {name!r}."}
        for name in sorted(set(body) - FIELDS)
    ]
    kind = body.get("kind")
    if kind is None:
        errors.append({"field": "kind", "code": "required", "message": "kind is required."})
    elif kind not in KINDS:
        errors.append(
            {"field": "kind", "code": "invalid_enum", "message": f"kind must be one of {', '.join(KINDS)}."}
        )
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        errors.append({"field": "title", "code": "required", "message": "title must be a non-empty string."})
    occurred = body.get("occurred_at")
    if occurred is None:
        errors.append({"field": "occurred_at", "code": "required", "message": "occurred_at is required."})
    elif not _is_rfc3339(occurred):
        errors.append(
            {
                "field": "occurred_at",
                "code": "invalid_format",
                "message": "occurred_at must be an RFC 3339 date-time.",
            }
        )
    for name in ("actor", "ref"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append({"field": name, "code": "invalid_type", "message": f"{name} must be a string."})
    return errors


def _is_rfc3339(value: Any) -> bool:
    return isinstance(value, str) and bool(RFC3339.match(value)) and parses_as_datetime(value.upper())
