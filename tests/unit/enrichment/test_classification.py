"""Every way a source API call can fail, classified like a target call: retry later (with the
provider's delay) or dead-letter (permanent), and always naming the fetch."""

from __future__ import annotations

import pytest
import requests
from enrichment_fakes import HUBSPOT, SLACK, STORA, deal_answer, enrichment_from_environ
from timeline_bridge.enrichment import EnrichmentFailedError, EnrichmentRetryError

DEAL_URL = f"{HUBSPOT}/crm/v3/objects/deals/42"
USERS_INFO = f"{SLACK}/api/users.info"
PERMALINK = f"{SLACK}/api/chat.getPermalink"
CONTACTS = f"{STORA}/2025-09/contacts"


def fetch_deal(enrichment, **options):
    return enrichment.run_fetch("deal", "hubspot.deal", {"id": 42, "properties": ["dealname"]}, **options)


def hubspot_error(status, category, message="failed", **extra):
    return {"status": "error", "message": message, "correlationId": "c-1", "category": category, **extra}


# --- HubSpot ---------------------------------------------------------------------------------


def test_deal_is_read_with_bearer_token_and_chosen_properties_when_the_call_succeeds(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer("42")))

    deal = enrichment.run_fetch(
        "deal", "hubspot.deal", {"id": 42, "properties": ["dealname", "amount"], "history": ["dealstage"]}
    )

    (call,) = apis.calls
    assert call.headers["Authorization"] == "Bearer pat-test"
    assert call.query == {"properties": ["dealname,amount"], "propertiesWithHistory": ["dealstage"]}
    assert deal["properties"]["dealname"] == "Acme Storage - 3 units"
    assert deal["previous"] == {"dealstage": "qualifiedtobuy"}


def test_unknown_deal_is_permanent_and_names_the_fetch_when_hubspot_answers_404(apis, enrichment):
    apis.on("GET", DEAL_URL, (404, hubspot_error(404, "OBJECT_NOT_FOUND", "Object not found.")))

    with pytest.raises(EnrichmentFailedError) as caught:
        fetch_deal(enrichment)

    failure = caught.value
    assert (failure.fetch, failure.kind, failure.status, failure.code) == (
        "deal",
        "hubspot.deal",
        404,
        "OBJECT_NOT_FOUND",
    )
    assert "enrich.deal (hubspot.deal): Object not found." in str(failure)


def test_unknown_deal_gives_null_when_the_fetch_is_optional(apis, enrichment):
    apis.on("GET", DEAL_URL, (404, hubspot_error(404, "OBJECT_NOT_FOUND")))

    assert fetch_deal(enrichment, optional=True) is None


def test_throttled_call_retries_after_hubspot_delay_and_closes_the_gate_when_hubspot_answers_429(
    apis, enrichment
):
    apis.on(
        "GET",
        DEAL_URL,
        (
            429,
            {**hubspot_error(429, "RATE_LIMITS"), "policyName": "TEN_SECONDLY_ROLLING"},
            {"Retry-After": "7"},
        ),
    )

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment)
    assert caught.value.throttled is True
    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429

    # The next event waits too, without calling HubSpot again.
    with pytest.raises(EnrichmentRetryError) as again:
        enrichment.run_fetch("other", "hubspot.deal", {"id": 43})
    assert again.value.code == "rate_limited"
    assert 0 < again.value.retry_after <= 7.0
    assert len(apis.calls) == 1


def test_gate_closes_before_any_429_when_hubspot_says_no_calls_are_left(apis, enrichment):
    window = {"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "4000"}
    apis.on("GET", DEAL_URL, (200, deal_answer("42"), window))

    assert fetch_deal(enrichment)["id"] == "42"  # the answer itself is used

    with pytest.raises(EnrichmentRetryError) as waiting:
        enrichment.run_fetch("other", "hubspot.deal", {"id": 43})
    assert (waiting.value.code, waiting.value.throttled) == ("rate_limited", True)
    assert 0 < waiting.value.retry_after <= 4.0
    assert len(apis.calls) == 1


def test_gate_stays_open_when_hubspot_says_calls_are_left(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer("42"), {"X-HubSpot-RateLimit-Remaining": "1"}))

    fetch_deal(enrichment)
    fetch_deal(enrichment)

    assert len(apis.calls) == 2


