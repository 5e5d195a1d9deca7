"""The fetch kinds a mapping's `enrich:` block may name, with their arguments and cache policy.

Each kind is a function of its rendered `with:` arguments. Kinds marked with a TTL read reference
data (pipeline stage labels, Slack users, identity entries) and are cached per cold start; the
others are shared only between the mappings of one event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from timeline_bridge.enrichment import hubspot, identity, slack, stora
from timeline_bridge.enrichment.api import RateGate
from timeline_bridge.enrichment.cache import TTLCache, cached

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

PIPELINES_TTL = 600.0
USERS_TTL = 3600.0
PERMALINK_TTL = 3600.0
CONTACTS_TTL = 300.0


@dataclass(frozen=True)
class Sources:
    """Where the fetches of one `Enrichment` read: its API clients (sharing one throttle gate),
    its identity map (None without `IDENTITY_TABLE`) and its cache of reference data. Built from
    one function's settings, nothing here is shared with another function's."""

    hubspot: hubspot.HubspotCrm
    slack: slack.SlackWebApi
    stora: stora.StoraContacts
    identities: identity.IdentityTable | None
    reference_cache: TTLCache = field(default_factory=TTLCache)

    @staticmethod
    def of(settings: Settings, secrets: Secrets, aws: Callable[[str], Any]) -> Sources:
        gate = RateGate()
        table = settings.identity_table
        return Sources(
            hubspot=hubspot.HubspotCrm(settings, secrets, gate),
            slack=slack.SlackWebApi(settings, secrets, gate),
            stora=stora.StoraContacts(settings, secrets, gate),
            identities=identity.IdentityTable(table, aws) if table else None,
        )


@dataclass(frozen=True)
class FetchKind:
    """One kind of fetch: `run(args, context)` with its required and optional arguments."""

    name: str
    run: Callable[[dict[str, Any], FetchContext], Any]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    ttl: float = 0.0  # seconds a result is kept per cold start (0: this event only)
    description: str = ""


@dataclass(frozen=True)
class FetchContext:
    """What a fetch may need besides its arguments: the sources it reads, the mapping's lookups,
    the TTL in force."""

    sources: Sources
    lookups: dict[str, dict[str, Any]]
    ttl: float


def _pipelines(args: dict[str, Any], ctx: FetchContext) -> dict[str, Any]:
    object_type = str(args.get("object") or "deals")
    return cached(
        ctx.sources.reference_cache,
        ("hubspot.pipeline_stages", object_type),
        ctx.ttl,
        lambda: hubspot.pipeline_stages(ctx.sources.hubspot, {"object": object_type}),
    )


def _stage_label(args: dict[str, Any], ctx: FetchContext) -> str:
    return hubspot.stage_label(args, _pipelines(args, ctx))


def _identity(args: dict[str, Any], ctx: FetchContext) -> str:
    return identity.resolve(args, ctx.lookups, ctx.sources.identities)


KINDS: dict[str, FetchKind] = {
    kind.name: kind
    for kind in (
        FetchKind(
            "hubspot.deal",
            lambda args, ctx: hubspot.deal(ctx.sources.hubspot, args),
            required=("id",),
            optional=("properties", "history"),
            description="the deal's properties, their history and each one's previous value",
        ),
        FetchKind(
            "hubspot.contact",
            lambda args, ctx: hubspot.contact(ctx.sources.hubspot, args),
            required=("id",),
            optional=("properties", "history"),
            description="the contact's properties (email, firstname, lastname unless named) and its email",
        ),
        FetchKind(
            "hubspot.object",
            lambda args, ctx: hubspot.any_object(ctx.sources.hubspot, args),
            required=("type", "id"),
            optional=("properties", "history"),
            description="any CRM record by object type and id: its properties, their history and previous values",
        ),
        FetchKind(
            "hubspot.deal_contacts",
            lambda args, ctx: hubspot.deal_contacts(ctx.sources.hubspot, args),
            required=("id",),
            optional=("properties",),
            description="the deal's associated contacts and their emails",
        ),
        FetchKind(
            "hubspot.pipeline_stages",
            _pipelines,
            required=(),
            optional=("object",),
            ttl=PIPELINES_TTL,
            description="every pipeline's stage labels by stage id",
        ),
        FetchKind(
            "hubspot.stage_label",
            _stage_label,
            required=("stage",),
            optional=("object", "pipeline"),
            ttl=PIPELINES_TTL,
            description="the label of one pipeline stage",
        ),
        FetchKind(
            "slack.user",
            lambda args, ctx: slack.user(ctx.sources.slack, args),
            required=("user",),
            ttl=USERS_TTL,
            description="the Slack user object (real_name, profile.email, ...)",
        ),
        FetchKind(
            "slack.permalink",
            lambda args, ctx: slack.permalink(ctx.sources.slack, args),
            required=("channel", "message_ts"),
            ttl=PERMALINK_TTL,
            description="the permalink URL of a message",
        ),
        FetchKind(
            "stora.contact",
            lambda args, ctx: stora.contact_by_email(ctx.sources.stora, args),
            required=("email",),
            ttl=CONTACTS_TTL,
            description="the Stora contact with this email",
        ),
        FetchKind(
            "identity",
            _identity,
            required=("namespace", "key"),
            optional=("table",),
            ttl=identity.IDENTITY_TTL,
            description="a target id from the identity map (static table, then IDENTITY_TABLE)",
        ),
    )
}
