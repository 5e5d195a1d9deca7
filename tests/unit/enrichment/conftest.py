"""Fixtures of the enrichment unit tests: the source APIs as in-memory fakes, and an Enrichment
built on the test's environment (so it starts with empty caches and open gates)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from enrichment_fakes import HUBSPOT, SLACK, STORA, FakeApis, enrichment_from_environ
from timeline_bridge.enrichment import Enrichment
from timeline_bridge.targets import http


@pytest.fixture
def apis(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApis]:
    """HubSpot, Slack and Stora as in-memory fakes, with their base URLs and tokens set."""
    fake = FakeApis()
    session = requests.Session()
    session.mount("https://", fake)
    session.mount("http://", fake)
    monkeypatch.setattr(http, "session", lambda: session)
    monkeypatch.setenv("HUBSPOT_BASE_URL", HUBSPOT)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-test")
    monkeypatch.setenv("SLACK_API_BASE_URL", SLACK)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("STORA_BASE_URL", STORA)
    monkeypatch.setenv("STORA_TOKEN", "stora-test")
    monkeypatch.delenv("IDENTITY_TABLE", raising=False)
    for name in ("HUBSPOT_ACCESS_TOKEN", "SLACK_BOT_TOKEN", "STORA_TOKEN"):
        monkeypatch.delenv(f"{name}_SECRET_ID", raising=False)
    yield fake


@pytest.fixture
def enrichment(apis: FakeApis) -> Enrichment:
    """An Enrichment reading the fakes (a test that changes a variable afterwards builds another)."""
    return enrichment_from_environ()
