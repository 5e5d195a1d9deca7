"""`hubspot.contact` (a contact by id: a contact.creation webhook carries no email) and
`hubspot.object` (any CRM record by type and id): the request each sends and what each returns."""

from __future__ import annotations

import pytest
from enrichment_fakes import HUBSPOT
from timeline_bridge.enrichment import EnrichmentFailedError
from timeline_bridge.mapping.loader import check_text

CONTACT_URL = f"{HUBSPOT}/crm/v3/objects/contacts/51377"


def contact_answer(**properties: str) -> dict:
    return {
        "id": "51377",
        "properties": {"createdate": "2025-11-23T12:01:55.724Z", "hs_object_id": "51377", **properties},
        "createdAt": "2025-11-23T12:01:55.724Z",
        "updatedAt": "2025-11-23T12:01:55.724Z",
        "archived": False,
    }


def test_contact_comes_with_its_email_when_read_by_the_id_a_creation_webhook_carries(apis, enrichment):
    apis.on("GET", CONTACT_URL, (200, contact_answer(email="noah@acme.example", firstname="Noah")))

    contact = enrichment.run_fetch("contact", "hubspot.contact", {"id": 51377})

    assert contact["email"] == "noah@acme.example"
    assert contact["properties"]["firstname"] == "Noah"
    assert contact["id"] == "51377"
    (call,) = apis.calls
    assert call.query == {"properties": ["email,firstname,lastname"]}


def test_contact_reads_the_properties_and_history_named_when_given(apis, enrichment):
    answer = contact_answer(lifecyclestage="customer")
    answer["propertiesWithHistory"] = {
        "lifecyclestage": [
            {"value": "lead", "timestamp": "2025-11-01T09:00:00.000Z"},
            {"value": "customer", "timestamp": "2025-11-23T12:01:55.724Z"},
        ]
    }
    apis.on("GET", CONTACT_URL, (200, answer))

    contact = enrichment.run_fetch(
        "contact",
        "hubspot.contact",
        {"id": "51377", "properties": ["lifecyclestage"], "history": ["lifecyclestage"]},
    )

    assert apis.calls[0].query == {
        "properties": ["lifecyclestage"],
        "propertiesWithHistory": ["lifecyclestage"],
    }
    assert contact["previous"] == {"lifecyclestage": "lead"}
    assert contact["email"] is None  # not asked for, so not there


