"""Secrets from Secrets Manager are read through the function's own boto3 client, and cached."""

from __future__ import annotations

from typing import Any

from timeline_bridge import config


class FakeSecretsManager:
    """The one call Powertools' SecretsProvider makes."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[str] = []

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs["SecretId"])
        return {"SecretString": self.value, "Name": kwargs["SecretId"]}


SETTINGS = config.Settings.from_environ({"HUBSPOT_CLIENT_SECRET_SECRET_ID": "timeline-bridge/hubspot"})


def test_secret_is_read_once_through_the_functions_client_when_read_twice() -> None:
    fake = FakeSecretsManager('["new-secret", "old-secret"]')
    secrets = config.Secrets(SETTINGS, lambda: fake)
    assert secrets.values("HUBSPOT_CLIENT_SECRET") == ["new-secret", "old-secret"]
    assert secrets.get("HUBSPOT_CLIENT_SECRET") == "new-secret"
    assert fake.calls == ["timeline-bridge/hubspot"]


def test_secret_is_read_again_when_another_function_reads_it() -> None:
    config.Secrets(SETTINGS, lambda: FakeSecretsManager("first")).values("HUBSPOT_CLIENT_SECRET")
    replacement = FakeSecretsManager("rotated")
    assert config.Secrets(SETTINGS, lambda: replacement).values("HUBSPOT_CLIENT_SECRET") == ["rotated"]
    assert replacement.calls == ["timeline-bridge/hubspot"]


def test_a_plain_variable_wins_over_the_secret_id_and_no_client_is_built_when_set() -> None:
    settings = config.Settings.from_environ(
        {"HUBSPOT_CLIENT_SECRET": '["a", " ", "b"]', "HUBSPOT_CLIENT_SECRET_SECRET_ID": "unused"}
    )

    def no_client() -> Any:
        raise AssertionError("Secrets Manager must not be asked")

    assert config.Secrets(settings, no_client).values("HUBSPOT_CLIENT_SECRET") == ["a", "b"]
    assert config.Secrets(settings, no_client).values("PIPEDRIVE_WEBHOOK_PASSWORD") == []


def test_a_plain_secret_never_shows_in_the_settings_repr() -> None:
    settings = config.Settings.from_environ({"STORA_TOKEN": "tok-do-not-print"})
    assert "tok-do-not-print" not in repr(settings)
