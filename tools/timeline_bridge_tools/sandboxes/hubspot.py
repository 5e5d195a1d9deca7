"""HubSpot timeline sandbox: the v3 timeline events API and the 2026-03 app events API, as
HubSpot's docs and OpenAPI specs describe them.

Enforces: the v3 routes, Bearer token (401 `INVALID_AUTHENTICATION`), an optional missing scope
(403 with `context.missingScopes`), JSON only, the field types of HubSpot's OpenAPI spec as a
validating HubSpot does (422 `VALIDATION_ERROR` for the whole request, nothing stored: `tokens`
is a map of strings, every id and address a string, `timelineIFrame` sizes integers), events
validated against a template fixture
(required `eventTemplateId`/`tokens`, camelCase fields, unknown template 404 (single) or an item
error (batch), tokens defined on the template, numbers, dates in epoch milliseconds, enumeration
option values, `objectId` for non-contact templates and objectId/email/utk for contacts,
`timelineIFrame` complete, ISO 8601 `timestamp`), `{{uuid}}` and a missing `id` replaced by a
random UUID, an upsert store keyed on (eventTemplateId, id) where the last write wins, batches of
1..100 inputs (201 COMPLETE or 207 with `errors[]` whose `context.id` names the failing input),
and 429 `RATE_LIMIT` with `X-HubSpot-RateLimit-*` headers (Retry-After optional).

The 2026-03 app events routes take occurrences (`eventTypeName`, `id`, string `properties`) of
the event types in a fixture (one per v3 template unless given), store each (type, id) once and
answer a known one with 409 (occurrences are immutable); a batch is atomic: one invalid or known
input refuses it whole (400 or 409) and nothing is stored. The same field types are checked there,
answered with that API's validation status, 400.

A missing v3 `id` is generated, as the live API does ("We will create one for you if you omit
this"), although the spec lists it as required; the bridge always sends one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from timeline_bridge.targets.http import scalar_text

from timeline_bridge_tools.sandboxes.base import (
    RateState,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    parses_as_datetime,
    utc_iso,
)
from timeline_bridge_tools.sandboxes.hubspot_crm import HubspotCrmRoutes

BASE = "/integrators/timeline/v3/events"
GET_EVENT = re.compile(rf"^{re.escape(BASE)}/([^/]+)/([^/]+)$")
APP_EVENTS = "/integrators/timeline/2026-03/events"
MAX_INPUTS = 100
FIELDS = frozenset(
    {
        "eventTemplateId",
        "tokens",
        "id",
        "objectId",
        "email",
        "utk",
        "domain",
        "timestamp",
        "extraData",
        "timelineIFrame",
        "customObjectTypeId",
    }
)
# An occurrence names an event type and its properties where a v3 event names a template and tokens.
APP_FIELDS = (FIELDS - {"eventTemplateId", "tokens", "customObjectTypeId"}) | {
    "eventTypeName",
    "properties",
    "objectTypeFullyQualifiedName",
}
DUPLICATE_OCCURRENCE = (
    "An occurrence for this event type and occurrence ID already exists. Occurrences are immutable."
)
IFRAME_FIELDS = ("linkLabel", "headerLabel", "url", "width", "height")
# The types HubSpot's OpenAPI specs give the fields of a v3 TimelineEvent and of a 2026-03
# AppEventOccurrence: "text map" is an object whose values are strings (`tokens`, `properties`).
SPEC_TYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "eventTemplateId",
            "eventTypeName",
            "id",
            "objectId",
            "email",
            "utk",
            "domain",
            "timestamp",
            "customObjectTypeId",
            "objectTypeFullyQualifiedName",
        ),
        "string",
    ),
    "tokens": "text map",
    "properties": "text map",
    "extraData": "object",
    "timelineIFrame": "iframe",
}
IFRAME_TYPES: dict[str, str] = {
    "linkLabel": "string",
    "headerLabel": "string",
    "url": "string",
    "width": "integer",
    "height": "integer",
}
KB = {"knowledge-base": "https://www.hubspot.com/products/service/knowledge-base"}

# The deal template the shipped HubSpot mapping (hubspot-deal-stage-to-hubspot-timeline) writes to,
# and a contact template; tests and `bridge dev` may pass others.
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
DEFAULT_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "id": "1001298",
        "objectType": "deals",
        "name": "Deal stage changed",
        "tokens": [
            {
                "name": "stage",
                "type": "enumeration",
                "options": [{"label": s, "value": s} for s in DEAL_STAGES],
            },
            {"name": "stage_label", "type": "string"},
            {"name": "changed_at", "type": "date"},
            {"name": "change_source", "type": "string"},
            # Tokens other suites' mappings write (a template may define many; events set some).
            {"name": "deal_name", "type": "string"},
            {"name": "new_stage", "type": "string"},
            {"name": "previous_stage", "type": "string"},
            {"name": "moved_at", "type": "date"},
            {"name": "amount", "type": "number"},
        ],
    },
    {
        "id": "1001299",
        "objectType": "contacts",
        "name": "Contact activity",
        "tokens": [
            {"name": "summary", "type": "string"},
            {"name": "happened_at", "type": "date"},
            {
                "name": "channel",
                "type": "enumeration",
                "options": [
                    {"label": "Slack", "value": "slack"},
                    {"label": "Pipedrive", "value": "pipedrive"},
                ],
            },
        ],
    },
)


# The app event types of the 2026-03 API: one per template, same properties, under the fully
# qualified names HubSpot gives app event types.
DEFAULT_EVENT_TYPES: tuple[dict[str, Any], ...] = tuple(
    {
        "name": f"ae0000001_{re.sub(r'[^a-z0-9]+', '-', t['name'].lower()).strip('-')}",
        "objectType": t["objectType"],
        "properties": t["tokens"],
    }
    for t in DEFAULT_TEMPLATES
)


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


class HubspotSandbox(Sandbox):
    name = "hubspot"
    default_rate_limits = ((100, 10.0),)  # private app, Free/Starter: 100 per 10 s

    def __init__(
        self,
        token: str = "hubspot-sandbox-token",  # noqa: S107 - the sandbox's own fake credential
        *,
        templates: Iterable[Mapping[str, Any]] | None = None,
        event_types: Iterable[Mapping[str, Any]] | None = None,
        missing_scopes: Iterable[str] = (),
        all_invalid_status: int = 207,
        retry_after_header: bool = False,
        **options: Any,
    ) -> None:
        """`templates`: [{id, objectType, tokens: [{name, type, options}]}] (None: the default
        fixture); `event_types`: the same for 2026-03 app events, [{name, objectType, properties}]; `missing_scopes`: answer 403 naming them; `all_invalid_status`: 207 or 400 for a
        batch with no valid input; `retry_after_header`: add Retry-After to 429s."""
        super().__init__(**options)
        self.tokens = {token}
        self.templates = {
            str(t["id"]): dict(t) for t in (DEFAULT_TEMPLATES if templates is None else templates)
        }
        self.event_types = {
            str(t["name"]): dict(t) for t in (DEFAULT_EVENT_TYPES if event_types is None else event_types)
        }
        self.missing_scopes = list(missing_scopes)
        if all_invalid_status not in (207, 400):
            raise ValueError("all_invalid_status must be 207 or 400")
        self.all_invalid_status = all_invalid_status
        self.retry_after_header = retry_after_header
        # The CRM read API shares this host in production (api.hubapi.com), so enrichment's reads
        # (deals, associations, contacts, pipelines) are served here too, under the same token,
        # rate limits and injected faults.
        self.crm = HubspotCrmRoutes(self.tokens)

    def clear_state(self) -> None:
        self.crm.seed()

    def event(self, template_id: str, event_id: str) -> dict[str, Any] | None:
        """The stored event for (template, id), if any."""
        return self.stored(f"{template_id}\x1f{event_id}")

    def occurrence(self, event_type: str, occurrence_id: str) -> dict[str, Any] | None:
        """The stored 2026-03 occurrence for (event type, id), if any."""
        return self.stored(_occurrence_key(event_type, occurrence_id))

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if self.crm.handles(request.path):
            return self.server_error(request) or self.crm.handle(request)
        route = self._route(request)
        if route is None:
            return SandboxResponse.json(
                404, error_body(f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")
            )
        token = request.bearer()
        if token is None or token not in self.tokens:
            return SandboxResponse.json(
                401,
                error_body(
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                    "INVALID_AUTHENTICATION",
                    links={"api key": "https://app.hubspot.com/l/api-key/"},
                ),
            )
        if self.missing_scopes:
            return SandboxResponse.json(
                403,
                error_body(
                    "This app hasn't been granted all required scopes to make this call.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredScopes": self.missing_scopes},
                        }
                    ],
                    context={"missingScopes": self.missing_scopes},
                ),
            )
        failure = self.server_error(request)
        if failure is not None:
            return failure
        if route == "get":
            match = GET_EVENT.match(request.path)
            assert match
            stored = self.event(match.group(1), match.group(2))
            if stored is None:
                return SandboxResponse.json(404, error_body("Event not found", "OBJECT_NOT_FOUND"))
            return SandboxResponse.json(200, stored)
        if not request.content_type_is_json():
            return SandboxResponse.json(
                415, error_body("Unsupported media type; use application/json", "UNSUPPORTED_MEDIA_TYPE")
            )
        try:
            body = request.json()
        except ValueError as exc:
            return SandboxResponse.json(400, error_body(f"Invalid input JSON: {exc}", "VALIDATION_ERROR"))
        return {
            "single": self._single,
            "batch": self._batch,
            "app_single": self._app_single,
            "app_batch": self._app_batch,
        }[route](body)

    @staticmethod
    def _route(request: SandboxRequest) -> str | None:
        if request.method == "POST" and request.path == BASE:
            return "single"
        if request.method == "POST" and request.path == f"{BASE}/batch/create":
            return "batch"
        if request.method == "GET" and GET_EVENT.match(request.path):
            return "get"
        if request.method == "POST" and request.path == APP_EVENTS:
            return "app_single"
        if request.method == "POST" and request.path == f"{APP_EVENTS}/batch":
            return "app_batch"
        return None

    def _single(self, body: Any) -> SandboxResponse:
        if not isinstance(body, dict):
            return SandboxResponse.json(
                400, error_body("Invalid input JSON: expected an object", "VALIDATION_ERROR")
            )
        typed = spec_type_problems(body)
        if typed:
            return _type_error(typed)
        template = self.templates.get(str(body.get("eventTemplateId")))
        if body.get("eventTemplateId") is not None and template is None:
            return SandboxResponse.json(
                404, error_body(f"Event template {body.get('eventTemplateId')} not found", "OBJECT_NOT_FOUND")
            )
        problems = self._validate(body)
        if problems:
            return _validation_error(problems)
        return SandboxResponse.json(201, self._upsert(body))

    def _batch(self, body: Any) -> SandboxResponse:
        started = utc_iso()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return SandboxResponse.json(
                400, error_body("inputs is required and must not be empty", "VALIDATION_ERROR")
            )
        if len(inputs) > MAX_INPUTS:
            return SandboxResponse.json(
                400,
                error_body(
                    f"Too many inputs: {len(inputs)} (at most {MAX_INPUTS} per batch)", "VALIDATION_ERROR"
                ),
            )
        # A request that breaks the spec's types is refused before any input is looked at.
        typed = [
            problem
            for index, item in enumerate(inputs)
            for problem in (
                spec_type_problems(item, f"inputs[{index}].")
                if isinstance(item, dict)
                else [(f"inputs[{index}]", "must be an object")]
            )
        ]
        if typed:
            return _type_error(typed)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            problems = self._validate(item) if isinstance(item, dict) else ["input must be an object"]
            if problems:
                item_id = item.get("id") if isinstance(item, dict) else None
                context = {"id": [str(item_id)]} if item_id else {}
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"Event {item_id or '(no id)'}: " + "; ".join(problems),
                        "context": context,
                        "errors": [{"message": p, "in": "body", "code": "INVALID_INPUT"} for p in problems],
                    }
                )
            else:
                results.append(self._upsert(item))
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": utc_iso(),
        }
        if not errors:
            return SandboxResponse.json(201, answer)
        if not results and self.all_invalid_status == 400:
            return SandboxResponse.json(
                400, error_body("; ".join(e["message"] for e in errors), "VALIDATION_ERROR")
            )
        return SandboxResponse.json(207, {**answer, "numErrors": len(errors), "errors": errors})

    def _validate(self, event: dict[str, Any]) -> list[str]:
        problems = []
        unknown = sorted(set(event) - FIELDS)
        if unknown:
            problems.append(f"Unrecognized field(s) {unknown}; fields are camelCase")
        missing = [name for name in ("eventTemplateId", "tokens") if event.get(name) is None]
        if missing:
            problems.append(f"Cannot build TimelineEvent, some of required attributes are not set {missing}")
            return problems
        template = self.templates.get(str(event["eventTemplateId"]))
        if template is None:
            return [*problems, f"Event template {event['eventTemplateId']} not found"]
        tokens = event["tokens"]
        if not isinstance(tokens, dict):
            return [*problems, "tokens must be an object"]
        defined = {t["name"]: t for t in template.get("tokens", [])}
        for name, value in tokens.items():
            spec = defined.get(name)
            if spec is None:
                problems.append(f"Event template {template['id']} does not have token {name!r}")
                continue
            problem = _check_token(spec, value)
            if problem:
                problems.append(f"token {name!r}: {problem}")
        return problems + _shared_problems(event, template.get("objectType"))

    def _upsert(self, event: dict[str, Any]) -> dict[str, Any]:
        template = self.templates[str(event["eventTemplateId"])]
        event_id = str(event.get("id") or "{{uuid}}")
        while "{{uuid}}" in event_id:
            event_id = event_id.replace("{{uuid}}", str(uuid.uuid4()), 1)
        stored = {
            "id": event_id,
            "eventTemplateId": str(event["eventTemplateId"]),
            "tokens": {k: scalar_text(v) for k, v in event["tokens"].items()},
            "objectId": str(event.get("objectId") or _object_id_for(event)),
            "objectType": template.get("objectType", "contacts"),
            "createdAt": utc_iso(),
        }
        for name in (
            "email",
            "utk",
            "domain",
            "timestamp",
            "extraData",
            "timelineIFrame",
            "customObjectTypeId",
        ):
            if event.get(name) is not None:
                stored[name] = event[name]
        # "If you use the same ID ... the last to be processed will win": one event per (template, id).
        self.store(stored, key=f"{stored['eventTemplateId']}\x1f{event_id}")
        return stored

    # --- 2026-03 app events ------------------------------------------------------------------

    def _app_single(self, body: Any) -> SandboxResponse:
        problems = self._validate_occurrence(body) if isinstance(body, dict) else ["expected an object"]
        if problems:
            return _validation_error(problems)
        with self._lock:
            if self.occurrence(body["eventTypeName"], body["id"]) is not None:
                return SandboxResponse.json(409, error_body(DUPLICATE_OCCURRENCE, "CONFLICT"))
            return SandboxResponse.json(201, self._store_occurrence(body))

    def _app_batch(self, body: Any) -> SandboxResponse:
        started = utc_iso()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_INPUTS:
            return _validation_error([f"inputs must hold 1 to {MAX_INPUTS} occurrences"])
        problems = [
            f"inputs[{index}]: {problem}"
            for index, item in enumerate(inputs)
            for problem in (
                self._validate_occurrence(item) if isinstance(item, dict) else ["expected an object"]
            )
        ]
        if problems:
            return _validation_error(["none were accepted", *problems])
        with self._lock:
            keys = [(item["eventTypeName"], item["id"]) for item in inputs]
            known = [k for k in keys if self.occurrence(*k) is not None]
            if known or len(set(keys)) < len(keys):
                return SandboxResponse.json(
                    409,
                    error_body(
                        f"{DUPLICATE_OCCURRENCE} None were accepted.",
                        "CONFLICT",
                        context={"id": sorted({k[1] for k in known})},
                    ),
                )
            results = [self._store_occurrence(item) for item in inputs]
        answer = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": utc_iso()}
        return SandboxResponse.json(200, answer)

    def _validate_occurrence(self, event: dict[str, Any]) -> list[str]:
        # Property values are checked against the event type below ("values are strings").
        problems = [f"{field} {reason}" for field, reason in spec_type_problems(event) if "." not in field]
        unknown = sorted(set(event) - APP_FIELDS)
        if unknown:
            problems.append(f"Unrecognized field(s) {unknown}; fields are camelCase")
        missing = [n for n in ("eventTypeName", "id", "properties") if event.get(n) in (None, "")]
        if missing:
            return [
                *problems,
                f"Cannot build AppEventOccurrence, some of required attributes are not set {missing}",
            ]
        event_type = self.event_types.get(str(event["eventTypeName"]))
        if event_type is None:
            return [*problems, f"Event type {event['eventTypeName']} not found"]
        if not isinstance(event["properties"], dict):
            return [*problems, "properties must be an object"]
        defined = {p["name"]: p for p in event_type.get("properties", [])}
        for name, value in event["properties"].items():
            spec = defined.get(name)
            if spec is None:
                problems.append(f"Event type {event_type['name']} does not have property {name!r}")
            elif not isinstance(value, str):
                problems.append(f"property {name!r}: values are strings")
            elif problem := _check_token(spec, value):
                problems.append(f"property {name!r}: {problem}")
        return problems + _shared_problems(event, event_type.get("objectType"))

    def _store_occurrence(self, event: dict[str, Any]) -> dict[str, Any]:
        event_type = self.event_types[str(event["eventTypeName"])]
        stored = {
            **event,
            "objectId": str(event.get("objectId") or _object_id_for(event)),
            "objectType": event_type.get("objectType", "contacts"),
            "createdAt": utc_iso(),
        }
        self.store(stored, key=_occurrence_key(event["eventTypeName"], event["id"]))
        return stored

    # --- throttling and failures ------------------------------------------------------------

    def decorate(self, response: SandboxResponse, rate: RateState | None) -> SandboxResponse:
        """HubSpot says on every answer how many calls the account has left in the window."""
        if rate is not None:
            response.headers.update(
                {
                    "X-HubSpot-RateLimit-Max": str(rate.limit),
                    "X-HubSpot-RateLimit-Remaining": str(rate.remaining),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(rate.window * 1000)),
                }
            )
        return response

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        policy = str(params.get("policy", "TEN_SECONDLY_ROLLING"))
        interval_ms = int(params.get("interval_ms", rate.window * 1000 if rate else 10_000))
        headers = {
            "X-HubSpot-RateLimit-Max": str(params.get("limit", rate.limit if rate else 100)),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
        }
        retry_after = params.get("retry_after")
        if retry_after is None and self.retry_after_header and rate is not None:
            retry_after = max(int(rate.reset_at - time.time() + 0.999), 1)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        message = (
            "You have reached your daily limit."
            if policy == "DAILY"
            else "You have reached your ten_secondly_rolling limit."
        )
        body = error_body(message, "RATE_LIMITS", errorType="RATE_LIMIT", policyName=policy)
        return SandboxResponse.json(429, body, headers)

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return SandboxResponse.json(status, error_body("internal error", "INTERNAL_ERROR"))


def _occurrence_key(event_type: str, occurrence_id: str) -> str:
    return f"app\x1f{event_type}\x1f{occurrence_id}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else type(value).__name__


def _has_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict}[kind])


def spec_type_problems(event: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(field, reason) for every value whose JSON type HubSpot's spec refuses (`SPEC_TYPES`).
    Fields the spec does not have are left to the template checks ("camelCase")."""
    problems: list[tuple[str, str]] = []
    for name, value in event.items():
        kind = SPEC_TYPES.get(name)
        field = prefix + name
        if kind is None:
            continue
        if kind == "string" and not _has_type(value, "string"):
            problems.append((field, f"must be a string, not {_json_type(value)}"))
        elif kind != "string" and not isinstance(value, dict):
            problems.append((field, f"must be an object, not {_json_type(value)}"))
        elif kind == "text map":
            for key, item in value.items():
                if not isinstance(item, str):
                    problems.append(
                        (
                            f"{field}.{key}",
                            f"must be a string, not {_json_type(item)} ({name} maps names to strings)",
                        )
                    )
        elif kind == "iframe":
            for key, want in IFRAME_TYPES.items():
                if key in value and not _has_type(value[key], want):
                    article = "an" if want == "integer" else "a"
                    problems.append(
                        (f"{field}.{key}", f"must be {article} {want}, not {_json_type(value[key])}")
                    )
    return problems


