"""The fetch kinds a mapping's `enrich:` block may name, with their arguments and cache policy.

Each kind is a function of its rendered `with:` arguments. Kinds marked with a TTL read reference
data (pipeline stage labels, Slack users, identity entries) and are cached per cold start; the
others are shared only between the mappings of one event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from timeline_bridge import config
from timeline_bridge.enrichment import hubspot, identity, slack, stora
from timeline_bridge.enrichment.cache import cached, reference_cache

PIPELINES_TTL = 600.0
USERS_TTL = 3600.0
PERMALINK_TTL = 3600.0
CONTACTS_TTL = 300.0


@dataclass(frozen=True)
class FetchKind:
    """One kind of fetch: `run(args, context)` with its required and optional arguments."""

    name: str
    run: Callable[[dict[str, Any], FetchContext], Any]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    ttl: float = 0.0  # seconds a result is kept per cold start (0: this event only)
    description: str = ""
    # Where the data lives (API host, table name): part of every cache key.
    scope: Callable[[], str] = lambda: ""


@dataclass
class FetchContext:
    """What a fetch may need besides its arguments: the mapping's lookups, the TTL in force."""

    lookups: dict[str, dict[str, Any]]
    ttl: float


def _hubspot_scope() -> str:
    return config.base_url("hubspot")


def _slack_scope() -> str:
    return slack.web_api().base_url()


def _stora_scope() -> str:
    return config.base_url("stora")


def _identity_scope() -> str:
    return config.settings().identity_table


def _pipelines(args: dict[str, Any], ctx: FetchContext) -> dict[str, Any]:
    object_type = str(args.get("object") or "deals")
    return cached(
        reference_cache,
        ("hubspot.pipeline_stages", _hubspot_scope(), object_type),
        ctx.ttl,
        lambda: hubspot.pipeline_stages({"object": object_type}),
    )


def _stage_label(args: dict[str, Any], ctx: FetchContext) -> str:
    return hubspot.stage_label(args, _pipelines(args, ctx))


def _identity(args: dict[str, Any], ctx: FetchContext) -> str:
    return identity.resolve(args, ctx.lookups)


KINDS: dict[str, FetchKind] = {
    kind.name: kind
    for kind in (
        FetchKind(
            "hubspot.deal",
            lambda args, _ctx: hubspot.deal(args),
            required=("id",),
            optional=("properties", "history"),
            scope=_hubspot_scope,
            description="the deal's properties, their history and each one's previous value",
        ),
        FetchKind(
            "hubspot.deal_contacts",
            lambda args, _ctx: hubspot.deal_contacts(args),
            required=("id",),
            optional=("properties",),
            scope=_hubspot_scope,
            description="the deal's associated contacts and their emails",
        ),
        FetchKind(
            "hubspot.pipeline_stages",
            _pipelines,
            required=(),
            optional=("object",),
            ttl=PIPELINES_TTL,
            scope=_hubspot_scope,
            description="every pipeline's stage labels by stage id",
        ),
        FetchKind(
            "hubspot.stage_label",
            _stage_label,
            required=("stage",),
            optional=("object", "pipeline"),
            ttl=PIPELINES_TTL,
            scope=_hubspot_scope,
            description="the label of one pipeline stage",
        ),
        FetchKind(
            "slack.user",
            lambda args, _ctx: slack.user(args),
            required=("user",),
            ttl=USERS_TTL,
            scope=_slack_scope,
            description="the Slack user object (real_name, profile.email, ...)",
        ),
        FetchKind(
            "slack.permalink",
            lambda args, _ctx: slack.permalink(args),
            required=("channel", "message_ts"),
            ttl=PERMALINK_TTL,
            scope=_slack_scope,
            description="the permalink URL of a message",
        ),
        FetchKind(
            "stora.contact",
            lambda args, _ctx: stora.contact_by_email(args),
            required=("email",),
            ttl=CONTACTS_TTL,
            scope=_stora_scope,
            description="the Stora contact with this email",
        ),
        FetchKind(
            "identity",
            _identity,
            required=("namespace", "key"),
            optional=("table",),
            ttl=identity.IDENTITY_TTL,
            scope=_identity_scope,
            description="a target id from the identity map (static table, then IDENTITY_TABLE)",
        ),
    )
}
