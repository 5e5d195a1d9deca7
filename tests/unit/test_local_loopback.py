"""Which Host and Origin headers the console and the sandboxes accept: loopback names of their port."""

from __future__ import annotations

import pytest
from timeline_bridge_tools.local import loopback

PORT = 3000


@pytest.mark.parametrize("host", ["127.0.0.1:3000", "localhost:3000", "[::1]:3000", "LocalHost:3000"])
def test_host_accepted_when_it_names_loopback_with_the_port(host: str) -> None:
    assert loopback.refusal(host, None, PORT, "the console") is None


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("evil.example:3000", id="rebound-name"),
        pytest.param("127.0.0.1:3001", id="other-port"),
        pytest.param("127.0.0.1", id="no-port"),
        pytest.param("127.0.0.2:3000", id="other-loopback-address"),
        pytest.param("localhost.evil.example:3000", id="suffix"),
        pytest.param("", id="empty"),
        pytest.param(None, id="absent"),
    ],
)
def test_host_refused_with_421_when_not_loopback_with_the_port(host: str | None) -> None:
    status, message = loopback.refusal(host, None, PORT, "the console") or (0, "")
    assert status == 421
    assert "the console answers only at http://127.0.0.1:3000" in message


def test_port_80_accepted_without_the_port_when_browsers_leave_it_out() -> None:
    assert loopback.is_loopback_host("localhost", 80)
    assert loopback.is_loopback_host("localhost:80", 80)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"])
def test_origin_accepted_when_it_is_a_loopback_origin_of_the_port(origin: str) -> None:
    assert loopback.refusal("127.0.0.1:3000", origin, PORT, "the console") is None


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("http://evil.example", id="other-site"),
        pytest.param("http://127.0.0.1:3001", id="other-port"),
        pytest.param("https://127.0.0.1:3000", id="other-scheme"),
        pytest.param("null", id="opaque"),
        pytest.param("", id="empty"),
        pytest.param("http://user@127.0.0.1:3000", id="credentials"),
    ],
)
def test_origin_refused_with_403_when_not_a_loopback_origin_of_the_port(origin: str) -> None:
    status, message = loopback.refusal("127.0.0.1:3000", origin, PORT, "the console") or (0, "")
    assert status == 403
    assert "cross-origin" in message