def _type_error(problems: list[tuple[str, str]]) -> SandboxResponse:
    """422, HubSpot's answer to a body its OpenAPI validation refuses: nothing was processed."""
    return SandboxResponse.json(
        422,
        error_body(
            "Invalid input JSON: " + "; ".join(f"{field} {reason}" for field, reason in problems),
            "VALIDATION_ERROR",
            errors=[
                {"message": f"{field} {reason}", "in": field, "code": "INVALID_TYPE"}
                for field, reason in problems
            ],
        ),
    )


def _validation_error(problems: list[str]) -> SandboxResponse:
    return SandboxResponse.json(
        400,
        error_body(
            "; ".join(problems),
            "VALIDATION_ERROR",
            errors=[{"message": p, "in": "body", "code": "INVALID_INPUT"} for p in problems],
        ),
    )


def _shared_problems(event: dict[str, Any], object_type: Any) -> list[str]:
    """What v3 events and 2026-03 occurrences share: the record the event is on (contacts by
    objectId, email or utk; others by objectId), a complete iframe, an ISO 8601 timestamp."""
    problems = []
    if object_type == "contacts":
        if not any(event.get(k) for k in ("objectId", "email", "utk")):
            problems.append("contact events need one of objectId, email or utk")
    elif not event.get("objectId"):
        problems.append(f"objectId is required for {object_type} events")
    iframe = event.get("timelineIFrame")
    if iframe is not None:
        if not isinstance(iframe, dict) or any(iframe.get(k) is None for k in IFRAME_FIELDS):
            problems.append(f"timelineIFrame needs all of {list(IFRAME_FIELDS)}")
        elif not all(
            isinstance(iframe[k], int) and not isinstance(iframe[k], bool) for k in ("width", "height")
        ):
            problems.append("timelineIFrame width and height must be integers")
    timestamp = event.get("timestamp")
    if timestamp is not None and not _is_iso8601(timestamp):
        problems.append("timestamp must be an ISO 8601 date-time")
    return problems


def _check_token(spec: Mapping[str, Any], value: Any) -> str | None:
    kind = spec.get("type", "string")
    if value is None or isinstance(value, (dict, list)):
        return "must be a scalar"
    if kind == "number":
        try:
            float(value)
        except (TypeError, ValueError):
            return f"{value!r} is not a number"
        return None
    if kind == "date":
        try:
            millis = float(value)
        except (TypeError, ValueError):
            return f"{value!r} is not a date in epoch milliseconds"
        if millis < 1e11:
            return f"{value!r} looks like epoch seconds; dates must be epoch milliseconds"
        return None
    if kind == "enumeration":
        allowed = [str(o.get("value")) for o in spec.get("options", [])]
        if str(value) not in allowed:
            return f"{value!r} is not one of the option values {allowed}"
    return None


def _object_id_for(event: dict[str, Any]) -> int:
    """A stable fake contact id for events identified by email or utk."""
    seed = str(event.get("email") or event.get("utk") or "")
    return 1000 + int.from_bytes(seed.encode()[:6].ljust(6, b"\0"), "big") % 900_000


def _is_iso8601(value: Any) -> bool:
    """A date-time: a date alone is not a position on the timeline."""
    return parses_as_datetime(value) and ("T" in value or " " in value)
