"""What each fetch kind returns: the deal and its previous stage, the deal's contacts, stage
labels, and identities from the static table or the DynamoDB identity map."""

from __future__ import annotations

import pytest
from enrichment_fakes import HUBSPOT, PIPELINES, deal_answer, enrichment_from_environ
from moto import mock_aws
from timeline_bridge.aws import AwsClients
from timeline_bridge.enrichment import EnrichmentFailedError, EnrichmentRetryError
from timeline_bridge.enrichment.identity import Identity, IdentityTable

DEAL_URL = f"{HUBSPOT}/crm/v3/objects/deals/7"
ASSOCIATIONS = f"{HUBSPOT}/crm/v4/objects/deals/7/associations/contacts"
BATCH_READ = f"{HUBSPOT}/crm/v3/objects/contacts/batch/read"
PIPELINES_URL = f"{HUBSPOT}/crm/v3/pipelines/deals"


def test_previous_stage_is_the_second_newest_entry_whatever_order_hubspot_lists_them(apis, enrichment):
    history = [
        ("appointmentscheduled", "2025-10-14T08:12:40.118Z"),
        ("contractsent", "2025-11-23T12:01:55.724Z"),
        ("qualifiedtobuy", "2025-11-03T15:47:09.502Z"),
    ]
    apis.on("GET", DEAL_URL, (200, deal_answer("7", history)))

    deal = enrichment.run_fetch("deal", "hubspot.deal", {"id": "7", "history": ["dealstage"]})

    assert [h["value"] for h in deal["history"]["dealstage"]] == [
        "contractsent",
        "qualifiedtobuy",
        "appointmentscheduled",
    ]
    assert deal["previous"] == {"dealstage": "qualifiedtobuy"}


def test_previous_stage_is_null_when_the_deal_has_one_stage_entry(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer("7", [("contractsent", "2025-11-23T12:01:55.724Z")])))

    deal = enrichment.run_fetch("deal", "hubspot.deal", {"id": "7", "history": ["dealstage"]})

    assert deal["previous"] == {"dealstage": None}


def test_contacts_come_with_their_emails_in_association_order_when_the_deal_has_some(apis, enrichment):
    apis.on(
        "GET",
        ASSOCIATIONS,
        (
            200,
            {
                "results": [
                    {"toObjectId": 502, "associationTypes": []},
                    {"toObjectId": 501, "associationTypes": []},
                ]
            },
        ),
    )
    apis.on(
        "POST",
        BATCH_READ,
        (
            200,
            {
                "status": "COMPLETE",
                "results": [
                    {"id": "501", "properties": {"email": "first@acme.example", "firstname": "Ann"}},
                    {"id": "502", "properties": {"email": "second@acme.example", "firstname": "Bo"}},
                ],
            },
        ),
    )

    contacts = enrichment.run_fetch("contacts", "hubspot.deal_contacts", {"id": 7})

    assert contacts["ids"] == ["502", "501"]
    assert contacts["emails"] == ["second@acme.example", "first@acme.example"]
    batch = apis.calls[1]
    assert batch.json == {
        "properties": ["email", "firstname", "lastname"],
        "inputs": [{"id": "502"}, {"id": "501"}],
    }


def test_contacts_are_empty_without_a_batch_read_when_the_deal_has_none(apis, enrichment):
    apis.on("GET", ASSOCIATIONS, (200, {"results": []}))

    assert enrichment.run_fetch("contacts", "hubspot.deal_contacts", {"id": 7}) == {
        "ids": [],
        "contacts": [],
        "emails": [],
    }
    assert len(apis.calls) == 1


def test_stage_labels_cover_every_pipeline_when_pipelines_are_read(apis, enrichment):
    apis.on("GET", PIPELINES_URL, (200, PIPELINES))

    stages = enrichment.run_fetch("stages", "hubspot.pipeline_stages", {"object": "deals"})

    assert stages["labels"] == {
        "qualifiedtobuy": "Qualified",
        "contractsent": "Negotiation",
        "1234567": "Renewal due",
    }
    assert stages["pipelines"]["renewals"]["label"] == "Renewals"


