"""Secrets from Secrets Manager are read through the shared boto3 client, and cached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from timeline_bridge import aws, config


class FakeSecretsManager:
    """The one call Powertools' SecretsProvider makes."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[str] = []

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs["SecretId"])
        return {"SecretString": self.value, "Name": kwargs["SecretId"]}


@pytest.fixture
def secrets_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSecretsManager]:
    fake = FakeSecretsManager('["new-secret", "old-secret"]')
    monkeypatch.delenv("HUBSPOT_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET_SECRET_ID", "timeline-bridge/hubspot")
    monkeypatch.setattr(aws, "client", lambda service: fake if service == "secretsmanager" else None)
    config.settings.cache_clear()
    yield fake
    config.settings.cache_clear()


def test_secret_is_read_once_through_the_shared_client_when_read_twice(secrets_client):
    assert config.secret_values("HUBSPOT_CLIENT_SECRET") == ["new-secret", "old-secret"]
    assert config.secret("HUBSPOT_CLIENT_SECRET") == "new-secret"
    assert secrets_client.calls == ["timeline-bridge/hubspot"]


def test_secret_is_read_again_when_the_client_is_replaced(secrets_client, monkeypatch):
    config.secret_values("HUBSPOT_CLIENT_SECRET")
    replacement = FakeSecretsManager("rotated")
    monkeypatch.setattr(aws, "client", lambda service: replacement)
    assert config.secret_values("HUBSPOT_CLIENT_SECRET") == ["rotated"]
    assert replacement.calls == ["timeline-bridge/hubspot"]
