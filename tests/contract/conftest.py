"""Contract-test fixtures: delivery jobs, and target clients pointed at the `sandboxes` fixture.

A client is built from the settings and secrets of the test's environment as it is when the
client fixture runs (`built_from_environ`): a fixture that changes the environment comes first.

Sandboxes start with their documented rate limits lifted, so a test that wants throttling sets it
explicitly (`sandbox.set_rate_limits(...)` or `sandbox.inject("rate_limit")`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from timeline_bridge import keys
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.applied import AppliedClient
from timeline_bridge.targets.base import TargetClient
from timeline_bridge.targets.hubspot import HubspotClient
from timeline_bridge.targets.matter import MatterClient
from timeline_bridge.targets.stora import StoraClient
from timeline_bridge.wiring import Dependencies

_counter = itertools.count(1)

STORA_BODY = {
    "source": {"id": "tsrc_126b43585fea94ad"},
    "template": {"id": "aetpl_6b92d7693eb7e8e9"},
    "contact": {"id": "con_8d0b2a1c3e4f5a6b"},
    "description": "CRM deal moved to Closed won stage",
    "external": {"id": "deal_98442", "url": "https://app.hubspot.com/contacts/62515/deal/98442"},
    "variables": {"new_state": "Closed won"},
}
HUBSPOT_BODY = {
    "eventTemplateId": "1001298",
    "objectId": "98442",
    "tokens": {
        "stage": "closedwon",
        "stage_label": "Closed won",
        "changed_at": 1767225600000,
        "change_source": "CRM",
        "deal_name": "Acme renewal",
        "amount": 1200,
    },
}
MATTER_BODY = {
    "kind": "compliance",
    "title": "Deal 98442 moved to Closed won",
    "occurred_at": "2026-01-01T00:00:00Z",
    "actor": "hubspot",
    "ref": "deal_98442",
}
APPLIED_METRIC = {
    "metric_name": "deal_stage_changed",
    "value": 1,
    "metric_object_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "metric_object_type": "deal",
    "additional_properties": {"stage": "closedwon"},
}
BODIES = {
    "stora": STORA_BODY,
    "hubspot": HUBSPOT_BODY,
    "matter": MATTER_BODY,
    "applied": {"name": "Deal won", "metric": APPLIED_METRIC},
}

MakeJob = Callable[..., DeliveryJob]


@pytest.fixture
def make_job() -> MakeJob:
    """`make_job("stora", body=None, **fields)`: a delivery job with a fresh deterministic key
    (body defaults to a valid body for the target; `body` is deep-copied)."""

    def build(target: str, body: dict[str, Any] | None = None, **fields: Any) -> DeliveryJob:
        import copy

        event_id = fields.pop("event_id", f"evt-{next(_counter)}")
        mapping = fields.pop("mapping", f"test-to-{target}")
        return DeliveryJob(
            key=fields.pop("key", keys.job_key("hubspot", event_id, mapping)),
            target=target,
            mapping=mapping,
            mapping_file=f"mappings/{mapping}.yaml",
            source="hubspot",
            event_id=event_id,
            event_type="deal.propertyChange",
            occurred_at="2026-01-01T00:00:00Z",
            body=copy.deepcopy(BODIES[target] if body is None else body),
            **fields,
        )

    return build


@pytest.fixture
def open_sandboxes(sandboxes: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The shared `sandboxes`, without rate limits."""
    for sandbox in sandboxes.values():
        sandbox.set_rate_limits(())
    yield sandboxes


@pytest.fixture
def stora(open_sandboxes: dict[str, Any]) -> Any:
    return open_sandboxes["stora"]


@pytest.fixture
def hubspot(open_sandboxes: dict[str, Any]) -> Any:
    return open_sandboxes["hubspot"]


@pytest.fixture
def matter(open_sandboxes: dict[str, Any]) -> Any:
    return open_sandboxes["matter"]


@pytest.fixture
def applied(open_sandboxes: dict[str, Any]) -> Any:
    return open_sandboxes["applied"]


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> float:
    """Read timeout of 0.3 s, so `slow` faults time out quickly."""
    monkeypatch.setenv("BRIDGE_HTTP_READ_TIMEOUT", "0.3")
    return 0.3


def built_from_environ[Client: TargetClient](client: type[Client], **options: Any) -> Client:
    """A `client` built as a deliverer builds it: from the settings and secrets of a function
    whose variables are this process's environment now."""
    deps = Dependencies.from_environ()
    return client(deps.settings, deps.secrets, **options)


@pytest.fixture
def client_from_environ() -> Callable[..., Any]:
    """`client_from_environ(StoraClient, token=...)`: see `built_from_environ`."""
    return built_from_environ


@pytest.fixture
def stora_client(stora: Any) -> StoraClient:
    return built_from_environ(StoraClient)


@pytest.fixture
def hubspot_client(hubspot: Any) -> HubspotClient:
    return built_from_environ(HubspotClient)


@pytest.fixture
def matter_client(matter: Any) -> MatterClient:
    return built_from_environ(MatterClient)


@pytest.fixture
def applied_client(applied: Any) -> AppliedClient:
    return built_from_environ(AppliedClient)