def test_gate_closes_until_midnight_when_hubspot_says_the_daily_quota_is_used(apis, enrichment):
    apis.on("GET", DEAL_URL, (200, deal_answer("42"), {"X-HubSpot-RateLimit-Daily-Remaining": "0"}))

    fetch_deal(enrichment)

    with pytest.raises(EnrichmentRetryError) as waiting:
        fetch_deal(enrichment)
    assert 0 < waiting.value.retry_after <= 86_400
    assert len(apis.calls) == 1


def test_throttle_delay_is_the_rate_limit_window_when_hubspot_sends_no_retry_after(apis, enrichment):
    apis.on(
        "GET",
        DEAL_URL,
        (429, hubspot_error(429, "RATE_LIMITS"), {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}),
    )

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment)

    assert caught.value.retry_after == 10.0


@pytest.mark.parametrize(
    ("status", "category"),
    [(500, "INTERNAL_ERROR"), (502, None), (503, None), (401, "INVALID_AUTHENTICATION")],
)
def test_call_is_retried_later_when_hubspot_answers_5xx_or_401(apis, enrichment, status, category):
    apis.on("GET", DEAL_URL, (status, hubspot_error(status, category) if category else None))

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment)

    assert caught.value.status == status
    assert caught.value.fetch == "deal"


@pytest.mark.parametrize(("status", "category"), [(400, "VALIDATION_ERROR"), (403, "MISSING_SCOPES")])
def test_call_is_permanent_when_hubspot_refuses_the_request(apis, enrichment, status, category):
    apis.on("GET", DEAL_URL, (status, hubspot_error(status, category)))

    with pytest.raises(EnrichmentFailedError) as caught:
        fetch_deal(enrichment)

    assert (caught.value.status, caught.value.code) == (status, category)


def test_redirect_is_permanent_and_not_followed_when_hubspot_answers_3xx(apis, enrichment):
    apis.on("GET", DEAL_URL, (301, None, {"Location": "https://elsewhere.test/"}))

    with pytest.raises(EnrichmentFailedError) as caught:
        fetch_deal(enrichment)

    assert caught.value.code == "redirect_not_followed"
    assert len(apis.calls) == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (requests.ReadTimeout("read timed out"), "read_timeout"),
        (requests.ConnectTimeout("connect timed out"), "connect_error"),
        (requests.ConnectionError("reset by peer"), "connection_lost"),
    ],
)
def test_call_is_retried_later_and_never_ambiguous_when_the_transport_fails(apis, enrichment, error, code):
    apis.on("GET", DEAL_URL, error)

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment)

    assert caught.value.code == code
    assert caught.value.ambiguous is False  # a read stores nothing


def test_call_waits_for_configuration_when_no_token_is_set(apis, monkeypatch):
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment_from_environ())

    assert caught.value.code == "credentials_missing"
    assert apis.calls == []


def test_call_waits_for_configuration_when_the_base_url_is_not_https(apis, monkeypatch):
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://api.hubapi.test")

    with pytest.raises(EnrichmentRetryError) as caught:
        fetch_deal(enrichment_from_environ())

    assert caught.value.code == "source_misconfigured"
    assert apis.calls == []


def test_required_argument_that_renders_empty_is_permanent_without_a_call(apis, enrichment):
    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("deal", "hubspot.deal", {"id": None})

    assert caught.value.code == "argument_empty"
    assert "argument id rendered empty" in str(caught.value)
    assert apis.calls == []


# --- Slack -----------------------------------------------------------------------------------


def test_user_is_read_with_the_bot_token_when_slack_answers_ok(apis, enrichment):
    apis.on("GET", USERS_INFO, (200, {"ok": True, "user": {"id": "U1", "real_name": "Maria Lopez"}}))

    user = enrichment.run_fetch("approver", "slack.user", {"user": "U1"})

    assert user["real_name"] == "Maria Lopez"
    (call,) = apis.calls
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.query == {"user": ["U1"]}


def test_throttled_call_retries_after_slack_delay_when_slack_answers_ratelimited(apis, enrichment):
    apis.on("GET", USERS_INFO, (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))

    with pytest.raises(EnrichmentRetryError) as caught:
        enrichment.run_fetch("approver", "slack.user", {"user": "U1"})

    assert (caught.value.code, caught.value.retry_after, caught.value.throttled) == (
        "ratelimited",
        30.0,
        True,
    )


