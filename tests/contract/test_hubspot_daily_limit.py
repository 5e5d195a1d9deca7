"""HubSpot's DAILY limit resets at midnight in the account's time zone (HUBSPOT_ACCOUNT_TIMEZONE,
UTC unless set): a DAILY 429 waits until then, as does enrichment once the daily quota is used."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from timeline_bridge import config
from timeline_bridge.errors import RetryLaterError
from timeline_bridge.targets import hubspot as hubspot_target
from timeline_bridge.targets.http import seconds_until_next_midnight
from timeline_bridge.targets.hubspot import HubspotClient, account_zone, build_client
from timeline_bridge.wiring import Dependencies

NEW_YORK = ZoneInfo("America/New_York")


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def settings_from_env():
    yield


@pytest.mark.parametrize(
    ("now", "zone", "hours"),
    [
        ("2026-01-15T03:00:00", UTC, 21),  # 03:00 in UTC: midnight is 21 h away
        ("2026-01-15T03:00:00", NEW_YORK, 2),  # 22:00 the evening before in New York (EST)
        ("2026-01-15T23:00:00", ZoneInfo("Europe/Berlin"), 24),  # 00:00 in Berlin: a full day
        ("2026-03-08T06:00:00", NEW_YORK, 22),  # 01:00 EST on the day clocks go forward: 23 h day
        ("2026-11-01T05:00:00", NEW_YORK, 24),  # 01:00 EDT on the day clocks go back: 25 h day
    ],
)
def test_daily_limit_waits_until_midnight_in_the_account_time_zone_when_hubspot_answers_429(
    client_from_environ, hubspot, make_job, now, zone, hours
):
    hubspot.inject("rate_limit", policy="DAILY")
    client = client_from_environ(HubspotClient, account_timezone=zone, clock=lambda: _at(now))

    [outcome] = client.send([make_job("hubspot")])

    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert outcome.retry_after == hours * 3600


def test_account_time_zone_read_from_the_setting_when_the_client_is_built(
    hubspot, make_job, monkeypatch, settings_from_env
):
    monkeypatch.setenv("HUBSPOT_ACCOUNT_TIMEZONE", "America/New_York")
    hubspot.inject("rate_limit", policy="DAILY")
    deps = Dependencies.from_environ()
    client = build_client(deps.settings, deps.secrets)
    client._clock = lambda: _at("2026-01-15T03:00:00")

    [outcome] = client.send([make_job("hubspot")])

    assert isinstance(outcome, RetryLaterError) and outcome.retry_after == 2 * 3600


def test_account_time_zone_is_utc_when_the_setting_is_not_set(monkeypatch, settings_from_env):
    monkeypatch.delenv("HUBSPOT_ACCOUNT_TIMEZONE", raising=False)

    settings = config.Settings.from_environ()
    assert account_zone(settings.hubspot_account_timezone) is UTC
    assert settings.hubspot_account_timezone == "UTC"


def test_unknown_time_zone_refused_when_the_client_is_built(monkeypatch, settings_from_env):
    monkeypatch.setenv("HUBSPOT_ACCOUNT_TIMEZONE", "Mars/Olympus_Mons")

    deps = Dependencies.from_environ()
    with pytest.raises(ValueError, match="HUBSPOT_ACCOUNT_TIMEZONE='Mars/Olympus_Mons'"):
        build_client(deps.settings, deps.secrets)


def test_enrichment_waits_until_midnight_in_the_account_time_zone_when_the_daily_quota_is_used(
    monkeypatch, settings_from_env
):
    from timeline_bridge.enrichment.hubspot import HubspotCrm
    from timeline_bridge.wiring import Dependencies

    monkeypatch.setenv("HUBSPOT_ACCOUNT_TIMEZONE", "Asia/Tokyo")
    dependencies = Dependencies.from_environ()

    class Answer:
        headers = {"X-HubSpot-RateLimit-Daily-Remaining": "0"}

    wait = HubspotCrm(dependencies.settings, dependencies.secrets).quota_wait(Answer())  # type: ignore[arg-type]

    assert wait is not None
    assert abs(wait - seconds_until_next_midnight(zone=ZoneInfo("Asia/Tokyo"))) < 5
    tokyo = ZoneInfo("Asia/Tokyo")  # 03:00 UTC is 12:00 JST
    assert hubspot_target.seconds_until_daily_reset(_at("2026-01-15T03:00:00"), zone=tokyo) == 12 * 3600