def test_contact_is_null_when_optional_and_hubspot_has_no_such_contact(apis, enrichment):
    apis.on(
        "GET",
        CONTACT_URL,
        (404, {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Object not found."}),
    )

    assert enrichment.run_fetch("contact", "hubspot.contact", {"id": "51377"}, optional=True) is None
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("contact", "hubspot.contact", {"id": "51377"})
    assert (caught.value.status, caught.value.code, caught.value.kind) == (
        404,
        "OBJECT_NOT_FOUND",
        "hubspot.contact",
    )


@pytest.mark.parametrize("object_type", ["companies", "0-2", "2-3508482", "p1234567_cars", "line_items"])
def test_object_is_read_at_its_type_path_when_the_type_is_a_name_an_id_or_a_custom_one(
    apis, enrichment, object_type
):
    url = f"{HUBSPOT}/crm/v3/objects/{object_type}/901"
    apis.on("GET", url, (200, {"id": "901", "properties": {"name": "Acme Storage", "hs_object_id": "901"}}))

    company = enrichment.run_fetch(
        "company", "hubspot.object", {"type": object_type, "id": 901, "properties": ["name"]}
    )

    assert company == {
        "id": "901",
        "properties": {"name": "Acme Storage", "hs_object_id": "901"},
        "history": {},
        "previous": {},
    }
    assert apis.calls[0].query == {"properties": ["name"]}


@pytest.mark.parametrize("object_type", ["..", "contacts/51377/associations", "Contacts", "0-1?x=1", ""])
def test_object_read_is_refused_before_any_call_when_the_type_is_no_hubspot_type(
    apis, enrichment, object_type
):
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("record", "hubspot.object", {"type": object_type, "id": "901"})

    assert caught.value.code in ("invalid_argument", "argument_empty")
    assert apis.calls == []


def test_object_id_cannot_move_the_read_to_another_path(apis, enrichment):
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("record", "hubspot.object", {"type": "companies", "id": ".."})
    assert caught.value.code == "invalid_argument"

    apis.on(
        "GET",
        f"{HUBSPOT}/crm/v3/objects/companies/901%2Fassociations",
        (404, {"category": "OBJECT_NOT_FOUND"}),
    )
    assert (
        enrichment.run_fetch(
            "record", "hubspot.object", {"type": "companies", "id": "901/associations"}, optional=True
        )
        is None
    )
    assert apis.paths() == ["/crm/v3/objects/companies/901%2Fassociations"]


# --- load time: what `bridge validate` and the route's cold start accept ----------------------

HEAD = """name: checked
source: hubspot
target: matter
"""
BODY = """body: {kind: audit, title: "${{ enrichment.record.properties.name }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
"""


def errors_of(enrich: str) -> list[str]:
    _mapping, errors = check_text(HEAD + enrich + BODY, "checked.yaml")
    return [str(e) for e in errors]


@pytest.mark.parametrize(
    "fetch",
    [
        '{fetch: hubspot.contact, with: {id: "${{ event.objectId }}"}}',
        '{fetch: hubspot.contact, with: {id: "${{ event.objectId }}", properties: [email, phone], history: [lifecyclestage]}}',
        '{fetch: hubspot.object, with: {type: companies, id: "${{ event.objectId }}", properties: [name]}}',
        '{fetch: hubspot.object, with: {type: "${{ event.objectTypeId }}", id: "${{ event.objectId }}"}}',
        "{fetch: hubspot.object, with: {type: p1234567_cars, id: 7, history: [price]}, optional: true}",
    ],
)
def test_crm_record_fetch_is_valid_when_written_as_documented(fetch: str) -> None:
    assert errors_of(f"enrich:\n  record: {fetch}\n") == []


@pytest.mark.parametrize(
    ("fetch", "expected"),
    [
        (
            "{fetch: hubspot.object, with: {id: 7}}",
            "checked.yaml:5: enrich.record.with: 'type' is a required property",
        ),
        (
            "{fetch: hubspot.object, with: {type: Companies, id: 7}}",
            "checked.yaml:5: enrich.record.with.type: 'Companies' must be a HubSpot object type such as contacts",
        ),
        (
            "{fetch: hubspot.contact, with: {id: 7, type: contacts}}",
            "checked.yaml:5: enrich.record.with.type: unknown key 'type' (allowed: history, id, properties)",
        ),
        (
            "{fetch: hubspot.contact, with: {properties: [email]}}",
            "checked.yaml:5: enrich.record.with: 'id' is a required property",
        ),
    ],
)
def test_crm_record_fetch_is_refused_at_load_naming_its_line_when_miswritten(
    fetch: str, expected: str
) -> None:
    (error,) = errors_of(f"enrich:\n  record: {fetch}\n")

    assert error.startswith(expected), error


def test_every_fetch_kind_has_its_arguments_in_the_mapping_schema() -> None:
    import json
    from importlib import resources

    from timeline_bridge.enrichment import fetch_kinds

    schema = json.loads(
        resources.files("timeline_bridge").joinpath("schemas/mapping.schema.json").read_text()
    )
    fetch = schema["$defs"]["fetch"]
    declared = {
        rule["if"]["properties"]["fetch"]["const"]: rule["then"]["properties"]["with"]
        for rule in fetch["allOf"]
    }
    assert fetch["properties"]["fetch"]["enum"] == list(declared) == list(fetch_kinds())
    for name, kind in fetch_kinds().items():
        assert set(declared[name]["required"]) == set(kind.required), name
        assert set(declared[name]["properties"]) == {*kind.required, *kind.optional}, name
