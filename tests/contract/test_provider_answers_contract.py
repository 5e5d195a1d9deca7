"""Provider answers the contracts do not foresee, against the sandboxes over real HTTP:

- a 2xx whose body is not the provider's success shape (an HTML page, JSON without the id) is
  delivered (the provider said it stored the event) and logged as a warning quoting a bounded,
  redacted excerpt of the answer;
- a `Retry-After` (or Stora's `RateLimit-Reset`, Matter's `retry_after`) beyond what the provider
  documents is capped at its maximum (`targets.http.max_wait`) and logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from timeline_bridge import TARGETS
from timeline_bridge.errors import RetryLaterError
from timeline_bridge.targets import TargetClient, client_for, http
from timeline_bridge.targets.base import Delivered
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.sandboxes import CREDENTIAL_ENV

SHAPE_WARNING = "target answered 2xx without its success shape; counted as delivered"
CAP_WARNING = "provider asked for a longer wait than its documented maximum; capped"
# What each target documents (the longest window of its rate limits), or 15 min.
THROTTLE_CAPS = {"stora": 60.0, "hubspot": 10.0, "matter": 60.0, "applied": 900.0}
# The provider's own error envelope for a 429 (what the classifiers read besides the headers).
THROTTLE_BODIES: dict[str, Any] = {
    "stora": {"error": {"code": "too_many_requests", "message": "Too many requests"}},
    "hubspot": {"status": "error", "message": "Too many requests", "category": "RATE_LIMITS"},
    "matter": {"type": "about:blank", "title": "Too many requests", "status": 429, "code": "rate_limited"},
    "applied": {"detail": "Request was throttled.", "code": "throttled"},
}
SUCCESS_FIELD = {"stora": "event.id", "hubspot": "id", "matter": "id", "applied": "id"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING):
        yield caplog


def built(target: str) -> TargetClient:
    """The client of `target`, built as its deliverer builds it: from this test's environment."""
    deps = Dependencies.from_environ()
    return client_for(target, deps.settings, deps.secrets)


def warnings_named(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message and r.levelno == logging.WARNING]


def html_echoing(target: str) -> str:
    """A proxy's 200 page quoting the credential, an e-mail address and a header back."""
    token = os.environ[CREDENTIAL_ENV[target]]
    return (
        "<html><head><title>Accepted</title></head>\n<body><p>Request accepted by edge-proxy-7.</p>"
        f"<p>echo: {token}</p><p>Authorization: Bearer {token}</p>"
        "<p>Contact ops.team@provider-example.com for help.</p>" + "<p>padding</p>" * 200 + "</body></html>"
    )


# --- 8b: a 2xx without the success shape --------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_html_2xx_is_delivered_and_logged_with_a_safe_excerpt_when_the_provider_answers_a_page(
    open_sandboxes, make_job, logs, target
):
    sandbox = open_sandboxes[target]
    sandbox.inject("respond", status=200, body=html_echoing(target), headers={"Content-Type": "text/html"})
    job = make_job(target)

    (outcome,) = built(target).send([job])

    assert isinstance(outcome, Delivered) and outcome.status == 200
    (record,) = warnings_named(logs, SHAPE_WARNING)
    assert (record.target, record.status, record.expected) == (target, 200, SUCCESS_FIELD[target])
    assert record.keys == [job.key] and record.content_type == "text/html"
    excerpt = record.answer_excerpt
    assert excerpt.startswith("<html><head><title>Accepted</title></head> <body><p>Request accepted")
    assert len(excerpt) <= http.EXCERPT_CHARS
    assert os.environ[CREDENTIAL_ENV[target]] not in excerpt
    assert "ops.team@" not in excerpt and "Bearer" not in excerpt
    assert "<p>echo: [redacted]</p><p>[redacted] [redacted]</p><p>Contact [redacted] for help.</p>" in excerpt


@pytest.mark.parametrize("target", TARGETS)
def test_json_2xx_without_the_id_is_delivered_and_logged_when_the_provider_omits_it(
    open_sandboxes, make_job, logs, target
):
    open_sandboxes[target].inject("respond", status=201, json={"ok": True, "note": "queued"})

    (outcome,) = built(target).send([make_job(target)])

    assert isinstance(outcome, Delivered) and outcome.status == 201
    (record,) = warnings_named(logs, SHAPE_WARNING)
    assert record.target == target
    assert record.answer_excerpt == '{"ok": true, "note": "queued"}'


