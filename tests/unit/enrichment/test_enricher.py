"""The `enrich:` block as the route runs it: `with:` rendered by the mapping engine, fetches in
order, results under `enrichment.<name>`, per-event memo and per-cold-start TTL cache."""

from __future__ import annotations

import pytest
from enrichment_fakes import HUBSPOT, PIPELINES, SLACK, deal_answer
from timeline_bridge.enrichment import EnrichmentFailedError, EnrichmentRetryError
from timeline_bridge.enrichment.cache import TTLCache
from timeline_bridge.errors import MappingError
from timeline_bridge.mapping.engine import MappingSet
from timeline_bridge.mapping.loader import check_text
from timeline_bridge.models import Envelope

DEAL_EVENT = {
    "subscriptionType": "deal.propertyChange",
    "objectId": 18147040851,
    "portalId": 62515,
    "propertyName": "dealstage",
    "propertyValue": "contractsent",
}
DEAL_URL = f"{HUBSPOT}/crm/v3/objects/deals/18147040851"


def compile_mapping(text: str, name: str = "m.yaml"):
    mapping, errors = check_text(text, name)
    assert not errors, [str(e) for e in errors]
    return mapping


def envelope(event: dict, event_id: str = "e-1", source: str = "hubspot") -> Envelope:
    return Envelope(source, "deal.propertyChange", event_id, None, "2025-11-23T12:01:57.112Z", event)


DEAL_MAPPING = """
name: deal-to-matter
source: hubspot
target: matter
enrich:
  deal:
    fetch: hubspot.deal
    with: {id: "${{ event.objectId }}", properties: [dealname], history: [dealstage]}
  previous:
    fetch: hubspot.stage_label
    with: {stage: "${{ enrichment.deal.previous.dealstage }}"}
  new:
    fetch: hubspot.stage_label
    with: {stage: "${{ event.propertyValue }}"}
body:
  kind: audit
  title: "${{ enrichment.deal.properties.dealname }}: ${{ enrichment.previous }} -> ${{ enrichment.new }}"
  occurred_at: "2025-11-23T12:01:55Z"
  actor: "${{ meta.source }}"
  ref: "deal_${{ event.objectId }}"
"""


def test_results_feed_later_fetches_and_the_body_when_fetches_run_in_order(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer()))
    apis.on("GET", f"{HUBSPOT}/crm/v3/pipelines/deals", (200, PIPELINES))
    mapping = compile_mapping(DEAL_MAPPING)
    event = envelope(DEAL_EVENT)

    results = enrichment(mapping, event)

    assert results["previous"] == "Qualified"
    assert results["new"] == "Negotiation"
    assert mapping.render(event, results).body["title"] == "Acme Storage - 3 units: Qualified -> Negotiation"
    # The deal id came from the event; the stage labels share one (cached) pipelines read.
    assert apis.paths() == ["/crm/v3/objects/deals/18147040851", "/crm/v3/pipelines/deals"]


def test_jobs_render_from_fetched_values_when_the_route_passes_the_enricher(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer()))
    apis.on("GET", f"{HUBSPOT}/crm/v3/pipelines/deals", (200, PIPELINES))
    mappings = MappingSet([compile_mapping(DEAL_MAPPING)])

    (job,) = mappings.render_jobs(envelope(DEAL_EVENT), enrichment)

    assert job.body["title"] == "Acme Storage - 3 units: Qualified -> Negotiation"


def test_job_is_dead_lettered_naming_the_fetch_and_status_when_a_fetch_fails_for_good(apis, enrichment):
    apis.on(
        "GET",
        DEAL_URL,
        (404, {"status": "error", "message": "Object not found.", "category": "OBJECT_NOT_FOUND"}),
    )
    mappings = MappingSet([compile_mapping(DEAL_MAPPING)])

    (failure,) = mappings.render_jobs(envelope(DEAL_EVENT), enrichment)

    letter = failure.dead_letter(envelope(DEAL_EVENT))
    assert letter.body == {}  # nothing half-filled
    record = letter.dead_letter
    assert record["reason"] == "enrichment_error"
    assert (record["fetch"], record["fetch_kind"], record["status"], record["code"]) == (
        "deal",
        "hubspot.deal",
        404,
        "OBJECT_NOT_FOUND",
    )
    assert record["field"] == "enrich.deal"
    assert record["line"] == 6
    assert "Object not found." in record["message"]


def test_record_fails_as_a_whole_when_a_fetch_must_be_retried(apis, enrichment):
    apis.on("GET", DEAL_URL, (503, None))
    mappings = MappingSet([compile_mapping(DEAL_MAPPING)])

    with pytest.raises(EnrichmentRetryError) as caught:
        mappings.render_jobs(envelope(DEAL_EVENT), enrichment)

    assert (caught.value.fetch, caught.value.status) == ("deal", 503)


def test_bad_with_value_is_a_mapping_error_naming_the_field_when_its_expression_fails(apis, enrichment):
    mapping = compile_mapping(
        """
name: bad-time
source: hubspot
target: matter
enrich:
  deal: {fetch: hubspot.deal, with: {id: "${{ to_iso8601(event.objectId) }}x"}}
body: {kind: audit, title: "${{ enrichment.deal.id }}", occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: r}
"""
    )

    with pytest.raises(MappingError) as caught:
        enrichment(mapping, envelope({"objectId": "soon"}))

    assert caught.value.field == "enrich.deal.with.id"
    assert caught.value.line == 6
    assert apis.calls == []


