"""Two route functions in one process (the local runtime, the tests): each Enrichment reads the
hosts, tokens and identity table of its own settings, and keeps its own caches and gates."""

from __future__ import annotations

import pytest
from enrichment_fakes import PIPELINES
from moto import mock_aws
from timeline_bridge.aws import AwsClients
from timeline_bridge.enrichment import Enrichment, EnrichmentRetryError
from timeline_bridge.enrichment.identity import Identity, IdentityTable
from timeline_bridge.wiring import Dependencies

US, EU = "https://api.hubapi.test", "https://eu.hubapi.test"
EU_PIPELINES = {
    "results": [
        {"id": "eu", "label": "EU", "stages": [{"id": "contractsent", "label": "Vertrag", "displayOrder": 0}]}
    ]
}


def function_enrichment(**variables: str) -> Enrichment:
    """The enrichment of a function whose variables are `variables` (this process's are not read)."""
    return Enrichment.of(Dependencies.from_environ(variables))


def test_each_enrichment_reads_the_hubspot_host_and_token_of_its_own_settings(apis):
    apis.on("GET", f"{US}/crm/v3/pipelines/deals", (200, PIPELINES))
    apis.on("GET", f"{EU}/crm/v3/pipelines/deals", (200, EU_PIPELINES))
    us = function_enrichment(HUBSPOT_BASE_URL=US, HUBSPOT_ACCESS_TOKEN="pat-us")
    eu = function_enrichment(HUBSPOT_BASE_URL=EU, HUBSPOT_ACCESS_TOKEN="pat-eu")

    assert us.run_fetch("s", "hubspot.stage_label", {"stage": "contractsent"}) == "Negotiation"
    # The same read with a cached answer in `us`: `eu` asks its own host.
    assert eu.run_fetch("s", "hubspot.stage_label", {"stage": "contractsent"}) == "Vertrag"
    assert us.run_fetch("s", "hubspot.stage_label", {"stage": "contractsent"}) == "Negotiation"

    assert [c.headers["Authorization"] for c in apis.calls] == ["Bearer pat-us", "Bearer pat-eu"]


def test_throttled_api_waits_only_in_the_enrichment_it_answered(apis):
    apis.on("GET", f"{US}/crm/v3/pipelines/deals", (429, {"category": "RATE_LIMITS"}, {"Retry-After": "30"}))
    apis.on("GET", f"{EU}/crm/v3/pipelines/deals", (200, EU_PIPELINES))
    throttled = function_enrichment(HUBSPOT_BASE_URL=US, HUBSPOT_ACCESS_TOKEN="pat-us")
    other = function_enrichment(HUBSPOT_BASE_URL=US, HUBSPOT_ACCESS_TOKEN="pat-us")
    with pytest.raises(EnrichmentRetryError):
        throttled.run_fetch("s", "hubspot.pipeline_stages", {})

    apis.on("GET", f"{US}/crm/v3/pipelines/deals", (200, PIPELINES))

    assert other.run_fetch("s", "hubspot.pipeline_stages", {})["labels"]["contractsent"] == "Negotiation"
    with pytest.raises(EnrichmentRetryError) as waiting:
        throttled.run_fetch("s", "hubspot.pipeline_stages", {})
    assert waiting.value.code == "rate_limited"
    assert len(apis.calls) == 2


def test_each_enrichment_resolves_identities_from_its_own_identity_table(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = AwsClients()
        for name, target_id in (
            ("identities-a", "con_000000000000000a"),
            ("identities-b", "con_000000000000000b"),
        ):
            clients("dynamodb").create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            IdentityTable(name, clients).put_many(
                [Identity("stora_contact", "olivia@acme.example", target_id)]
            )
        first = function_enrichment(IDENTITY_TABLE="identities-a")
        second = function_enrichment(IDENTITY_TABLE="identities-b")
        args = {"namespace": "stora_contact", "key": "Olivia@Acme.example"}

        assert first.run_fetch("c", "identity", args) == "con_000000000000000a"
        assert second.run_fetch("c", "identity", args) == "con_000000000000000b"
        assert function_enrichment().sources.identities is None  # no IDENTITY_TABLE: none read
