"""Stora Public API 2025-09 sandbox: timeline events, as Stora documents them.

Enforces: the versioned routes (404 `invalid_endpoint` elsewhere), Bearer token (401
`invalid_token`) with scope `public.timeline_event:write` (403 `forbidden`), `Accept` (406
`invalid_format`), JSON only (400 `invalid_request`), body rules (422 `invalid_content` with
`details[].pointer`), template predefined variables (custom ones are not enforced), unknown
references (404 or 422, configurable), 201 with the full event, `Idempotency-Key` replaying the
stored status and body byte for byte for 24 h (4xx and 5xx included), 10/s and 60/min with
`RateLimit-*` headers and no `Retry-After`.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from timeline_bridge_tools.sandboxes.base import (
    RateState,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    new_request_id,
    utc_iso,
)

API = "/2025-09"
EVENTS = f"{API}/timeline/events"
WRITE_SCOPE = "public.timeline_event:write"
EVENT_ID = re.compile(rf"^{re.escape(EVENTS)}/(aevt_[0-9a-zA-Z]+)$")

# Default fixture: the ids the shipped mappings and their cases use.
DEFAULT_TEMPLATES: dict[str, dict[str, Any]] = {
    "aetpl_6b92d7693eb7e8e9": {
        "name": "Deal stage changed",
        "message": "{{ contact }}: {{ deal_name }} moved from {{ previous_state }} to {{ new_state }}.",
        "variables": {"predefined": ["contact"], "custom": ["deal_name", "previous_state", "new_state"]},
    },
    "aetpl_3f0c2a9d4b1e7a65": {
        "name": "External activity",
        "message": "{{ contact }}: {{ summary }}",
        "variables": {"predefined": ["contact"], "custom": ["summary"]},
    },
}
# HubSpot, Pipedrive, Salesforce
DEFAULT_SOURCES = ("tsrc_126b43585fea94ad", "tsrc_5d0c2a9e4b7f1386", "tsrc_9e3b7c1a5d2f4860")

REFERENCES = {
    "source": "tsrc_",
    "template": "aetpl_",
    "contact": "con_",
    "site": "site_",
    "invoice": "",
    "subscription": "",
    "tenancy": "",
    "unit": "",
    "unit_type": "",
}
ALLOWED_FIELDS = frozenset(REFERENCES) | {"description", "external", "variables"}
LINKS = [
    {
        "kind": "open_api",
        "name": "OpenAPI specification",
        "url": "https://public-api.stora.co/2025-09/openapi.json",
    },
    {"kind": "documentation", "name": "Errors", "url": "https://docs.stora.co/public-api#overview--errors"},
]
CURIES = [{"name": "bo", "href": "https://app.stora.test{rel}", "templated": True, "title": "Backoffice"}]
ERRORS = {
    "invalid_request": (400, "invalid_request_error", "The request body is malformed or not valid."),
    "api_error": (400, "api_error", "Internal or third-party API error."),
    "invalid_token": (401, "invalid_request_error", "Invalid token."),
    "forbidden": (403, "invalid_request_error", "You do not have permission to perform this action."),
    "resource_not_found": (404, "invalid_request_error", "The requested resource was not found."),
    "invalid_endpoint": (404, "invalid_request_error", "The requested endpoint does not exist."),
    "invalid_format": (406, "invalid_request_error", "The request ACCEPT header is not valid or supported."),
    "conflict": (
        409,
        "invalid_request_error",
        "Cannot be deleted or modified due to dependencies or business constraints.",
    ),
    "invalid_url_param": (422, "invalid_request_error", "The request URL param is invalid."),
    "invalid_content": (422, "invalid_request_error", "The request body content is not valid."),
    "too_many_requests": (429, "invalid_request_error", "Rate Limit Exceeded. Please try again later."),
    "internal_server_error": (500, "api_error", "Unexpected internal error."),
}


def error_response(
    code: str,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> SandboxResponse:
    default_status, kind, message = ERRORS[code]
    return SandboxResponse.json(
        status or default_status,
        {
            "error": {
                "code": code,
                "details": details or [],
                "links": LINKS,
                "message": message,
                "request_id": new_request_id(),
                "type": kind,
            }
        },
        headers,
    )


def _detail(pointer: str, message: str) -> dict[str, str]:
    return {"message": f"value at `{pointer}` {message}", "pointer": pointer}


class StoraSandbox(Sandbox):
    name = "stora"
    default_rate_limits = ((10, 1.0), (60, 60.0))

    def __init__(
        self,
        token: str = "stora-sandbox-token",  # noqa: S107 - the sandbox's own fake credential
        *,
        scopes: Iterable[str] = (WRITE_SCOPE,),
        templates: Mapping[str, Mapping[str, Any]] | None = None,
        sources: Iterable[str] | None = DEFAULT_SOURCES,
        contacts: Iterable[str] | None = None,
        unknown_reference_status: int = 404,
        **options: Any,
    ) -> None:
        """`templates`: id → {name, message, variables: {predefined, custom}} (None: the default
        fixture); `sources`/`contacts`: known ids (None: any well-formed id);
        `unknown_reference_status`: 404 `resource_not_found` or 422 `invalid_content`."""
        super().__init__(**options)
        self.tokens: dict[str, frozenset[str]] = {token: frozenset(scopes)}
        self.templates = {
            k: dict(v) for k, v in (DEFAULT_TEMPLATES if templates is None else templates).items()
        }
        self.sources = None if sources is None else set(sources)
        self.contacts = None if contacts is None else set(contacts)
        if unknown_reference_status not in (404, 422):
            raise ValueError("unknown_reference_status must be 404 or 422")
        self.unknown_reference_status = unknown_reference_status

    def add_token(self, token: str, scopes: Iterable[str] = (WRITE_SCOPE,)) -> None:
        self.tokens[token] = frozenset(scopes)

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        match = EVENT_ID.match(request.path)
        if not (
            (request.path == EVENTS and request.method == "POST") or (match and request.method == "PATCH")
        ):
            return error_response("invalid_endpoint")
        token = request.bearer()
        if token is None or token not in self.tokens:
            return error_response("invalid_token")
        if WRITE_SCOPE not in self.tokens[token]:
            return error_response("forbidden")
        if not _accepts_json(request.header("accept")):
            return error_response("invalid_format")
        if match:
            return self._update(request, match.group(1))
        key = request.header("idempotency-key")
        if not key:
            return self._create(request)
        scoped = f"{token}\x1f{key}"
        stored = self.idempotency.begin(scoped)
        if stored is not None:
            return SandboxResponse(stored.status, stored.body, dict(stored.headers))
        response = None
        try:
            response = self._create(request)
            return response
        finally:
            # Stored "whether the request succeeds or fails": a 5xx is replayed for 24 h too.
            self.idempotency.finish(scoped, response)

    def _create(self, request: SandboxRequest) -> SandboxResponse:
        failure = self.server_error(request)
        if failure is not None:
            return failure
        body, problem = self._parse(request)
        if problem:
            return problem
        problem = self._validate(body, creating=True)
        if problem:
            return problem
        now = utc_iso()
        event = {
            "id": f"aevt_{secrets.token_hex(8)}",
            "contact": None,
            "created_at": now,
            "creator": {"id": "app_5a1c0e9b7d3f2468"},
            "description": body.get("description"),
            "external": body.get("external"),
            "invoice": None,
            "site": None,
            "source": None,
            "subscription": None,
            "template": None,
            "tenancy": None,
            "unit": None,
            "unit_type": None,
            "updated_at": now,
            "variables": body.get("variables") or {},
        }
        for ref in REFERENCES:
            if isinstance(body.get(ref), dict):
                event[ref] = {"id": body[ref]["id"]}
        self.store(event, key=event["id"])
        return self._event_response(201, event)

    def _update(self, request: SandboxRequest, event_id: str) -> SandboxResponse:
        current = self.stored(event_id)
        if current is None:
            return error_response("resource_not_found")
        body, problem = self._parse(request)
        if problem:
            return problem
        problem = self._validate(body, creating=False)
        if problem:
            return problem
        event = dict(current)
        for name in ("description", "external", "variables"):
            if name in body:
                event[name] = body[name]
        for ref in REFERENCES:
            if isinstance(body.get(ref), dict):
                event[ref] = {"id": body[ref]["id"]}
        event["updated_at"] = utc_iso()
        self.store(event, key=event_id)
        return self._event_response(200, event)

    @staticmethod
    def _event_response(status: int, event: dict[str, Any]) -> SandboxResponse:
        return SandboxResponse.json(
            status, {"event": event, "meta": {"request_id": new_request_id(), "curies": CURIES}}
        )

    @staticmethod
    def _parse(request: SandboxRequest) -> tuple[Any, SandboxResponse | None]:
        if not request.content_type_is_json():
            return None, error_response("invalid_request")
        try:
            return request.json(), None
        except ValueError:
            return None, error_response("invalid_request")

    def _validate(self, body: Any, *, creating: bool) -> SandboxResponse | None:
        if not isinstance(body, dict):
            return error_response("invalid_content", [_detail("", "must be an object")])
        details: list[dict[str, str]] = []
        for name in body:
            if name not in ALLOWED_FIELDS:
                details.append(_detail(f"/{name}", "is not a permitted property"))
        required = ("source", "template") if creating else ()
        for ref, prefix in REFERENCES.items():
            value = body.get(ref)
            if value is None:
                if ref in required:
                    details.append(_detail(f"/{ref}", "is required"))
                continue
            ref_id = value.get("id") if isinstance(value, dict) else None
            if not isinstance(ref_id, str) or not ref_id.startswith(prefix) or len(ref_id) <= len(prefix):
                details.append(
                    _detail(f"/{ref}/id", f"must be a string starting with `{prefix or 'an id prefix'}`")
                )
        if "description" in body and not isinstance(body["description"], str | None):
            details.append(_detail("/description", "must be a string"))
        external = body.get("external")
        if external is not None:
            if not isinstance(external, dict):
                details.append(_detail("/external", "must be an object"))
            else:
                for name, value in external.items():
                    if name not in ("id", "url"):
                        details.append(_detail(f"/external/{name}", "is not a permitted property"))
                    elif not isinstance(value, str):
                        details.append(_detail(f"/external/{name}", "must be a string"))
                url = external.get("url")
                if isinstance(url, str) and urlsplit(url).scheme not in ("http", "https"):
                    details.append(_detail("/external/url", "does not match format: uri"))
        variables = body.get("variables")
        if variables is not None:
            if not isinstance(variables, dict):
                details.append(_detail("/variables", "must be an object"))
            else:
                for name, value in variables.items():
                    if not isinstance(value, str):
                        details.append(_detail(f"/variables/{name}", "must be a string"))
        if details:
            return error_response("invalid_content", details)
        return self._check_references(body) if creating else None

    def _check_references(self, body: dict[str, Any]) -> SandboxResponse | None:
        unknown = []
        template = self.templates.get(body["template"]["id"])
        if template is None:
            unknown.append("/template/id")
        if self.sources is not None and body["source"]["id"] not in self.sources:
            unknown.append("/source/id")
        contact = body.get("contact")
        if self.contacts is not None and isinstance(contact, dict) and contact["id"] not in self.contacts:
            unknown.append("/contact/id")
        if unknown:
            if self.unknown_reference_status == 404:
                return error_response("resource_not_found", [_detail(p, "does not exist") for p in unknown])
            return error_response("invalid_content", [_detail(p, "does not exist") for p in unknown])
        # Predefined variables are filled from the event's references and are enforced; custom
        # variables are not enforced on creation (a typo renders a blank, not an error).
        details = []
        variables = body.get("variables") or {}
        for name in (template or {}).get("variables", {}).get("predefined", []):
            if name in REFERENCES:
                if not isinstance(body.get(name), dict):
                    details.append(_detail(f"/{name}", "is required by the template"))
            elif name not in variables:
                details.append(_detail(f"/variables/{name}", "is required by the template"))
        return error_response("invalid_content", details) if details else None

    # --- throttling and failures ------------------------------------------------------------

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        if rate is None or not rate.exceeded:
            limit = int(params.get("limit", 60))
            reset_at = time.time() + float(params.get("reset_in", 1.0))
        else:
            limit, reset_at = rate.limit, rate.reset_at
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(math.ceil(reset_at)),  # UTC epoch seconds; no Retry-After
        }
        return error_response("too_many_requests", headers=headers)

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return error_response("internal_server_error", status=status)


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("*/*", "application/*", "application/json"):
            return True
    return False
