"""Enrichment: the `enrich:` block of a mapping, run in the route stage before rendering.

    enrich:
      deal:     {fetch: hubspot.deal, with: {id: "${{ event.objectId }}", properties: [dealname], history: [dealstage]}}
      new:      {fetch: hubspot.stage_label, with: {stage: "${{ event.propertyValue }}"}}
      contacts: {fetch: hubspot.deal_contacts, with: {id: "${{ event.objectId }}"}}
      contact_id:
        fetch: identity
        with: {namespace: stora_contact, key: "${{ enrichment.contacts.emails[0] }}"}

Fetches run in the order written; each result is `enrichment.<name>` for the body and for the
`with:` of the fetches after it. Options per fetch: `optional: true` (a record that does not exist,
or a required argument that renders empty, gives null instead of a failure) and `ttl: <seconds>`
(how long reference data stays cached; 0 disables).

The route stage's enricher is an `Enrichment`, built once per route function from its settings,
secrets and AWS clients: it owns the API clients, the identity map, the reference-data cache and
the throttle gates, so two functions in one process (the local runtime, tests) never share them.

Failures keep the target calls' two types, wrapped so the dead letter names the fetch:
`EnrichmentRetryError` (a RetryLaterError: throttled, 5xx, timeout, expired credentials; the route
fails the SQS record and the whole event is routed again later) and `EnrichmentFailedError` (a
PermanentDeliveryError: the route dead-letters that mapping's job with reason `enrichment_error`;
nothing half-filled is sent).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from timeline_bridge.enrichment.cache import Memo, cached
from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings
    from timeline_bridge.enrichment.fetches import FetchKind, Sources
    from timeline_bridge.mapping import Mapping
    from timeline_bridge.models import Envelope
    from timeline_bridge.wiring import Dependencies

__all__ = [
    "Enrichment",
    "EnrichmentFailedError",
    "EnrichmentRetryError",
    "NotFoundError",
    "fetch_kinds",
]


@dataclass
class EnrichmentRetryError(RetryLaterError):
    """A fetch failed for now (throttled, 5xx, timeout, credentials): route the event again later."""

    fetch: str = ""  # the name in the enrich block
    kind: str = ""  # the fetch kind, e.g. hubspot.deal


@dataclass
class EnrichmentFailedError(PermanentDeliveryError):
    """A fetch failed for good (unknown record, refused request): dead-letter the job."""

    fetch: str = ""
    kind: str = ""


def fetch_kinds() -> dict[str, FetchKind]:
    """Every fetch kind by name."""
    from timeline_bridge.enrichment.fetches import KINDS

    return KINDS


def _wrap(failure: DeliveryFailure, name: str, kind: str) -> DeliveryFailure:
    message = f"enrich.{name} ({kind}): {failure.message}"
    if isinstance(failure, RetryLaterError):
        return EnrichmentRetryError(
            message,
            status=failure.status,
            code=failure.code,
            request_id=failure.request_id,
            details=list(failure.details),
            retry_after=failure.retry_after,
            throttled=failure.throttled,
            fetch=name,
            kind=kind,
        )
    return EnrichmentFailedError(
        message,
        status=failure.status,
        code=failure.code,
        request_id=failure.request_id,
        details=list(failure.details),
        fetch=name,
        kind=kind,
    )


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


class Enrichment:
    """The route stage's enricher: `enrichment(mapping, envelope)` → `{name: result}`.

    Results of record fetches (a deal, its contacts) are shared by the mappings of one envelope;
    the enricher is called for each matching mapping of an envelope in turn, so one memo is kept
    for the envelope seen last. Reference data is cached for its TTL in `sources`.
    """

    def __init__(self, settings: Settings, secrets: Secrets, aws: Callable[[str], Any]) -> None:
        from timeline_bridge.enrichment.fetches import Sources  # lazy: the HTTP clients' imports

        self.sources: Sources = Sources.of(settings, secrets, aws)
        self._memo_key: tuple[str, str] | None = None
        self._memo = Memo()

    @classmethod
    def of(cls, dependencies: Dependencies) -> Enrichment:
        """The enrichment of a route function built on `dependencies`."""
        return cls(dependencies.settings, dependencies.secrets, dependencies.aws)

    def memo_for(self, envelope: Envelope) -> Memo:
        key = (envelope.source, envelope.event_id)
        if key != self._memo_key:
            self._memo_key, self._memo = key, Memo()
        return self._memo

    def run_fetch(
        self,
        name: str,
        kind_name: str,
        args: dict[str, Any],
        *,
        optional: bool = False,
        ttl: float | None = None,
        lookups: dict[str, dict[str, Any]] | None = None,
        memo: Memo | None = None,
    ) -> Any:
        """Run one fetch with rendered `args`. Raises EnrichmentRetryError or EnrichmentFailedError."""
        from timeline_bridge.enrichment.api import NotFoundError
        from timeline_bridge.enrichment.fetches import FetchContext

        kind = fetch_kinds().get(kind_name)
        if kind is None:
            raise EnrichmentFailedError(
                f"enrich.{name}: unknown fetch {kind_name!r}",
                code="unknown_fetch",
                fetch=name,
                kind=kind_name,
            )
        missing = [arg for arg in kind.required if _empty(args.get(arg))]
        if missing:
            if optional:
                return None
            raise EnrichmentFailedError(
                f"enrich.{name} ({kind_name}): argument {', '.join(missing)} rendered empty",
                code="argument_empty",
                fetch=name,
                kind=kind_name,
            )
        known = {*kind.required, *kind.optional}
        call_args = {k: v for k, v in args.items() if k in known and v is not None}
        context = FetchContext(
            self.sources, lookups=lookups or {}, ttl=kind.ttl if ttl is None else float(ttl)
        )
        key = (kind_name, json.dumps(call_args, sort_keys=True, default=str))
        try:
            # Failures are never cached: the next event (or the retry) asks again.
            return cached(
                self.sources.reference_cache, key, context.ttl, lambda: kind.run(call_args, context), memo
            )
        except NotFoundError as exc:
            if optional:
                return None
            raise _wrap(exc, name, kind_name) from None
        except DeliveryFailure as exc:
            raise _wrap(exc, name, kind_name) from None

    def __call__(self, mapping: Mapping, envelope: Envelope) -> dict[str, Any]:
        from timeline_bridge.mapping.engine import RenderError

        memo = self.memo_for(envelope)
        options = (mapping.raw.get("enrich") or {}) if isinstance(mapping.raw, dict) else {}
        results: dict[str, Any] = {}
        key = mapping.key(envelope)
        for name, spec in mapping.enrich.items():
            context = mapping.context(envelope, results, key)
            try:
                args = spec.args(context)
            except RenderError as exc:
                raise mapping.error(exc.reason, exc.path) from None
            entry = options.get(name) or {}
            results[name] = self.run_fetch(
                name,
                spec.fetch,
                args,
                optional=bool(entry.get("optional", False)),
                ttl=entry.get("ttl"),
                lookups=mapping.lookups,
                memo=memo,
            )
        return results
