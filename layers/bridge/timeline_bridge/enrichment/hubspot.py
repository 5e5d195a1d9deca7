"""HubSpot CRM reads: any CRM record (a deal, a contact, a company, a custom object, …) with chosen
properties and their history, the deal's contacts, and the pipeline stage labels. HubSpot webhooks
carry only the record id and the changed property (a `contact.creation` carries no email).

Endpoints (base `HUBSPOT_BASE_URL`, token `HUBSPOT_ACCESS_TOKEN`, scopes crm.objects.deals.read,
crm.objects.contacts.read, and the read scope of any other type a mapping reads):
- GET  /crm/v3/objects/{objectType}/{id}?properties=…&propertiesWithHistory=…
- GET  /crm/v4/objects/deals/{id}/associations/contacts?limit=500
- POST /crm/v3/objects/contacts/batch/read  {"properties": [...], "inputs": [{"id": …}]}
- GET  /crm/v3/pipelines/{objectType}
Answers are classified by the HubSpot target client's rules (429 with the policy's window, 5xx and
401 retry later, other 4xx permanent); a 404 is a `NotFoundError`.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

import requests

from timeline_bridge.enrichment.api import DEFAULT_THROTTLE_SECONDS, NotFoundError, SourceApi
from timeline_bridge.errors import PermanentDeliveryError
from timeline_bridge.targets import http

MAX_CONTACTS = 100  # one batch read; deals with more associated contacts are summarised by the first 100
CONTACT_PROPERTIES = ("email", "firstname", "lastname")
# What `{objectType}` may be: a name (contacts, line_items), an objectTypeId (0-1, 2-3508482) or a
# custom object's fully qualified name (p1234567_cars). The mapping schema checks a written one.
OBJECT_TYPE = re.compile(r"[a-z][a-z_]*|[0-9]+-[0-9]+|p[0-9]+_[a-z0-9_]+")


class HubspotCrm(SourceApi):
    name = "hubspot"
    credential = "HUBSPOT_ACCESS_TOKEN"

    def base_url(self) -> str:
        return self.settings.base_url("hubspot")

    def classify(self, response: requests.Response) -> Any:
        from timeline_bridge.targets.hubspot import classify_error  # the one home of HubSpot's rules

        status = response.status_code
        if 200 <= status < 300:
            return http.json_body(response)
        # The account's time zone matters only to a DAILY 429 (it waits until midnight there).
        failure = classify_error(response, zone=self.account_zone() if status == 429 else None)
        if status == 404:
            raise NotFoundError(failure.message, status=404, code=failure.code, request_id=failure.request_id)
        raise self.throttled(failure)

    def quota_wait(self, response: requests.Response) -> float | None:
        # HubSpot counts every call of the account (deliveries too) and says on each answer what
        # is left; at 0 the next call would be a 429.
        headers = response.headers
        if headers.get("X-HubSpot-RateLimit-Daily-Remaining", "").strip() == "0":
            from timeline_bridge.targets.hubspot import seconds_until_daily_reset

            return seconds_until_daily_reset(zone=self.account_zone())
        if headers.get("X-HubSpot-RateLimit-Remaining", "").strip() == "0":
            interval = http.parse_interval_ms(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
            return DEFAULT_THROTTLE_SECONDS if interval is None else interval
        return None

    def account_zone(self) -> tzinfo:
        """The account's time zone (`HUBSPOT_ACCOUNT_TIMEZONE`), where its DAILY limit resets."""
        from timeline_bridge.targets.hubspot import account_zone

        return account_zone(self.settings.hubspot_account_timezone)


def segment(value: Any, what: str) -> str:
    """One URL path segment from event data, percent-encoded. `.` and `..` are refused: the URL
    parser would resolve them and move the read to another path of the API (with our token)."""
    text = str(value)
    if text.strip() in ("", ".", ".."):
        raise PermanentDeliveryError(f"{what} is not a usable id", code="invalid_argument")
    return quote(text, safe="")


def _csv(values: Any) -> str | None:
    items = [str(v) for v in (values or []) if str(v).strip()]
    return ",".join(items) if items else None


def _history_entries(raw: Any) -> list[dict[str, Any]]:
    entries = [e for e in http.as_list(raw) if isinstance(e, dict)]
    # Newest first, whatever order the API used (ISO 8601 UTC strings sort as text).
    return sorted(entries, key=lambda e: str(e.get("timestamp") or ""), reverse=True)