def test_hubspot_batch_2xx_without_results_is_delivered_and_logged_when_the_answer_is_a_page(
    hubspot, make_job, logs
):
    hubspot.inject("respond", status=200, body="<html>OK</html>", headers={"Content-Type": "text/html"})
    jobs = [make_job("hubspot"), make_job("hubspot")]

    outcomes = built("hubspot").send(jobs)

    assert [type(o) for o in outcomes] == [Delivered, Delivered]
    (record,) = warnings_named(logs, SHAPE_WARNING)
    assert (record.expected, record.keys, record.answer_excerpt) == (
        "results",
        [j.key for j in jobs],
        "<html>OK</html>",
    )


@pytest.mark.parametrize("target", TARGETS)
def test_no_shape_warning_when_the_provider_answers_its_success_shape(open_sandboxes, make_job, logs, target):
    (outcome,) = built(target).send([make_job(target)])

    assert isinstance(outcome, Delivered) and outcome.provider_id
    assert warnings_named(logs, SHAPE_WARNING) == []


# --- 8c: a Retry-After beyond the documented maximum --------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_retry_after_capped_at_the_documented_maximum_and_logged_when_a_429_asks_for_999999(
    open_sandboxes, make_job, logs, target
):
    open_sandboxes[target].inject(
        "respond", status=429, json=THROTTLE_BODIES[target], headers={"Retry-After": "999999"}
    )

    (outcome,) = built(target).send([make_job(target)])

    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert outcome.retry_after == THROTTLE_CAPS[target] == http.max_wait(target, throttled=True)
    (record,) = warnings_named(logs, CAP_WARNING)
    assert (record.target, record.header, record.asked_seconds, record.capped_seconds) == (
        target,
        "Retry-After",
        999999.0,
        THROTTLE_CAPS[target],
    )


@pytest.mark.parametrize("target", TARGETS)
def test_retry_after_capped_at_15_minutes_and_logged_when_a_5xx_asks_for_999999(
    open_sandboxes, make_job, logs, target
):
    open_sandboxes[target].inject("respond", status=503, json={}, headers={"Retry-After": "999999"})

    (outcome,) = built(target).send([make_job(target)])

    assert isinstance(outcome, RetryLaterError) and not outcome.throttled
    assert outcome.retry_after == 900.0
    (record,) = warnings_named(logs, CAP_WARNING)
    assert (record.target, record.asked_seconds) == (target, 999999.0)


def test_stora_ratelimit_reset_capped_at_its_minute_window_when_it_names_a_time_far_ahead(
    stora, make_job, logs
):
    far = int(time.time()) + 999999
    stora.inject("respond", status=429, json=THROTTLE_BODIES["stora"], headers={"RateLimit-Reset": str(far)})

    (outcome,) = built("stora").send([make_job("stora")])

    assert isinstance(outcome, RetryLaterError) and outcome.retry_after == 60.0
    (record,) = warnings_named(logs, CAP_WARNING)
    assert (record.target, record.header) == ("stora", "RateLimit-Reset")
    assert record.asked_seconds > 999_000


def test_matter_body_retry_after_capped_when_the_problem_asks_for_999999(matter, make_job, logs):
    matter.inject("respond", status=429, json={**THROTTLE_BODIES["matter"], "retry_after": 999999})

    (outcome,) = built("matter").send([make_job("matter")])

    assert isinstance(outcome, RetryLaterError) and outcome.retry_after == 60.0
    (record,) = warnings_named(logs, CAP_WARNING)
    assert (record.target, record.header, record.asked_seconds) == ("matter", "retry_after", 999999.0)


def test_retry_after_within_the_maximum_is_honoured_unlogged_when_a_429_asks_for_it(matter, make_job, logs):
    matter.inject("respond", status=429, json=THROTTLE_BODIES["matter"], headers={"Retry-After": "45"})

    (outcome,) = built("matter").send([make_job("matter")])

    assert isinstance(outcome, RetryLaterError) and outcome.retry_after == 45.0
    assert warnings_named(logs, CAP_WARNING) == []


def test_throttle_cap_is_the_longest_documented_window_when_the_target_documents_its_limits():
    from timeline_bridge.target_registry import documented_rate_limits, max_throttle_waits

    DOCUMENTED_RATE_LIMITS, MAX_THROTTLE_WAIT = documented_rate_limits(), max_throttle_waits()
    documented = {t: max(window for _, window in DOCUMENTED_RATE_LIMITS[t]) for t in MAX_THROTTLE_WAIT}
    assert documented == MAX_THROTTLE_WAIT == {"stora": 60.0, "hubspot": 10.0, "matter": 60.0}
    # Applied Labs documents no limit (its pacing is a guess): only the project-wide cap applies.
    assert http.max_wait("applied", throttled=True) == http.MAX_ASKED_WAIT == 900.0
