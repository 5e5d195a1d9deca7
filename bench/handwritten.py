"""The shipped mappings written by hand in plain Python: the baseline of the mapping figure.

Each function does what a careful hand-written integration would: check that the event applies,
build the body, refuse an empty required field. No JSON Schema validation (that is the engine's
extra). `bench.mapping` asserts each gives the engine's exact body before timing anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from timeline_bridge.keys import JOB_NAMESPACE

Body = dict[str, Any] | None
HandWritten = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Body]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

HUBSPOT_STAGES = {
    "appointmentscheduled": "Appointment scheduled",
    "qualifiedtobuy": "Qualified",
    "presentationscheduled": "Presentation scheduled",
    "decisionmakerboughtin": "Decision maker bought-in",
    "contractsent": "Negotiation",
    "closedwon": "Closed won",
    "closedlost": "Closed lost",
}
PIPEDRIVE_STAGES = {
    1: "Qualified",
    2: "Contact made",
    3: "Demo scheduled",
    4: "Proposal made",
    5: "Negotiations started",
}
PIPEDRIVE_STORA_CONTACTS = {77: "con_8a2c4e6f10b3d5a7", 1: "con_2e7a9c4b6d8f0135"}
SLACK_DECISIONS = {
    "approve": "Approved",
    "approve_button": "Approved",
    "approve_request": "Approved",
    "reject": "Rejected",
    "reject_button": "Rejected",
    "reject_request": "Rejected",
}


def _iso_from_ms(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    text = f"{moment:%Y-%m-%dT%H:%M:%S}"
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def _iso_from_text(text: str) -> str:
    moment = datetime.fromisoformat(text).astimezone(UTC)
    millis = moment.microsecond // 1000
    return f"{moment:%Y-%m-%dT%H:%M:%S}" + (f".{millis:03d}Z" if millis else "Z")


def _iso_from_slack_ts(ts: str) -> str:
    seconds, _, fraction = ts.partition(".")
    return _iso_from_ms(int(seconds) * 1000 + int((fraction + "000")[:3]))


def _is_hubspot_deal_stage(event: dict[str, Any]) -> bool:
    kind = event.get("subscriptionType") or event.get("eventType")
    is_deal = kind == "deal.propertyChange" or (
        kind == "object.propertyChange" and event.get("objectTypeId") == "0-3"
    )
    return is_deal and event.get("propertyName") == "dealstage"


def _required(value: Any, field: str) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        raise ValueError(f"{field} is empty")
    return value


def hubspot_deal_stage_to_stora(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_hubspot_deal_stage(event):
        return None
    object_id = event["objectId"]
    deal = enrichment.get("deal") or {}
    new_stage = _required(enrichment.get("new_stage"), "variables.new_state")
    return {
        "template": {"id": "aetpl_6b92d7693eb7e8e9"},
        "source": {"id": "tsrc_126b43585fea94ad"},
        "contact": {"id": _required(enrichment.get("contact_id"), "contact.id")},
        "description": f"CRM deal moved to {new_stage} stage",
        "external": {
            "id": f"deal_{object_id}",
            "url": f"https://app.hubspot.com/contacts/{event['portalId']}/deal/{object_id}",
        },
        "variables": {
            "deal_name": _required((deal.get("properties") or {}).get("dealname"), "variables.deal_name"),
            "previous_state": _required(enrichment.get("previous_stage"), "variables.previous_state"),
            "new_state": new_stage,
        },
    }


def hubspot_deal_stage_to_hubspot_timeline(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_hubspot_deal_stage(event):
        return None
    stage = event["propertyValue"]
    occurred = event["occurredAt"]
    return {
        "eventTemplateId": "1001298",
        "objectId": str(event["objectId"]),
        "timestamp": _iso_from_ms(occurred),
        "tokens": {
            "stage": stage,
            "stage_label": HUBSPOT_STAGES.get(stage, stage),
            "changed_at": str(occurred),  # HubSpot takes token values as strings
            "change_source": event.get("changeSource") or "unknown",
        },
        "extraData": {"portalId": event["portalId"], "sourceId": event["sourceId"]},
        "id": meta["key"],
    }


def hubspot_deal_stage_to_hubspot_app_events(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_hubspot_deal_stage(event):
        return None
    stage = event["propertyValue"]
    occurred = event["occurredAt"]
    return {
        "eventTypeName": "ae0000001_deal-stage-changed",
        "objectId": str(event["objectId"]),
        "timestamp": _iso_from_ms(occurred),
        "properties": {
            "stage": stage,
            "stage_label": HUBSPOT_STAGES.get(stage, stage),
            "changed_at": str(occurred),
            "change_source": event.get("changeSource") or "unknown",
        },
        "extraData": {"portalId": event["portalId"], "sourceId": event["sourceId"]},
        "id": meta["key"],
    }


def hubspot_deal_stage_to_matter(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_hubspot_deal_stage(event):
        return None
    object_id = event["objectId"]
    name = ((enrichment.get("deal") or {}).get("properties") or {}).get("dealname") or object_id
    return {
        "kind": "audit",
        "title": f"HubSpot deal {name} moved to {enrichment['new_stage']}",
        "occurred_at": _iso_from_ms(event["occurredAt"]),
        "actor": event.get("sourceId") or event.get("changeSource"),
        "ref": f"https://app.hubspot.com/contacts/{event['portalId']}/deal/{object_id}",
    }


def _is_pipedrive_stage_move(event: dict[str, Any]) -> bool:
    meta = event.get("meta") or {}
    previous = event.get("previous") or {}
    return (
        meta.get("version") == "2.0"
        and meta.get("action") == "change"
        and meta.get("entity") == "deal"
        and previous.get("stage_id") is not None
    )


def pipedrive_deal_stage_to_applied(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_pipedrive_stage_move(event):
        return None
    data = event["data"]
    old = PIPEDRIVE_STAGES.get(event["previous"]["stage_id"], event["previous"]["stage_id"])
    new = PIPEDRIVE_STAGES.get(data["stage_id"], data["stage_id"])
    when = data.get("stage_change_time") or data.get("update_time") or event["meta"]["timestamp"]
    body: dict[str, Any] = {
        "name": f"Deal moved to {new}",
        "description": f"{data.get('title') or 'Deal'}: {old} → {new}",
        "event_time": _iso_from_text(when),
    }
    if data.get("person_id"):
        body["contact"] = {"remote_id": f"pipedrive-person-{data['person_id']}"}
    properties = {}
    if data.get("pipeline_id"):
        properties["pipeline_id"] = str(data["pipeline_id"])
    properties["previous_stage"] = str(old)
    properties["new_stage"] = str(new)
    object_id = uuid.uuid5(JOB_NAMESPACE, f"pipedrive:{event['meta']['company_id']}:deal:{data['id']}")
    body["metric"] = {
        "metric_name": "deal_stage_changed",
        "value": 1,
        "metric_object_id": str(object_id),
        "metric_object_type": "deal",
        "additional_properties": properties,
        "deduping_key": meta["key"],
    }
    return body


def pipedrive_deal_stage_to_stora(
    event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]
) -> Body:
    if not _is_pipedrive_stage_move(event):
        return None
    data = event["data"]
    deal_id = data["id"]
    contact = enrichment.get("contact_id") or PIPEDRIVE_STORA_CONTACTS.get(data.get("person_id"))
    if not contact:
        raise ValueError("contact.id is empty")
    old = PIPEDRIVE_STAGES.get(event["previous"]["stage_id"], event["previous"]["stage_id"])
    new = PIPEDRIVE_STAGES.get(data["stage_id"], data["stage_id"])
    return {
        "template": {"id": "aetpl_6b92d7693eb7e8e9"},
        "source": {"id": "tsrc_5d0c2a9e4b7f1386"},
        "contact": {"id": contact},
        "description": f"CRM deal moved to {new} stage",
        "external": {
            "id": f"pipedrive_deal_{deal_id}",
            "url": f"https://{event['meta'].get('host') or 'app.pipedrive.com'}/deal/{deal_id}",
        },
        "variables": {
            "deal_name": data.get("title") or f"Deal {deal_id}",
            "previous_state": str(old),
            "new_state": str(new),
        },
    }


def slack_approval_to_matter(event: dict[str, Any], meta: dict[str, Any], enrichment: dict[str, Any]) -> Body:
    if event.get("type") != "block_actions":
        return None
    action = event["actions"][0]
    decision = SLACK_DECISIONS.get(action.get("action_id"))
    if decision is None:
        return None
    user = event.get("user") or {}
    approver = enrichment.get("approver") or {}
    actor = _required(
        approver.get("real_name")
        or (approver.get("profile") or {}).get("real_name")
        or approver.get("name")
        or user.get("name")
        or user.get("username")
        or user.get("id"),
        "actor",
    )
    container = event.get("container") or {}
    ref = enrichment.get("permalink") or (
        f"slack://{(event.get('team') or {}).get('id') or '-'}"
        f"/{container.get('channel_id') or (event.get('channel') or {}).get('id') or '-'}"
        f"/{container.get('message_ts') or '-'}"
    )
    subject = (event.get("message") or {}).get("text") or action.get("value") or action.get("block_id")
    return {
        "kind": "governance",
        "title": f"{decision}: {subject}",
        "occurred_at": _iso_from_slack_ts(action["action_ts"]),
        "actor": actor,
        "ref": ref,
    }


HANDWRITTEN: dict[str, HandWritten] = {
    "hubspot-deal-stage-to-stora": hubspot_deal_stage_to_stora,
    "hubspot-deal-stage-to-hubspot-timeline": hubspot_deal_stage_to_hubspot_timeline,
    "hubspot-deal-stage-to-hubspot-app-events": hubspot_deal_stage_to_hubspot_app_events,
    "hubspot-deal-stage-to-matter": hubspot_deal_stage_to_matter,
    "pipedrive-deal-stage-to-applied": pipedrive_deal_stage_to_applied,
    "pipedrive-deal-stage-to-stora": pipedrive_deal_stage_to_stora,
    "slack-approval-to-matter": slack_approval_to_matter,
}