def test_deal_is_fetched_once_per_event_when_two_mappings_need_it(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer()))
    apis.on("GET", f"{HUBSPOT}/crm/v3/pipelines/deals", (200, PIPELINES))
    first = compile_mapping(DEAL_MAPPING)
    second = compile_mapping(DEAL_MAPPING.replace("name: deal-to-matter", "name: deal-to-matter-too"))

    enrichment(first, envelope(DEAL_EVENT))
    enrichment(second, envelope(DEAL_EVENT))
    enrichment(first, envelope(DEAL_EVENT, event_id="e-2"))  # the next event reads the deal again

    assert apis.paths().count("/crm/v3/objects/deals/18147040851") == 2
    assert apis.paths().count("/crm/v3/pipelines/deals") == 1


def test_reference_data_is_read_again_when_its_ttl_has_passed(apis, enrichment, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(enrichment.sources.reference_cache, "_clock", lambda: now[0])
    apis.on("GET", f"{SLACK}/api/users.info", (200, {"ok": True, "user": {"id": "U1", "real_name": "Maria"}}))
    mapping = compile_mapping(
        """
name: approver
source: slack
target: matter
enrich:
  who: {fetch: slack.user, with: {user: "${{ event.user.id }}"}, ttl: 60}
body: {kind: governance, title: t, occurred_at: "2025-11-23T12:01:55Z", actor: "${{ enrichment.who.real_name }}", ref: r}
"""
    )
    click = {"user": {"id": "U1"}}

    enrichment(mapping, envelope(click, "e-1", "slack"))
    now[0] += 59
    enrichment(mapping, envelope(click, "e-2", "slack"))
    assert len(apis.calls) == 1
    now[0] += 2
    enrichment(mapping, envelope(click, "e-3", "slack"))
    assert len(apis.calls) == 2


def test_nothing_is_cached_across_events_when_ttl_is_zero(apis, enrichment):
    apis.on("GET", f"{SLACK}/api/users.info", (200, {"ok": True, "user": {"id": "U1", "real_name": "Maria"}}))
    mapping = compile_mapping(
        """
name: approver
source: slack
target: matter
enrich:
  who: {fetch: slack.user, with: {user: "${{ event.user.id }}"}, ttl: 0}
body: {kind: governance, title: t, occurred_at: "2025-11-23T12:01:55Z", actor: "${{ enrichment.who.real_name }}", ref: r}
"""
    )

    enrichment(mapping, envelope({"user": {"id": "U1"}}, "e-1", "slack"))
    enrichment(mapping, envelope({"user": {"id": "U1"}}, "e-2", "slack"))

    assert len(apis.calls) == 2


def test_failure_is_not_cached_when_the_next_event_asks_again(apis, enrichment):
    answers = iter([(503, None), (200, {"ok": True, "user": {"id": "U1", "real_name": "Maria"}})])
    apis.on("GET", f"{SLACK}/api/users.info", lambda _call: next(answers))
    mapping = compile_mapping(
        """
name: approver
source: slack
target: matter
enrich:
  who: {fetch: slack.user, with: {user: "${{ event.user.id }}"}}
body: {kind: governance, title: t, occurred_at: "2025-11-23T12:01:55Z", actor: "${{ enrichment.who.real_name }}", ref: r}
"""
    )
    with pytest.raises(EnrichmentRetryError, match="503"):
        enrichment(mapping, envelope({"user": {"id": "U1"}}, "e-1", "slack"))

    assert (
        enrichment(mapping, envelope({"user": {"id": "U1"}}, "e-1", "slack"))["who"]["real_name"] == "Maria"
    )


def test_optional_fetch_gives_null_when_its_required_argument_renders_empty(apis, enrichment):
    mapping = compile_mapping(
        """
name: link
source: slack
target: matter
enrich:
  permalink:
    fetch: slack.permalink
    optional: true
    with: {channel: "${{ event.container.channel_id }}", message_ts: "${{ event.container.message_ts }}"}
body: {kind: governance, title: t, occurred_at: "2025-11-23T12:01:55Z", actor: a, ref: "${{ enrichment.permalink || 'none' }}"}
"""
    )

    assert enrichment(mapping, envelope({"container": {"type": "view"}}, source="slack")) == {
        "permalink": None
    }
    assert apis.calls == []


def test_required_fetch_is_permanent_when_its_argument_renders_empty(apis, enrichment):
    mapping = compile_mapping(DEAL_MAPPING)

    with pytest.raises(EnrichmentFailedError, match="argument id rendered empty"):
        enrichment(mapping, envelope({"propertyValue": "contractsent"}))


def test_entries_expire_and_the_oldest_goes_first_when_the_cache_is_full():
    now = [0.0]
    cache = TTLCache(max_entries=2, clock=lambda: now[0])
    cache.put("a", 1, ttl=10)
    cache.put("b", 2, ttl=10)
    cache.get("a")  # a is now the most recently used
    cache.put("c", 3, ttl=10)

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    now[0] = 10.0
    assert cache.get("a") is None
    cache.put("d", 4, ttl=0)
    assert cache.get("d") is None
