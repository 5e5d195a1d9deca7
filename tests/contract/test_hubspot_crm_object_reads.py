"""The HubSpot sandbox's CRM v3 object read, GET /crm/v3/objects/{objectType}/{id}, answers and
refuses as HubSpot does; and the `hubspot.contact` / `hubspot.object` fetches read it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from timeline_bridge.enrichment import Enrichment, EnrichmentFailedError
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.sandboxes.hubspot_crm import (
    SAMPLE_CONTACT_ID,
    SAMPLE_DEAL_ID,
    SAMPLE_NEW_CONTACT_EMAIL,
    SAMPLE_NEW_CONTACT_ID,
    HubspotCrmSandbox,
)

TOKEN = "hubspot-sandbox-token"  # the sandbox's fake credential


@pytest.fixture
def crm() -> Iterator[HubspotCrmSandbox]:
    sandbox = HubspotCrmSandbox(TOKEN).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def read(crm: HubspotCrmSandbox, path: str, token: str | None = TOKEN, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{crm.url}{path}", params=params, headers=headers, timeout=5)


def test_a_contact_is_answered_with_the_properties_asked_for_and_the_ones_hubspot_always_adds(crm) -> None:
    answer = read(
        crm, f"/crm/v3/objects/contacts/{SAMPLE_NEW_CONTACT_ID}", properties="email,firstname,nosuchprop"
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == SAMPLE_NEW_CONTACT_ID and body["archived"] is False
    # An unknown property is left out, not refused; contacts carry `lastmodifieddate`.
    assert set(body["properties"]) == {"createdate", "lastmodifieddate", "hs_object_id", "email", "firstname"}
    assert body["properties"]["email"] == SAMPLE_NEW_CONTACT_EMAIL


@pytest.mark.parametrize("object_type", ["deals", "0-3"])
def test_a_deal_is_read_by_its_type_name_or_its_object_type_id(crm, object_type) -> None:
    answer = read(
        crm,
        f"/crm/v3/objects/{object_type}/{SAMPLE_DEAL_ID}",
        properties="dealname",
        propertiesWithHistory="dealstage",
    )

    assert answer.status_code == 200
    body = answer.json()
    assert "hs_lastmodifieddate" in body["properties"] and body["properties"]["dealname"]
    assert [h["value"] for h in body["propertiesWithHistory"]["dealstage"]][:2] == [
        "contractsent",
        "qualifiedtobuy",
    ]


def test_a_custom_object_is_read_once_its_type_exists(crm) -> None:
    assert read(crm, "/crm/v3/objects/p62515_cars/7").status_code == 400
    crm.crm.add_object_type("p62515_cars", "2-3508482")
    crm.crm.add_object("p62515_cars", "7", {"model": "Estate"})

    for object_type in ("p62515_cars", "2-3508482"):
        answer = read(crm, f"/crm/v3/objects/{object_type}/7", properties="model")
        assert (answer.status_code, answer.json()["properties"]["model"]) == (200, "Estate")


@pytest.mark.parametrize(
    ("path", "token", "status", "category"),
    [
        ("/crm/v3/objects/widgets/1", TOKEN, 400, "VALIDATION_ERROR"),
        (f"/crm/v3/objects/contacts/{SAMPLE_DEAL_ID}", TOKEN, 404, "OBJECT_NOT_FOUND"),
        (f"/crm/v3/objects/contacts/{SAMPLE_CONTACT_ID}", None, 401, "INVALID_AUTHENTICATION"),
        (f"/crm/v3/objects/contacts/{SAMPLE_CONTACT_ID}", "another-token", 401, "INVALID_AUTHENTICATION"),
    ],
)
def test_a_read_is_refused_with_hubspots_error_envelope_when_hubspot_would_refuse_it(
    crm, path, token, status, category
) -> None:
    answer = read(crm, path, token)

    assert answer.status_code == status
    body = answer.json()
    assert (body["status"], body["category"]) == ("error", category)
    assert body["message"] and body["correlationId"]


def test_a_read_is_refused_naming_the_scope_when_the_token_lacks_the_types_read_scope(crm) -> None:
    crm.crm.scopes = {TOKEN: {"crm.objects.deals.read"}}

    assert read(crm, f"/crm/v3/objects/deals/{SAMPLE_DEAL_ID}").status_code == 200
    answer = read(crm, f"/crm/v3/objects/contacts/{SAMPLE_CONTACT_ID}")

    assert answer.status_code == 403
    body = answer.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.read"]


# --- the fetches against the sandbox -----------------------------------------------------------


@pytest.fixture
def enrichment(crm, monkeypatch: pytest.MonkeyPatch) -> Enrichment:
    monkeypatch.setenv("HUBSPOT_BASE_URL", crm.url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN_SECRET_ID", raising=False)
    return Enrichment.of(Dependencies.from_environ())


def test_contact_fetch_gives_the_email_a_creation_webhook_lacks(enrichment) -> None:
    contact = enrichment.run_fetch("contact", "hubspot.contact", {"id": int(SAMPLE_NEW_CONTACT_ID)})

    assert contact["email"] == SAMPLE_NEW_CONTACT_EMAIL
    assert contact["properties"]["firstname"] == "Noah"


@pytest.mark.parametrize(
    ("args", "status", "code"),
    [
        ({"type": "widgets", "id": "1"}, 400, "VALIDATION_ERROR"),
        ({"type": "companies", "id": "404404"}, 404, "OBJECT_NOT_FOUND"),
    ],
)
def test_object_fetch_dead_letters_with_hubspots_reason_when_hubspot_refuses_the_read(
    enrichment, args: dict[str, Any], status: int, code: str
) -> None:
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("record", "hubspot.object", args)

    assert (caught.value.status, caught.value.code, caught.value.fetch) == (status, code, "record")


def test_object_fetch_dead_letters_naming_the_scope_when_the_token_lacks_it(crm, enrichment) -> None:
    crm.crm.scopes = {TOKEN: {"crm.objects.deals.read"}}

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("record", "hubspot.object", {"type": "0-1", "id": SAMPLE_CONTACT_ID})

    assert (caught.value.status, caught.value.code) == (403, "MISSING_SCOPES")