def test_stage_label_is_looked_up_in_the_named_pipeline_when_one_is_given(apis, enrichment):
    apis.on("GET", PIPELINES_URL, (200, PIPELINES))

    assert (
        enrichment.run_fetch("s", "hubspot.stage_label", {"stage": "1234567", "pipeline": "renewals"})
        == "Renewal due"
    )
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("s", "hubspot.stage_label", {"stage": "1234567", "pipeline": "default"})
    assert caught.value.code == "stage_not_found"


def test_unknown_stage_is_permanent_when_no_pipeline_has_it(apis, enrichment):
    apis.on("GET", PIPELINES_URL, (200, PIPELINES))

    with pytest.raises(EnrichmentFailedError, match="no deals stage 'gone'"):
        enrichment.run_fetch("s", "hubspot.stage_label", {"stage": "gone"})


# --- identity ------------------------------------------------------------------------------------


def test_identity_comes_from_the_inline_table_case_insensitively(apis, enrichment):
    table = {"Olivia@Acme.example": "con_3f1e0b9a7c5d2e48"}

    found = enrichment.run_fetch(
        "c", "identity", {"namespace": "stora_contact", "key": " olivia@acme.EXAMPLE ", "table": table}
    )

    assert found == "con_3f1e0b9a7c5d2e48"


def test_identity_comes_from_the_mapping_lookups_when_table_names_one(apis, enrichment):
    lookups = {"stora_contact": {"olivia@acme.example": "con_3f1e0b9a7c5d2e48"}}

    found = enrichment.run_fetch(
        "c",
        "identity",
        {"namespace": "stora_contact", "key": "olivia@acme.example", "table": "stora_contact"},
        lookups=lookups,
    )

    assert found == "con_3f1e0b9a7c5d2e48"


def test_identity_is_permanent_when_the_static_table_lacks_it_and_no_identity_table_exists(apis, enrichment):
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch(
            "c", "identity", {"namespace": "stora_contact", "key": "x@y.example", "table": {}}
        )

    assert caught.value.code == "identity_not_found"


def test_identity_waits_for_configuration_when_neither_a_table_nor_an_identity_map_exists(apis, enrichment):
    with pytest.raises(EnrichmentRetryError) as caught:
        enrichment.run_fetch("c", "identity", {"namespace": "stora_contact", "key": "x@y.example"})

    assert caught.value.code == "identity_map_missing"


@pytest.fixture
def identity_map(apis, monkeypatch):
    """DynamoDB identity tables on moto (`identities` holds one entry), IDENTITY_TABLE naming it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("IDENTITY_TABLE", "identities")
    with mock_aws():
        clients = AwsClients()
        clients("dynamodb").create_table(
            TableName="identities",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table = IdentityTable("identities", clients)
        table.put_many([Identity("stora_contact", "Olivia@Acme.example", "con_3f1e0b9a7c5d2e48")])
        yield table


def test_identity_comes_from_the_identity_map_when_the_static_table_lacks_it(identity_map):
    found = enrichment_from_environ().run_fetch(
        "c", "identity", {"namespace": "stora_contact", "key": "olivia@acme.example", "table": {}}
    )

    assert found == "con_3f1e0b9a7c5d2e48"


def test_missing_identity_is_found_once_imported_because_misses_are_not_cached(identity_map):
    enrichment = enrichment_from_environ()
    args = {"namespace": "stora_contact", "key": "new@acme.example"}
    with pytest.raises(EnrichmentFailedError, match="bridge identities import"):
        enrichment.run_fetch("c", "identity", args)

    identity_map.put_many([Identity("stora_contact", "new@acme.example", "con_0000000000000009")])

    assert enrichment.run_fetch("c", "identity", args) == "con_0000000000000009"


def test_missing_identity_gives_null_when_the_fetch_is_optional(identity_map):
    assert (
        enrichment_from_environ().run_fetch(
            "c", "identity", {"namespace": "stora_contact", "key": "nobody@x.example"}, optional=True
        )
        is None
    )


def test_identity_map_failure_is_retried_later_when_dynamodb_refuses(identity_map, monkeypatch):
    monkeypatch.setenv("IDENTITY_TABLE", "no-such-table")

    with pytest.raises(EnrichmentRetryError) as caught:
        enrichment_from_environ().run_fetch(
            "c", "identity", {"namespace": "stora_contact", "key": "olivia@acme.example"}
        )

    assert caught.value.code == "identity_map_error"
