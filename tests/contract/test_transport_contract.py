"""The shared transport: HTTPS only, no redirects, timeouts, transport failures classified, the
providers' throttle headers parsed, and no credential in a log line."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate

import pytest
from timeline_bridge import TARGETS
from timeline_bridge.config import Settings
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.observability import logger
from timeline_bridge.targets import client_for
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.http import (
    InsecureTargetError,
    check_base_url,
    is_loopback,
    parse_interval_ms,
    parse_ratelimit_reset,
    parse_retry_after,
    session,
    timeouts,
)
from timeline_bridge.targets.stora import StoraClient
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.sandboxes import DEFAULT_TOKENS, start


def test_retry_after_parsed_when_seconds_or_http_date():
    now = 1_767_225_600.0
    assert parse_retry_after("30", now=now) == 30.0
    assert parse_retry_after("0", now=now) == 0.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_ratelimit_reset_becomes_delay_when_epoch_seconds_or_delta():
    now = 1_767_225_600.0
    assert parse_ratelimit_reset(str(int(now) + 42), now=now) == 42.0
    assert parse_ratelimit_reset(str(int(now) - 5), now=now) == 0.0
    assert parse_ratelimit_reset("12", now=now) == 12.0
    assert parse_ratelimit_reset("", now=now) is None


def test_hubspot_interval_becomes_seconds_when_milliseconds():
    assert parse_interval_ms("10000") == 10.0
    assert parse_interval_ms("x") is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.53"])
def test_loopback_recognised_when_host_is_local(host):
    assert is_loopback(host.strip("[]"))
    assert check_base_url(f"http://{host}:8080/", allow_http=False) == f"http://{host}:8080"


@pytest.mark.parametrize(
    "url", ["http://api.hubapi.com", "ftp://example.com", "https://", "public-api.stora.co"]
)
def test_base_url_refused_when_not_https_and_not_loopback(url):
    allow_http = Settings.from_environ({}).allow_http_targets
    with pytest.raises(InsecureTargetError):
        check_base_url(url, allow_http=allow_http)


def test_plain_http_allowed_when_operator_opts_in():
    allow_http = Settings.from_environ({"BRIDGE_ALLOW_HTTP_TARGETS": "true"}).allow_http_targets
    assert check_base_url("http://stora.internal:8080", allow_http=allow_http) == "http://stora.internal:8080"


def test_nothing_sent_and_job_kept_when_base_url_is_plain_http(
    client_from_environ, stora, make_job, monkeypatch
):
    monkeypatch.setenv("STORA_BASE_URL", "http://stora.example.com")
    [outcome] = client_from_environ(StoraClient).send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError) and outcome.code == "target_misconfigured"
    assert stora.requests == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_not_followed_when_provider_answers_3xx(stora, stora_client, make_job, status):
    stora.inject("redirect", status=status, location="https://elsewhere.example/steal")
    [outcome] = stora_client.send([make_job("stora")])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (status, "redirect_not_followed")
    assert len(stora.requests) == 1


def test_read_timeout_is_ambiguous_retry_when_provider_is_slow(stora, short_timeouts, stora_client, make_job):
    stora.inject("slow", delay=short_timeouts + 0.4)
    started = time.monotonic()
    [outcome] = stora_client.send([make_job("stora")])
    assert time.monotonic() - started < short_timeouts + 0.3
    assert isinstance(outcome, RetryLaterError) and outcome.ambiguous and outcome.code == "read_timeout"


def test_dropped_connection_is_ambiguous_retry_when_provider_closes_without_answer(
    stora, stora_client, make_job
):
    stora.inject("drop_connection")
    job = make_job("stora")
    [outcome] = stora_client.send([job])
    assert isinstance(outcome, RetryLaterError) and outcome.ambiguous and outcome.code == "connection_lost"
    assert stora.events() == []
    assert isinstance(stora_client.send([job])[0], Delivered)


def test_connect_error_is_plain_retry_when_nothing_listens(client_from_environ, stora, make_job):
    stora.stop()
    [outcome] = client_from_environ(StoraClient).send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError) and not outcome.ambiguous and outcome.code == "connect_error"


def test_timeouts_capped_when_environment_asks_for_more():
    asked = {"BRIDGE_HTTP_CONNECT_TIMEOUT": "30", "BRIDGE_HTTP_READ_TIMEOUT": "60"}
    assert timeouts(Settings.from_environ(asked)) == (3.0, 10.0)
    asked["BRIDGE_HTTP_READ_TIMEOUT"] = "2.5"
    assert timeouts(Settings.from_environ(asked)) == (3.0, 2.5)


def test_one_pooled_session_reused_when_clients_send_repeatedly(
    client_from_environ, stora, stora_client, make_job
):
    assert session() is session()
    assert session().get_adapter(stora.url).max_retries.total == 0
    for _ in range(3):
        stora_client.send([make_job("stora")])
    client_from_environ(StoraClient).send([make_job("stora")])
    # keep-alive: one connection served every request, from both client objects
    assert len({r["client"] for r in stora.requests}) == 1


def test_client_for_builds_every_target_from_configuration(sandboxes):
    deps = Dependencies.from_environ()
    built = {name: client_for(name, deps.settings, deps.secrets) for name in TARGETS}
    assert {name: client.name for name, client in built.items()} == {n: n for n in TARGETS}
    assert built["hubspot"].max_batch_size == 100
    assert built["stora"].max_batch_size == 1


def test_clients_send_to_their_own_hosts_when_built_from_different_settings(make_job):
    # Two functions in one process, each with its own STORA_BASE_URL: nothing is shared but the
    # connection pool, and the environment is never touched.
    first, second = start("stora"), start("stora")
    try:
        clients = []
        for sandbox in (first, second):
            deps = Dependencies.from_environ(
                {"STORA_BASE_URL": sandbox.url, "STORA_TOKEN": DEFAULT_TOKENS["stora"]}
            )
            clients.append(client_for("stora", deps.settings, deps.secrets))
        for client in (*clients, clients[0]):
            [outcome] = client.send([make_job("stora")])
            assert isinstance(outcome, Delivered)
        assert (len(first.requests), len(second.requests)) == (2, 1)
    finally:
        first.stop()
        second.stop()


def test_credentials_never_logged_when_requests_fail(
    client_from_environ, stora, make_job, short_timeouts, caplog
):
    stora.inject("slow", delay=short_timeouts + 0.3)
    stora.inject("respond", status=500, json={"error": {"code": "internal_server_error"}})
    logger.setLevel("DEBUG")
    try:
        with caplog.at_level(logging.DEBUG):
            client = client_from_environ(StoraClient)
            for _ in range(3):
                client.send([make_job("stora")])
    finally:
        logger.setLevel("INFO")
    logged = [str(vars(record)) for record in caplog.records]
    assert any("read_timeout" in line for line in logged)  # the failure itself was logged
    assert any("'status': 201" in line for line in logged)
    assert not any("stora-sandbox-token" in line for line in logged)
