"""Local stand-ins for the four providers: real HTTP servers on loopback that enforce each
provider's documented contract and keep what they accepted. The HubSpot sandbox also serves the
CRM reads enrichment makes; `slack` is the Slack Web API enrichment reads.

    sandboxes = start_all()                 # ephemeral ports, default credentials
    os.environ.update(env_for(sandboxes))   # STORA_BASE_URL, STORA_TOKEN, ...
    ...
    stop_all(sandboxes)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from timeline_bridge.target_registry import target_specs

from timeline_bridge_tools.sandboxes.applied import DEFAULT_SHOP_ID, AppliedSandbox
from timeline_bridge_tools.sandboxes.base import Sandbox
from timeline_bridge_tools.sandboxes.hubspot import HubspotSandbox
from timeline_bridge_tools.sandboxes.matter import MatterSandbox
from timeline_bridge_tools.sandboxes.slack_api import SlackApiSandbox
from timeline_bridge_tools.sandboxes.stora import StoraSandbox

__all__ = [
    "DEFAULT_SHOP_ID",
    "DEFAULT_TOKENS",
    "SANDBOX_CLASSES",
    "AppliedSandbox",
    "HubspotSandbox",
    "MatterSandbox",
    "Sandbox",
    "SlackApiSandbox",
    "StoraSandbox",
    "env_for",
    "start",
    "start_all",
    "stop_all",
]

SANDBOX_CLASSES: dict[str, type[Sandbox]] = {
    "stora": StoraSandbox,
    "hubspot": HubspotSandbox,
    "matter": MatterSandbox,
    "applied": AppliedSandbox,
    # Not a target: the Slack Web API that enrichment reads (users.info, chat.getPermalink).
    "slack": SlackApiSandbox,
}
# The credential each sandbox accepts unless told otherwise (never a real provider's).
DEFAULT_TOKENS = {
    "stora": "stora-sandbox-token",
    "hubspot": "hubspot-sandbox-token",
    "matter": "sk_test_sandbox",
    "applied": "AL_sandbox_key",
    "slack": "xoxb-sandbox-token",
}
# The variable holding each sandbox's credential: a target's spec names it.
CREDENTIAL_ENV = {
    **{spec.name: spec.credential for spec in target_specs() if spec.name in SANDBOX_CLASSES},
    "slack": "SLACK_BOT_TOKEN",
}
# Where each sandbox's URL goes (default `<NAME>_BASE_URL`).
BASE_URL_ENV = {"slack": "SLACK_API_BASE_URL"}


def start(name: str, token: str | None = None, *, port: int = 0, **options: Any) -> Sandbox:
    """Start one sandbox (`stora`, `hubspot`, `matter`, `applied`) accepting `token`."""
    # Each class takes its credential first (token= or api_key=), then its own options.
    factory: Callable[..., Sandbox] = SANDBOX_CLASSES[name]
    return factory(token or DEFAULT_TOKENS[name], **options).start(port)


def start_all(
    tokens: Mapping[str, str] | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Sandbox]:
    """Start the four sandboxes; `tokens`, `ports` and `options` are keyed by target name."""
    started: dict[str, Sandbox] = {}
    try:
        for name in SANDBOX_CLASSES:
            token = (tokens or {}).get(name) or DEFAULT_TOKENS[name]
            started[name] = start(
                name, token, port=(ports or {}).get(name, 0), **dict((options or {}).get(name, {}))
            )
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(sandboxes: Mapping[str, Sandbox]) -> None:
    for sandbox in sandboxes.values():
        sandbox.stop()


def env_for(sandboxes: Mapping[str, Sandbox], tokens: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that points the target clients at `sandboxes` with the credentials they accept."""
    env: dict[str, str] = {}
    for name, sandbox in sandboxes.items():
        env[BASE_URL_ENV.get(name, f"{name.upper()}_BASE_URL")] = sandbox.url
        env[CREDENTIAL_ENV[name]] = (tokens or {}).get(name) or DEFAULT_TOKENS[name]
    if "applied" in sandboxes:
        env["APPLIED_SHOP_ID"] = DEFAULT_SHOP_ID
    if "matter" in sandboxes:
        env["MATTER_VERSION"] = "2026-06-10"
    return env
