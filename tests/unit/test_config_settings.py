"""The settings: parsed once per function from its environment, by config.py alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from timeline_bridge import config
from timeline_bridge.delivery import RetryPolicy, rate_limits
from timeline_bridge.wiring import Dependencies, Stage

CORE = Path(__file__).resolve().parents[2] / "layers" / "bridge" / "timeline_bridge"
ENV_READ = re.compile(r"os\.environ|getenv")


def test_only_config_reads_the_environment_when_the_core_is_scanned() -> None:
    readers = sorted(
        str(path.relative_to(CORE)) for path in CORE.rglob("*.py") if ENV_READ.search(path.read_text())
    )
    assert readers == ["config.py"]


def test_a_stage_keeps_the_settings_of_its_cold_start_when_the_environment_changes_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    stage = Stage(lambda deps: lambda event, context: seen.append(deps.settings.matter_version) or {})
    monkeypatch.setenv("MATTER_VERSION", "2026-01-01")
    stage({}, None)
    monkeypatch.setenv("MATTER_VERSION", "2027-01-01")
    stage({}, None)
    assert seen == ["2026-01-01", "2026-01-01"]
    stage.configure(Dependencies.from_environ())  # a new cold start
    stage({}, None)
    assert seen[-1] == "2027-01-01"


def test_two_functions_in_one_process_see_their_own_settings_when_built_from_their_variables() -> None:
    stora = Dependencies.from_environ({"TARGET": "stora", "STORA_QUEUE_URL": "https://sqs.test/stora"})
    matter = Dependencies.from_environ({"TARGET": "matter", "MATTER_QUEUE_URL": "https://sqs.test/matter"})
    assert (stora.settings.target, matter.settings.target) == ("stora", "matter")
    assert stora.settings.queue_url("stora") == "https://sqs.test/stora"
    with pytest.raises(RuntimeError, match="STORA_QUEUE_URL is not set"):
        matter.settings.queue_url("stora")
    assert stora.aws is not matter.aws and stora.secrets is not matter.secrets


def test_a_bad_integer_fails_the_cold_start_naming_the_variable_when_settings_are_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="MAX_BODY_BYTES='1MiB' is not an integer"):
        config.Settings.from_environ({"MAX_BODY_BYTES": "1MiB"})
    monkeypatch.setenv("MAX_BODY_BYTES", "1MiB")
    stage = Stage(lambda deps: lambda event, context: {})
    with pytest.raises(ValueError, match="MAX_BODY_BYTES"):
        stage({}, None)


def test_delivery_knobs_come_from_the_settings_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("DELIVERY_RECORD_TTL_SECONDS", "60")  # below the floor: the floor applies
    monkeypatch.setenv("DELIVERY_BACKOFF_BASE_SECONDS", "not-a-number")  # the default applies
    monkeypatch.setenv("STORA_RATE_LIMITS", "20/1")
    monkeypatch.setenv("DELIVER_MAX_CONCURRENCY", "2")
    monkeypatch.delenv("DELIVERY_PACE_FRACTION", raising=False)
    monkeypatch.delenv("DELIVERY_RATE_TIME_SCALE", raising=False)
    monkeypatch.delenv("STORA_MAX_REQUESTS_PER_SECOND", raising=False)
    monkeypatch.delenv("STORA_MAX_REQUESTS_PER_MINUTE", raising=False)
    policy = RetryPolicy.from_settings(config.Settings.from_environ().retry)
    assert (policy.max_attempts, policy.record_ttl, policy.backoff_base) == (3, config.MIN_RECORD_TTL, 5.0)
    assert rate_limits("stora", config.Settings.from_environ().pacing) == ((8, 1.0),)


def test_a_generic_endpoint_sees_only_its_own_variables_when_several_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENERIC_MY_CRM_SCHEME", "hmac")
    monkeypatch.setenv("GENERIC_MY_CRM_PREFIX", "sha256=")
    monkeypatch.setenv("GENERIC_BILLING_SCHEME", "standard")
    assert config.generic_prefix("my-crm") == "GENERIC_MY_CRM_"
    assert config.Settings.from_environ().generic_endpoint("my-crm") == {
        "SCHEME": "hmac",
        "PREFIX": "sha256=",
    }
