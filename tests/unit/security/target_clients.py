"""Each target's client as a deliverer builds it, with fixed credentials: the outbound-call tests
aim them at their own local servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from timeline_bridge.targets import TargetClient, applied, hubspot, matter, stora
from timeline_bridge.wiring import Dependencies


def built(client: Callable[..., TargetClient], **options: Any) -> TargetClient:
    """`client` as a deliverer builds it: on the settings and secrets of this test's environment."""
    deps = Dependencies.from_environ()
    return client(deps.settings, deps.secrets, **options)


CLIENTS = {
    "stora": lambda: built(stora.StoraClient, token=lambda: "stora-token-1"),
    "hubspot": lambda: built(hubspot.HubspotClient, token=lambda: "hubspot-token-1"),
    "matter": lambda: built(matter.MatterClient, token=lambda: "matter-key-1"),
    "applied": lambda: built(
        applied.AppliedClient,
        token=lambda: "applied-key-1",
        shop_id=lambda: "0f8fad5b-d9cb-469f-a165-70867728950e",
    ),
}
