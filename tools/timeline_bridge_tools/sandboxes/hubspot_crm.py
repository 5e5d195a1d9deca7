"""HubSpot CRM read endpoints, as a sandbox: what enrichment calls to complete thin deal webhooks.

In production the CRM and the timeline API share one host (api.hubapi.com, `HUBSPOT_BASE_URL`),
so `HubspotCrmRoutes` is mounted on the HubSpot sandbox (paths under `/crm/`); `HubspotCrmSandbox`
serves the same routes alone on its own port.

Routes (Bearer token required; HubSpot's error envelope `{status, message, correlationId,
category}`):
- GET  /crm/v3/objects/{objectType}/{id}?properties=a,b&propertiesWithHistory=c
- GET  /crm/v4/objects/deals/{id}/associations/contacts
- POST /crm/v3/objects/contacts/batch/read   (200, or 207 with `errors[]` for unknown ids)
- GET  /crm/v3/pipelines/deals

The object read refuses what HubSpot refuses: an object type it cannot infer (400
VALIDATION_ERROR "Unable to infer object type from: …"), an unknown id (404 OBJECT_NOT_FOUND), a
token without the type's read scope when scopes are set (403 MISSING_SCOPES). `{objectType}` is a
name (`contacts`), an objectTypeId (`0-1`) or a custom object's (`2-…`, once `add_object_type`
registered it). Unknown property names are left out of the answer, not refused, as HubSpot does;
`createdate`, the last-modified date and `hs_object_id` always come back.

Seeded with the records behind `events/hubspot/deal-stage-change.json`, and a contact created by
a `contact.creation` webhook (`SAMPLE_NEW_CONTACT_ID`).
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any
from urllib.parse import unquote

from timeline_bridge_tools.sandboxes.base import (
    RateState,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    new_request_id,
    utc_iso,
)

# The deal of the shipped sample event, moved from "qualifiedtobuy" to "contractsent".
SAMPLE_DEAL_ID = "18147040851"
SAMPLE_CONTACT_ID = "51204"
SAMPLE_CONTACT_EMAIL = "olivia.bennett@acme-storage.example"
SAMPLE_DEAL_NAME = "Acme Storage - 3 units"

# The sample portal's deal pipeline; its stages were renamed, as portals usually do.
SAMPLE_PIPELINE_ID = "default"
SAMPLE_PIPELINE_LABEL = "Sales Pipeline"
SAMPLE_STAGES = [
    ("appointmentscheduled", "Appointment scheduled"),
    ("qualifiedtobuy", "Qualified"),
    ("presentationscheduled", "Presentation scheduled"),
    ("decisionmakerboughtin", "Decision maker bought-in"),
    ("contractsent", "Negotiation"),
    ("closedwon", "Closed won"),
    ("closedlost", "Closed lost"),
]

# The contact a `contact.creation` webhook names: the webhook carries its id, not its email.
SAMPLE_NEW_CONTACT_ID = "51377"
SAMPLE_NEW_CONTACT_EMAIL = "noah.fischer@acme-storage.example"

# HubSpot's standard object types: name -> (objectTypeId, the scope that reads it, the property
# holding the last-modified date).
STANDARD_OBJECT_TYPES = {
    "contacts": ("0-1", "crm.objects.contacts.read", "lastmodifieddate"),
    "companies": ("0-2", "crm.objects.companies.read", "hs_lastmodifieddate"),
    "deals": ("0-3", "crm.objects.deals.read", "hs_lastmodifieddate"),
    "tickets": ("0-5", "tickets", "hs_lastmodifieddate"),
    "products": ("0-7", "e-commerce", "hs_lastmodifieddate"),
    "line_items": ("0-8", "e-commerce", "hs_lastmodifieddate"),
}

_OBJECT = re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$")
_DEAL_CONTACTS = re.compile(r"^/crm/v4/objects/deals/([^/]+)/associations/contacts$")
_PIPELINES = re.compile(r"^/crm/v3/pipelines/([^/]+)$")
_BATCH_READ = "/crm/v3/objects/contacts/batch/read"
CREATED = "2025-10-14T08:12:40.118Z"


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> SandboxResponse:
    """HubSpot's error envelope."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": new_request_id(),
        "category": category,
        **extra,
    }
    return SandboxResponse.json(status, body)


