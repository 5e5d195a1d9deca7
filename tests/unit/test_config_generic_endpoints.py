"""Generic endpoints configured without a variable each in the template: BRIDGE_GENERIC_SETTINGS
(the GenericEndpointSettings parameter) for settings, BRIDGE_GENERIC_SECRETS (a JSON object in
one secret) for each endpoint's own secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from timeline_bridge import config
from timeline_bridge.errors import SecretNotConfiguredError

BUNDLE_ID = "timeline-bridge/generic-endpoints"


class FakeSecretsManager:
    """The one call Powertools' SecretsProvider makes."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[str] = []

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs["SecretId"])
        return {"SecretString": self.value, "Name": kwargs["SecretId"]}


def no_client() -> Any:
    raise AssertionError("Secrets Manager must not be asked")


def bundled(value: Any, **environ: str) -> tuple[config.Secrets, FakeSecretsManager]:
    fake = FakeSecretsManager(value if isinstance(value, str) else json.dumps(value))
    settings = config.Settings.from_environ({"BRIDGE_GENERIC_SECRETS_SECRET_ID": BUNDLE_ID, **environ})
    return config.Secrets(settings, lambda: fake), fake


def test_each_endpoint_sees_its_pairs_when_the_settings_parameter_is_set() -> None:
    settings = config.Settings.from_environ(
        {
            "BRIDGE_GENERIC_SETTINGS": " GENERIC_GITHUB_SCHEME=hmac, GENERIC_GITHUB_PREFIX=sha256=,GENERIC_MY_CRM_TYPE_FIELD=kind,"
        }
    )

    assert settings.generic_endpoint("github") == {"SCHEME": "hmac", "PREFIX": "sha256="}
    assert settings.generic_endpoint("my-crm") == {"TYPE_FIELD": "kind"}
    assert settings.generic_endpoint("billing") == {}


def test_a_variable_set_on_the_function_wins_over_the_settings_parameter() -> None:
    settings = config.Settings.from_environ(
        {"BRIDGE_GENERIC_SETTINGS": "GENERIC_GITHUB_SCHEME=standard", "GENERIC_GITHUB_SCHEME": "hmac"}
    )

    assert settings.generic_endpoint("github") == {"SCHEME": "hmac"}


@pytest.mark.parametrize("entry", ["GENERIC_GITHUB_SCHEME", "github_scheme=hmac", "SCHEME=hmac", "=hmac"])
def test_cold_start_fails_naming_the_entry_when_a_pair_is_malformed(entry: str) -> None:
    with pytest.raises(
        ValueError, match=r"BRIDGE_GENERIC_SETTINGS: entry 2 is not GENERIC_<NAME>_<KEY>=VALUE"
    ):
        config.Settings.from_environ({"BRIDGE_GENERIC_SETTINGS": f"GENERIC_A_SCHEME=hmac,{entry}"})


def test_cold_start_fails_without_echoing_it_when_a_secret_is_put_in_the_settings_parameter() -> None:
    with pytest.raises(ValueError, match="GENERIC_STRIPE_SECRET is a secret") as raised:
        config.Settings.from_environ({"BRIDGE_GENERIC_SETTINGS": "GENERIC_STRIPE_SECRET=whsec_c2VjcmV0"})

    assert "whsec_c2VjcmV0" not in str(raised.value)


def test_an_endpoint_secret_is_read_from_the_bundle_once_when_several_endpoints_ask() -> None:
    secrets, fake = bundled(
        {"GENERIC_STRIPE_SECRET": ["whsec_new", "whsec_old"], "GENERIC_ACME_SECRET": "s1"}
    )

    assert secrets.values("GENERIC_STRIPE_SECRET") == ["whsec_new", "whsec_old"]
    assert secrets.values("GENERIC_ACME_SECRET") == ["s1"]
    assert secrets.values("GENERIC_OTHER_SECRET") == []
    assert fake.calls == [BUNDLE_ID]


def test_an_endpoint_secret_set_as_its_own_variable_wins_over_the_bundle() -> None:
    settings = config.Settings.from_environ(
        {"GENERIC_STRIPE_SECRET": "whsec_own", "BRIDGE_GENERIC_SECRETS_SECRET_ID": BUNDLE_ID}
    )

    assert config.Secrets(settings, no_client).values("GENERIC_STRIPE_SECRET") == ["whsec_own"]


@pytest.mark.parametrize("stored", ["[]", "{}", ""])
def test_no_endpoint_has_a_secret_when_the_bundle_is_still_empty(stored: str) -> None:
    secrets, _ = bundled(stored)

    assert secrets.values("GENERIC_STRIPE_SECRET") == []


def test_no_bundle_is_read_when_none_is_configured() -> None:
    secrets = config.Secrets(config.Settings.from_environ({}), no_client)

    assert secrets.values("GENERIC_STRIPE_SECRET") == []
    assert secrets.values("STORA_TOKEN") == []  # only generic endpoints' secrets are bundled


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ('{"GENERIC_STRIPE_SECRET": "whsec_abc"', "is not a JSON object"),
        ('["whsec_abc"]', "is not a JSON object"),
        ('{"GENERIC_STRIPE_SECRET": {"v": "whsec_abc"}}', "GENERIC_STRIPE_SECRET is not a string or a list"),
        ('{"GENERIC_STRIPE_SECRET": ["whsec_abc", 7]}', "GENERIC_STRIPE_SECRET is not a string or a list"),
    ],
)
def test_endpoint_is_refused_rather_than_falling_back_when_the_bundle_is_malformed(
    stored: str, reason: str
) -> None:
    secrets, _ = bundled(stored)

    with pytest.raises(SecretNotConfiguredError, match=reason) as raised:
        secrets.values("GENERIC_STRIPE_SECRET")
    assert "whsec_abc" not in str(raised.value)