def crm_object(crm: HubspotCrm, object_type: str, args: dict[str, Any]) -> dict[str, Any]:
    """`{id, properties, history: {prop: [newest … oldest]}, previous: {prop: value before the
    current one}}` for record `args.id` of `object_type`."""
    if not OBJECT_TYPE.fullmatch(object_type):
        raise PermanentDeliveryError(
            f"{object_type!r} is not a HubSpot object type (contacts, 0-1, 2-…, p<portal>_<name>)",
            code="invalid_argument",
        )
    record_id = str(args["id"])
    what = {"deals": "deal id", "contacts": "contact id"}.get(object_type, f"{object_type} record id")
    params = {"properties": _csv(args.get("properties")), "propertiesWithHistory": _csv(args.get("history"))}
    body = http.as_dict(
        crm.get(
            f"/crm/v3/objects/{object_type}/{segment(record_id, what)}",
            {k: v for k, v in params.items() if v},
        )
    )
    raw_history = http.as_dict(body.get("propertiesWithHistory"))
    history = {name: _history_entries(raw_history.get(name)) for name in args.get("history") or []}
    return {
        "id": str(body.get("id") or record_id),
        "properties": http.as_dict(body.get("properties")),
        "history": history,
        # The second-newest entry: the value this change replaced.
        "previous": {name: (h[1].get("value") if len(h) > 1 else None) for name, h in history.items()},
    }


def deal(crm: HubspotCrm, args: dict[str, Any]) -> dict[str, Any]:
    """`crm_object` of deal `args.id`."""
    return crm_object(crm, "deals", args)


def contact(crm: HubspotCrm, args: dict[str, Any]) -> dict[str, Any]:
    """`crm_object` of contact `args.id` (properties: email, firstname, lastname unless given),
    with its `email` beside them (null when it has none)."""
    properties = list(args.get("properties") or CONTACT_PROPERTIES)
    record = crm_object(crm, "contacts", {**args, "properties": properties})
    return {**record, "email": record["properties"].get("email") or None}


def any_object(crm: HubspotCrm, args: dict[str, Any]) -> dict[str, Any]:
    """`crm_object` of record `args.id` of type `args.type`."""
    return crm_object(crm, str(args["type"]).strip(), args)


def deal_contacts(crm: HubspotCrm, args: dict[str, Any]) -> dict[str, Any]:
    """`{ids, contacts: [{id, email, firstname, lastname, …}], emails}` for deal `args.id`, in
    association order (first 100)."""
    deal_id = str(args["id"])
    answer = http.as_dict(
        crm.get(f"/crm/v4/objects/deals/{segment(deal_id, 'deal id')}/associations/contacts", {"limit": 500})
    )
    ids: list[str] = []
    for row in http.as_list(answer.get("results")):
        contact_id = http.as_str(http.as_dict(row).get("toObjectId"))
        if contact_id and contact_id not in ids:
            ids.append(contact_id)
    ids = ids[:MAX_CONTACTS]
    properties = list(args.get("properties") or CONTACT_PROPERTIES)
    contacts: list[dict[str, Any]] = []
    if ids:
        batch = http.as_dict(
            crm.post(
                "/crm/v3/objects/contacts/batch/read",
                {"properties": properties, "inputs": [{"id": i} for i in ids]},
            )
        )
        by_id = {
            str(r.get("id")): http.as_dict(r.get("properties"))
            for r in http.as_list(batch.get("results"))
            if isinstance(r, dict)
        }
        contacts = [{"id": i, **by_id[i]} for i in ids if i in by_id]
    return {
        "ids": ids,
        "contacts": contacts,
        "emails": [c["email"] for c in contacts if c.get("email")],
    }


def pipeline_stages(crm: HubspotCrm, args: dict[str, Any]) -> dict[str, Any]:
    """`{labels: {stage id: label}, pipelines: {pipeline id: {label, stages: {stage id: label}}}}`
    for every pipeline of `args.object` (default deals)."""
    object_type = str(args.get("object") or "deals")
    answer = http.as_dict(crm.get(f"/crm/v3/pipelines/{segment(object_type, 'object type')}"))
    labels: dict[str, str] = {}
    pipelines: dict[str, Any] = {}
    for pipeline in http.as_list(answer.get("results")):
        pipeline = http.as_dict(pipeline)
        stages = {
            str(s.get("id")): str(s.get("label"))
            for s in sorted(
                (http.as_dict(s) for s in http.as_list(pipeline.get("stages"))),
                key=lambda s: s.get("displayOrder") or 0,
            )
            if s.get("id") is not None
        }
        pipelines[str(pipeline.get("id"))] = {"label": pipeline.get("label"), "stages": stages}
        for stage_id, label in stages.items():
            labels.setdefault(stage_id, label)
    return {"labels": labels, "pipelines": pipelines}


def stage_label(args: dict[str, Any], stages: dict[str, Any]) -> str:
    """The label of stage `args.stage` (in pipeline `args.pipeline` when given), from the
    (cached) `pipeline_stages` answer `stages`."""
    stage = str(args["stage"])
    pipeline = args.get("pipeline")
    table = stages["labels"]
    if pipeline is not None:
        table = http.as_dict(http.as_dict(stages["pipelines"].get(str(pipeline))).get("stages"))
    label = table.get(stage)
    if label is None:
        where = f" in pipeline {pipeline}" if pipeline is not None else ""
        raise NotFoundError(
            f"HubSpot has no {args.get('object') or 'deals'} stage {stage!r}{where}", code="stage_not_found"
        )
    return str(label)