class HubspotCrmRoutes:
    """The CRM data and routes; no server of its own (see the module docstring)."""

    def __init__(self, tokens: set[str] | None = None, scopes: dict[str, set[str]] | None = None) -> None:
        # None: any bearer token is accepted (a sandbox checks that one is sent, not which).
        self.tokens = tokens
        # token -> the scopes it was granted; None: every token holds every scope.
        self.scopes = scopes
        self._lock = threading.Lock()
        # object type name -> (objectTypeId, read scope, last-modified property); custom ones added.
        self.object_types: dict[str, tuple[str, str, str]] = dict(STANDARD_OBJECT_TYPES)
        # object type name -> id -> {"properties": {...}, "history": {name: [newest … oldest]}}
        self.objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in STANDARD_OBJECT_TYPES}
        self.deals = self.objects["deals"]
        self.contacts = self.objects["contacts"]
        self.associations: dict[str, list[str]] = {}
        self.pipelines: dict[str, list[dict[str, Any]]] = {}
        self.seed()

    # --- data ------------------------------------------------------------------------------

    def seed(self) -> None:
        """The sample portal: one pipeline, the sample deal with its stage history, one contact."""
        with self._lock:
            for name in [n for n in self.object_types if n not in STANDARD_OBJECT_TYPES]:
                del self.object_types[name], self.objects[name]
            for records in self.objects.values():
                records.clear()
            self.associations.clear()
            self.pipelines.clear()
        self.set_pipeline("deals", SAMPLE_PIPELINE_ID, SAMPLE_PIPELINE_LABEL, SAMPLE_STAGES)
        self.add_contact(
            SAMPLE_CONTACT_ID, email=SAMPLE_CONTACT_EMAIL, firstname="Olivia", lastname="Bennett"
        )
        self.add_contact(
            SAMPLE_NEW_CONTACT_ID,
            email=SAMPLE_NEW_CONTACT_EMAIL,
            firstname="Noah",
            lastname="Fischer",
            lifecyclestage="lead",
        )
        self.add_deal(
            SAMPLE_DEAL_ID,
            {"dealname": SAMPLE_DEAL_NAME, "amount": "5400", "pipeline": "default"},
            history={
                "dealstage": [
                    ("appointmentscheduled", "2025-10-14T08:12:40.118Z"),
                    ("qualifiedtobuy", "2025-11-03T15:47:09.502Z"),
                    ("contractsent", "2025-11-23T12:01:55.724Z"),  # the sample event's change
                ]
            },
            contacts=[SAMPLE_CONTACT_ID],
        )

    def add_deal(
        self,
        deal_id: str,
        properties: dict[str, Any],
        *,
        history: dict[str, list[tuple[str, str]]] | None = None,
        contacts: list[str] | None = None,
    ) -> None:
        """A deal; `history` lists (value, ISO timestamp) oldest first and sets the current value."""
        self.add_object("deals", deal_id, properties, history=history)
        with self._lock:
            self.associations[str(deal_id)] = [str(c) for c in contacts or []]

    def add_contact(self, contact_id: str, **properties: Any) -> None:
        self.add_object("contacts", contact_id, properties)

    def add_object_type(self, name: str, object_type_id: str, scope: str = "crm.objects.custom.read") -> None:
        """A custom object type (`p<portal>_<name>`, objectTypeId `2-…`), readable by either."""
        with self._lock:
            self.object_types[name] = (object_type_id, scope, "hs_lastmodifieddate")
            self.objects.setdefault(name, {})

    def add_object(
        self,
        object_type: str,
        object_id: str,
        properties: dict[str, Any],
        *,
        history: dict[str, list[tuple[str, str]]] | None = None,
    ) -> None:
        """A record of `object_type` (a name); `history` as for `add_deal`."""
        props = {k: (None if v is None else str(v)) for k, v in properties.items()}
        hist: dict[str, list[dict[str, Any]]] = {}
        for name, entries in (history or {}).items():
            hist[name] = [
                {
                    "value": value,
                    "timestamp": ts,
                    "sourceType": "CRM_UI",
                    "sourceId": "userId:76023669",
                    "updatedByUserId": 76023669,
                }
                for value, ts in reversed(entries)  # HubSpot lists the newest first
            ]
            if entries:
                props[name] = entries[-1][0]
        with self._lock:
            self.objects[object_type][str(object_id)] = {"properties": props, "history": hist}

    def set_pipeline(
        self, object_type: str, pipeline_id: str, label: str, stages: list[tuple[str, str]]
    ) -> None:
        pipeline = {
            "id": pipeline_id,
            "label": label,
            "displayOrder": 0,
            "archived": False,
            "createdAt": CREATED,
            "updatedAt": CREATED,
            "stages": [
                {
                    "id": stage_id,
                    "label": stage_label,
                    "displayOrder": order,
                    "archived": False,
                    "metadata": {
                        "isClosed": str(stage_id.startswith("closed")).lower(),
                        "probability": "0.5",
                    },
                    "createdAt": CREATED,
                    "updatedAt": CREATED,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                }
                for order, (stage_id, stage_label) in enumerate(stages)
            ],
        }
        with self._lock:
            others = [p for p in self.pipelines.get(object_type, []) if p["id"] != pipeline_id]
            self.pipelines[object_type] = [*others, pipeline]

    # --- routes ----------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        return path.startswith("/crm/")

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        token = request.bearer()
        if not token or (self.tokens is not None and token not in self.tokens):
            return hubspot_error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            )
        path = request.path
        if request.method == "GET" and (m := _DEAL_CONTACTS.match(path)):
            return self._deal_contacts(m.group(1))
        if request.method == "POST" and path == _BATCH_READ:
            return self._batch_read(request)
        if request.method == "GET" and (m := _OBJECT.match(path)):
            return self._object(unquote(m.group(1)), unquote(m.group(2)), request, token)
        if request.method == "GET" and (m := _PIPELINES.match(path)):
            return self._pipelines(m.group(1))
        return SandboxResponse(404, b"", {"Content-Type": "text/html"})

    def object_type(self, given: str) -> str | None:
        """The name of the object type `given` spells (a name or an objectTypeId), or None."""
        with self._lock:
            for name, (type_id, _scope, _modified) in self.object_types.items():
                if given in (name, type_id):
                    return name
        return None

    def _object(
        self, given_type: str, object_id: str, request: SandboxRequest, token: str
    ) -> SandboxResponse:
        object_type = self.object_type(given_type)
        if object_type is None:
            return hubspot_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {given_type}")
        _type_id, scope, modified = self.object_types[object_type]
        if self.scopes is not None and scope not in self.scopes.get(token, set()):
            return hubspot_error(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. Read more "
                "about required scopes here: https://developers.hubspot.com/scopes.",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )
        with self._lock:
            record = copy.deepcopy(self.objects[object_type].get(object_id))
        if record is None:
            return hubspot_error(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [object_id]},
            )
        wanted = _csv_param(request, "properties")
        with_history = _csv_param(request, "propertiesWithHistory")
        props = record["properties"]
        shown = {"createdate": CREATED, modified: CREATED, "hs_object_id": object_id}
        shown.update({name: props[name] for name in wanted if name in props})
        body: dict[str, Any] = {
            "id": object_id,
            "properties": shown,
            "createdAt": CREATED,
            "updatedAt": CREATED,
            "archived": False,
        }
        if with_history:
            body["propertiesWithHistory"] = {
                name: record["history"].get(name, []) for name in with_history if name in props
            }
        return SandboxResponse.json(200, body)

    def _deal_contacts(self, deal_id: str) -> SandboxResponse:
        with self._lock:
            if deal_id not in self.deals:
                return hubspot_error(
                    404, "OBJECT_NOT_FOUND", f"deal {deal_id} not found", context={"id": [deal_id]}
                )
            ids = list(self.associations.get(deal_id, []))
        results = [
            {
                "toObjectId": int(i) if i.isdigit() else i,
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}],
            }
            for i in ids
        ]
        return SandboxResponse.json(200, {"results": results})

    def _batch_read(self, request: SandboxRequest) -> SandboxResponse:
        try:
            spec = request.json()
            inputs = [str(i["id"]) for i in spec["inputs"]]
            properties = [str(p) for p in spec.get("properties") or []]
        except (ValueError, KeyError, TypeError):
            return hubspot_error(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
        if len(inputs) > 100:
            return hubspot_error(400, "VALIDATION_ERROR", "Batch input cannot exceed 100 inputs.")
        results, missing = [], []
        with self._lock:
            for contact_id in inputs:
                record = self.contacts.get(contact_id)
                if record is None:
                    missing.append(contact_id)
                    continue
                contact = record["properties"]
                shown = {"createdate": CREATED, "lastmodifieddate": CREATED, "hs_object_id": contact_id}
                shown.update({p: contact[p] for p in properties if p in contact})
                results.append(
                    {
                        "id": contact_id,
                        "properties": shown,
                        "createdAt": CREATED,
                        "updatedAt": CREATED,
                        "archived": False,
                    }
                )
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": utc_iso(),
            "completedAt": utc_iso(),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
        return SandboxResponse.json(207 if missing else 200, body)

    def _pipelines(self, object_type: str) -> SandboxResponse:
        with self._lock:
            pipelines = copy.deepcopy(self.pipelines.get(object_type))
        if pipelines is None:
            return hubspot_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")
        return SandboxResponse.json(200, {"results": pipelines})


def _csv_param(request: SandboxRequest, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query.get(name, []):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def rate_limited_answer(rate: RateState | None, params: dict[str, Any]) -> SandboxResponse:
    """HubSpot's 429: `policyName` in the body, the X-HubSpot-RateLimit-* headers, maybe Retry-After."""
    policy = str(params.get("policy", "TEN_SECONDLY_ROLLING"))
    window_ms = int((rate.window if rate else 10.0) * 1000)
    response = SandboxResponse.json(
        429,
        {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": new_request_id(),
            "policyName": policy,
            "groupName": "api-calls",
        },
    )
    response.headers.update(
        {
            "X-HubSpot-RateLimit-Max": str(rate.limit if rate else 100),
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(window_ms),
        }
    )
    if "retry_after" in params:
        response.headers["Retry-After"] = str(params["retry_after"])
    return response


class HubspotCrmSandbox(Sandbox):
    """The CRM routes alone on their own port (tests that need no timeline API)."""

    name = "hubspot-crm"
    # Private apps on Professional/Enterprise: 190 requests per 10 seconds.
    default_rate_limits = ((190, 10.0),)

    def __init__(self, token: str = "hubspot-sandbox-token", **kwargs: Any) -> None:  # noqa: S107 - fake credential
        super().__init__(**kwargs)
        self.crm = HubspotCrmRoutes({token})

    def clear_state(self) -> None:
        self.crm.seed()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        failure = self.server_error(request)
        if failure is not None:
            return failure
        return self.crm.handle(request)

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        return rate_limited_answer(rate, params)

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return hubspot_error(status, "INTERNAL_ERROR", "internal error")