@pytest.mark.parametrize("code", ["user_not_found", "user_not_visible"])
def test_unknown_user_is_permanent_when_slack_answers_ok_false(apis, enrichment, code):
    apis.on("GET", USERS_INFO, (200, {"ok": False, "error": code}))

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("approver", "slack.user", {"user": "U1"})

    assert caught.value.code == code
    assert caught.value.fetch == "approver"


@pytest.mark.parametrize("code", ["channel_not_found", "message_not_found"])
def test_unknown_message_is_permanent_when_slack_cannot_find_it(apis, enrichment, code):
    apis.on("GET", PERMALINK, (200, {"ok": False, "error": code}))

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("permalink", "slack.permalink", {"channel": "C1", "message_ts": "1.2"})

    assert caught.value.code == code


@pytest.mark.parametrize("code", ["invalid_auth", "not_authed", "token_revoked", "internal_error"])
def test_call_is_retried_later_when_slack_credentials_or_service_fail(apis, enrichment, code):
    apis.on("GET", USERS_INFO, (200, {"ok": False, "error": code}))

    with pytest.raises(EnrichmentRetryError) as caught:
        enrichment.run_fetch("approver", "slack.user", {"user": "U1"})

    assert caught.value.code == code


def test_call_is_retried_later_when_slack_answers_5xx(apis, enrichment):
    apis.on("GET", USERS_INFO, (503, None))

    with pytest.raises(EnrichmentRetryError):
        enrichment.run_fetch("approver", "slack.user", {"user": "U1"})


def test_unknown_slack_error_is_permanent_and_keeps_its_code(apis, enrichment):
    apis.on("GET", USERS_INFO, (200, {"ok": False, "error": "something_new"}))

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("approver", "slack.user", {"user": "U1"})

    assert caught.value.code == "something_new"


def test_permalink_is_the_url_when_slack_answers_ok(apis, enrichment):
    link = "https://acme.slack.com/archives/C1/p1763900123000200"
    apis.on("GET", PERMALINK, (200, {"ok": True, "channel": "C1", "permalink": link}))

    assert (
        enrichment.run_fetch(
            "permalink", "slack.permalink", {"channel": "C1", "message_ts": "1763900123.000200"}
        )
        == link
    )
    assert apis.calls[0].query == {"channel": ["C1"], "message_ts": ["1763900123.000200"]}


# --- Stora contacts --------------------------------------------------------------------------


def stora_contact(contact_id: str, email: str) -> dict:
    return {"id": contact_id, "email": email, "full_name": "Olivia Bennett"}


def test_stora_contact_is_found_by_email_when_stora_lists_it(apis, enrichment):
    apis.on(
        "GET", CONTACTS, (200, {"contacts": [stora_contact("con_0ac0514ed0711463", "Olivia@Acme.example")]})
    )

    contact = enrichment.run_fetch("contact", "stora.contact", {"email": "olivia@acme.example"})

    assert contact["id"] == "con_0ac0514ed0711463"
    assert apis.calls[0].query["email"] == ["olivia@acme.example"]


def test_stora_contact_is_not_found_when_the_answer_lists_another_email(apis, enrichment):
    apis.on(
        "GET", CONTACTS, (200, {"contacts": [stora_contact("con_0ac0514ed0711463", "someone@else.example")]})
    )

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("contact", "stora.contact", {"email": "olivia@acme.example"})

    assert caught.value.code == "contact_not_found"


def test_stora_contact_is_permanent_when_two_contacts_share_the_email(apis, enrichment):
    apis.on(
        "GET",
        CONTACTS,
        (
            200,
            {
                "contacts": [
                    stora_contact("con_0000000000000001", "a@b.example"),
                    stora_contact("con_0000000000000002", "a@b.example"),
                ]
            },
        ),
    )

    with pytest.raises(EnrichmentFailedError) as caught:
        enrichment.run_fetch("contact", "stora.contact", {"email": "a@b.example"})

    assert caught.value.code == "ambiguous_contact"


def test_stora_throttle_waits_until_the_reset_when_stora_answers_429(apis, enrichment):
    apis.on(
        "GET",
        CONTACTS,
        (
            429,
            {"error": {"code": "too_many_requests", "message": "Rate Limit Exceeded"}},
            {"RateLimit-Reset": "12"},
        ),
    )

    with pytest.raises(EnrichmentRetryError) as caught:
        enrichment.run_fetch("contact", "stora.contact", {"email": "a@b.example"})

    assert (caught.value.code, caught.value.retry_after) == ("too_many_requests", 12.0)
