"""Enrichment reads cap a provider's asked-for delay like the target calls do: a `Retry-After`
beyond what the API documents closes the API's gate for the maximum only, and is logged."""

from __future__ import annotations

import logging

import pytest
from enrichment_fakes import HUBSPOT, SLACK, STORA
from timeline_bridge.enrichment import EnrichmentRetryError

CAP_WARNING = "provider asked for a longer wait than its documented maximum; capped"


@pytest.mark.parametrize(
    ("api", "url", "kind", "args", "answer", "cap"),
    [
        (
            "hubspot",
            f"{HUBSPOT}/crm/v3/objects/deals/42",
            "hubspot.deal",
            {"id": 42},
            {"status": "error", "message": "Too many", "category": "RATE_LIMITS"},
            10.0,
        ),
        (
            "slack",
            f"{SLACK}/api/users.info",
            "slack.user",
            {"user": "U1"},
            {"ok": False, "error": "ratelimited"},
            900.0,
        ),
        (
            "stora",
            f"{STORA}/2025-09/contacts",
            "stora.contact",
            {"email": "someone@example.test"},
            {"error": {"code": "too_many_requests"}},
            60.0,
        ),
    ],
    ids=["hubspot", "slack", "stora"],
)
def test_read_throttle_capped_and_logged_when_the_api_asks_for_999999_seconds(
    apis, enrichment, caplog, api, url, kind, args, answer, cap
):
    apis.on("GET", url, (429, answer, {"Retry-After": "999999"}))

    with caplog.at_level(logging.WARNING), pytest.raises(EnrichmentRetryError) as caught:
        enrichment.run_fetch("thing", kind, args)

    assert caught.value.throttled and caught.value.retry_after == cap
    (record,) = [r for r in caplog.records if r.getMessage() == CAP_WARNING]
    assert (record.target, record.asked_seconds, record.capped_seconds) == (api, 999999.0, cap)
    # The gate closes for the capped wait, not for 11 days.
    with pytest.raises(EnrichmentRetryError) as waiting:
        enrichment.run_fetch("thing", kind, args)
    assert 0 < waiting.value.retry_after <= cap
    assert len(apis.calls) == 1
