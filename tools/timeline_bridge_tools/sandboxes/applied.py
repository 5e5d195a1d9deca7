"""Applied Labs v2026-04 sandbox: `POST /v2026-04/events/`, as Applied Labs documents it.

Enforces: the route with its trailing slash (without it: 404, or a configurable 301), Bearer `AL…`
key (401), a UUID `X-Shop-Id` (400) of a known shop (403 or 404, configurable), JSON only (415),
body rules (400: `name`, at least one of `contact`/`metric`, ISO `event_time`, contact strings,
metric types and UUIDs), 201 (or 200) with `{id}`, and optional `Retry-After` on 429.

What Applied does with repeats is modelled as documented: a metric is counted once per
`deduping_key`; a contact activity is added on every request (no dedupe), so a blind retry of a
job with a contact shows up here as two activities. Error bodies are undocumented: the default is
drf-standardized-errors' `{type, errors[{code, detail, attr}]}`, `error_style="drf"` gives plain
DRF (`{"detail": ...}` and `{field: [messages]}`).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from timeline_bridge_tools.sandboxes.base import (
    RateState,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    parses_as_datetime,
    utc_iso,
)

EVENTS = "/v2026-04/events/"
DEFAULT_SHOP_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
CONTACT_FIELDS = ("email", "name", "phone", "remote_id")
METRIC_STRINGS = ("metric_name", "deduping_key", "metric_object_type", "context_object_type")
METRIC_UUIDS = ("metric_object_id", "context_object_id")
METRIC_FIELDS = frozenset({*METRIC_STRINGS, *METRIC_UUIDS, "value", "additional_properties"})
BODY_FIELDS = frozenset({"name", "description", "event_time", "contact", "metric"})


class AppliedSandbox(Sandbox):
    name = "applied"
    default_rate_limits = ()  # undocumented; tests and the benchmark set their own

    def __init__(
        self,
        api_key: str = "AL_sandbox_key",
        *,
        shop_ids: Iterable[str] = (DEFAULT_SHOP_ID,),
        unknown_shop_status: int = 403,
        missing_slash_status: int = 404,
        success_status: int = 201,
        error_style: str = "standardized",
        retry_after_header: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.api_keys = {api_key}
        self.shop_ids = {s.lower() for s in shop_ids}
        if unknown_shop_status not in (403, 404) or missing_slash_status not in (301, 404):
            raise ValueError("unknown_shop_status: 403 or 404; missing_slash_status: 301 or 404")
        if success_status not in (200, 201) or error_style not in ("standardized", "drf"):
            raise ValueError("success_status: 200 or 201; error_style: 'standardized' or 'drf'")
        self.unknown_shop_status = unknown_shop_status
        self.missing_slash_status = missing_slash_status
        self.success_status = success_status
        self.error_style = error_style
        self.retry_after_header = retry_after_header
        self._metrics: dict[str, dict[str, Any]] = {}
        self._metric_lock = threading.Lock()

    def clear_state(self) -> None:
        with self._metric_lock:
            self._metrics.clear()

    def metrics(self) -> list[dict[str, Any]]:
        """Metric emissions as counted: one per `deduping_key` (emissions without a key each count)."""
        with self._metric_lock:
            return [dict(m) for m in self._metrics.values()]

    def activities(self) -> list[dict[str, Any]]:
        """Contact timeline activities: one per accepted request with a contact, never deduped."""
        return [e for e in self.events() if e.get("contact")]

    # --- errors -----------------------------------------------------------------------------

    def _error(
        self,
        status: int,
        code: str,
        detail: str,
        attr: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SandboxResponse:
        if self.error_style == "drf":
            body: dict[str, Any] = {attr: [detail]} if attr else {"detail": detail}
        else:
            kind = (
                "validation_error"
                if status == 400 and attr
                else "server_error"
                if status >= 500
                else "client_error"
            )
            body = {"type": kind, "errors": [{"code": code, "detail": detail, "attr": attr}]}
        return SandboxResponse.json(status, body, headers)

    def _invalid(self, problems: list[tuple[str, str, str]]) -> SandboxResponse:
        if self.error_style == "drf":
            body: dict[str, list[str]] = {}
            for attr, _, detail in problems:
                body.setdefault(attr, []).append(detail)
            return SandboxResponse.json(400, body)
        return SandboxResponse.json(
            400,
            {
                "type": "validation_error",
                "errors": [{"code": c, "detail": d, "attr": a} for a, c, d in problems],
            },
        )

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.path == EVENTS.rstrip("/"):
            if self.missing_slash_status == 301:
                return SandboxResponse(301, b"", {"Location": EVENTS})
            return self._error(404, "not_found", "Not found.")
        if request.path != EVENTS:
            return self._error(404, "not_found", "Not found.")
        if request.method != "POST":
            return self._error(
                405,
                "method_not_allowed",
                f'Method "{request.method}" not allowed.',
                headers={"Allow": "POST, OPTIONS"},
            )
        key = request.bearer()
        if key is None:
            return self._error(401, "not_authenticated", "Authentication credentials were not provided.")
        if not key.startswith("AL") or key not in self.api_keys:
            return self._error(401, "authentication_failed", "Invalid API key.")
        shop = request.header("x-shop-id")
        if not shop:
            return self._error(400, "required", "X-Shop-Id header is required.", attr="X-Shop-Id")
        if not _is_uuid(shop):
            return self._error(400, "invalid", "X-Shop-Id must be a valid UUID.", attr="X-Shop-Id")
        if shop.lower() not in self.shop_ids:
            if self.unknown_shop_status == 404:
                return self._error(404, "not_found", "Shop not found.")
            return self._error(403, "permission_denied", "You do not have access to this shop.")
        if not request.content_type_is_json():
            media = request.header("content-type") or ""
            return self._error(415, "unsupported_media_type", f'Unsupported media type "{media}" in request.')
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "parse_error", "JSON parse error.")
        failure = self.server_error(request)
        if failure is not None:
            return failure
        problems = _validate(body)
        if problems:
            return self._invalid(problems)
        return self._record(body)

    def _record(self, body: dict[str, Any]) -> SandboxResponse:
        event_id = str(uuid.uuid4())
        contact, metric = body.get("contact"), body.get("metric")
        counted = True
        if metric:
            dedupe = metric.get("deduping_key") or f"anon-{secrets.token_hex(8)}"
            with self._metric_lock:
                counted = dedupe not in self._metrics
                if counted:
                    self._metrics[dedupe] = {**metric, "event_id": event_id}
        # A request stores an event when it adds a contact activity (never deduped) or a metric
        # that had not been counted yet.
        if contact or counted:
            self.store(
                {
                    "id": event_id,
                    "name": body["name"],
                    "description": body.get("description", ""),
                    "event_time": body.get("event_time") or utc_iso(),
                    "contact": contact,
                    "metric": metric,
                }
            )
        return SandboxResponse.json(self.success_status, {"id": event_id})

    # --- throttling and failures ------------------------------------------------------------

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        headers = {}
        wait = params.get("retry_after")
        if wait is None and rate is not None:
            wait = max(int(rate.reset_at - time.time() + 0.999), 1)
        if self.retry_after_header and wait is not None:
            headers["Retry-After"] = str(wait)
        return self._error(429, "throttled", "Request was throttled.", headers=headers)

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return self._error(status, "error", "A server error occurred.")


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _validate(body: Any) -> list[tuple[str, str, str]]:
    """(attr, code, detail) per problem."""
    if not isinstance(body, dict):
        return [("non_field_errors", "invalid", "Invalid data. Expected a dictionary.")]
    problems = [(name, "unknown_field", "Unknown field.") for name in sorted(set(body) - BODY_FIELDS)]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(
            ("name", "required" if name is None else "blank", "This field is required and may not be blank.")
        )
    if body.get("description") is not None and not isinstance(body["description"], str):
        problems.append(("description", "invalid", "Not a valid string."))
    event_time = body.get("event_time")
    if event_time is not None and not parses_as_datetime(event_time):
        problems.append(("event_time", "invalid", "Datetime has wrong format."))
    contact, metric = body.get("contact"), body.get("metric")
    if not contact and not metric:
        problems.append(
            ("non_field_errors", "invalid", "At least one of contact or metric must be provided.")
        )
    if contact is not None:
        if not isinstance(contact, dict):
            problems.append(("contact", "invalid", "Expected an object."))
        else:
            for field, value in contact.items():
                if field not in CONTACT_FIELDS:
                    problems.append((f"contact.{field}", "unknown_field", "Unknown field."))
                elif value is not None and not isinstance(value, str):
                    problems.append((f"contact.{field}", "invalid", "Not a valid string."))
    if metric is not None:
        if not isinstance(metric, dict):
            problems.append(("metric", "invalid", "Expected an object."))
        else:
            problems.extend(_validate_metric(metric))
    return problems


def _validate_metric(metric: dict[str, Any]) -> list[tuple[str, str, str]]:
    problems = [
        (f"metric.{f}", "unknown_field", "Unknown field.") for f in sorted(set(metric) - METRIC_FIELDS)
    ]
    for field in METRIC_STRINGS:
        if metric.get(field) is not None and not isinstance(metric[field], str):
            problems.append((f"metric.{field}", "invalid", "Not a valid string."))
    for field in METRIC_UUIDS:
        if metric.get(field) is not None and not _is_uuid(metric[field]):
            problems.append((f"metric.{field}", "invalid", "Must be a valid UUID."))
    value = metric.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        problems.append(("metric.value", "invalid", "A valid number is required."))
    props = metric.get("additional_properties")
    if props is not None and (
        not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values())
    ):
        problems.append(("metric.additional_properties", "invalid", "Must be an object of strings."))
    return problems
