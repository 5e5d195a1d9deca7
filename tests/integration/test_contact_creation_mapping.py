"""A mapping a user writes for HubSpot's `contact.creation` (which carries the contact's id, not its
email): it reads the contact with `hubspot.contact`, passes `bridge validate` and `bridge test`,
and in the route stage, against the HubSpot sandbox, becomes a job carrying the contact's email."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import route
from timeline_bridge.models import DeliveryJob
from timeline_bridge_tools.cli import main
from timeline_bridge_tools.mapping.samples import envelopes_from_file
from timeline_bridge_tools.sandboxes.hubspot_crm import SAMPLE_NEW_CONTACT_EMAIL, SAMPLE_NEW_CONTACT_ID

MAPPING = """\
name: hubspot-contact-created-to-matter
description: New HubSpot contacts are recorded on the Matter timeline by their email.
source: hubspot
when: "(event.subscriptionType || event.eventType) == 'contact.creation'"
target: matter
enrich:
  contact:
    fetch: hubspot.contact
    with: {id: "${{ event.objectId }}", properties: [email, firstname, lastname, lifecyclestage]}
body:
  kind: audit
  title: "HubSpot contact ${{ enrichment.contact.email }} created (${{ enrichment.contact.properties.lifecyclestage || 'no stage' }})"
  occurred_at: "${{ to_iso8601(event.occurredAt) }}"
  actor: "${{ event.sourceId || event.changeSource }}"
  ref: "https://app.hubspot.com/contacts/${{ event.portalId }}/contact/${{ event.objectId }}"
"""
CASES = """\
- name: a new contact is recorded under its email
  input:
    event: {subscriptionType: contact.creation, objectId: 51377, portalId: 62515, occurredAt: 1763899315724, changeSource: CRM, sourceId: "userId:4120834"}
  enrichment:
    contact: {id: "51377", email: noah@acme.example, properties: {email: noah@acme.example, lifecyclestage: lead}}
  expect:
    output:
      kind: audit
      title: HubSpot contact noah@acme.example created (lead)
      occurred_at: "2025-11-23T12:01:55.724Z"
      actor: "userId:4120834"
      ref: https://app.hubspot.com/contacts/62515/contact/51377
- name: a deal change is skipped
  input:
    event: {subscriptionType: deal.propertyChange, objectId: 7, propertyName: dealstage}
  expect: {skipped: true}
"""
# The webhook HubSpot sends when the sandbox's seeded contact is created.
WEBHOOK = [
    {
        "eventId": 3816279555,
        "subscriptionId": 2472600,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": 1763899315724,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": int(SAMPLE_NEW_CONTACT_ID),
        "changeFlag": "NEW",
        "changeSource": "CRM",
        "sourceId": "userId:4120834",
    }
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "hubspot-contact-created-to-matter.yaml").write_text(MAPPING)
    (mappings / "hubspot-contact-created-to-matter.cases.yaml").write_text(CASES)
    (tmp_path / "contact-created.json").write_text(json.dumps(WEBHOOK))
    return mappings


def route_event(tmp_path: Path) -> dict[str, Any]:
    (envelope,) = envelopes_from_file("hubspot", tmp_path / "contact-created.json")
    return {"Records": [{"messageId": "m-1", "receiptHandle": "h-1", "body": envelope.to_json()}]}


def test_the_mapping_validates_and_its_cases_pass_when_it_reads_the_contact(folder, capsys) -> None:
    assert main(["validate", str(folder)]) == 0
    assert main(["test", str(folder)]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().err


def test_the_created_contacts_email_reaches_the_job_when_routed_against_hubspot(
    aws, sandboxes, monkeypatch, lambda_context, folder, tmp_path
) -> None:
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(folder))

    assert route.handle(route_event(tmp_path), lambda_context) == {"batchItemFailures": []}

    (job,) = [DeliveryJob(**body) for body in aws.receive("matter")]
    assert job.body["title"] == f"HubSpot contact {SAMPLE_NEW_CONTACT_EMAIL} created (lead)"
    reads = [r for r in sandboxes["hubspot"].requests if r["path"].startswith("/crm/")]
    assert [r["path"] for r in reads] == [f"/crm/v3/objects/contacts/{SAMPLE_NEW_CONTACT_ID}"]


def test_the_job_is_dead_lettered_naming_the_fetch_when_hubspot_has_no_such_contact(
    aws, sandboxes, monkeypatch, lambda_context, folder, tmp_path
) -> None:
    sandboxes["hubspot"].crm.contacts.pop(SAMPLE_NEW_CONTACT_ID)
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(folder))

    assert route.handle(route_event(tmp_path), lambda_context) == {"batchItemFailures": []}

    assert aws.count("matter") == 0
    (dead,) = [DeliveryJob(**body) for body in aws.receive("matter-dlq")]
    letter = dead.dead_letter or {}
    assert (letter["reason"], letter["fetch"], letter["fetch_kind"], letter["status"]) == (
        "enrichment_error",
        "contact",
        "hubspot.contact",
        404,
    )
