"""The webhook sources: one module each (verify + parse + event identity).

`for_request(source, request)` builds the source object for one request, with its settings read
from the environment (HubSpot's accepted signature versions and public URL, a generic endpoint's
scheme). Only the requested module is imported, so each function loads just its own source.
"""

from __future__ import annotations

from timeline_bridge import SOURCES
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources.base import ParsedRequest, Source, SourceEvent

__all__ = ["ParsedRequest", "Source", "SourceEvent", "for_request"]


def for_request(source: str, request: WebhookRequest) -> Source:
    """The configured `Source` that handles `request` for `source` (hubspot, slack, ...)."""
    if source == "hubspot":
        from timeline_bridge.config import settings
        from timeline_bridge.sources.hubspot import HubSpotSource

        current = settings()
        return HubSpotSource(
            versions=current.hubspot_signature_versions, webhook_url=current.hubspot_webhook_url
        )
    if source == "slack":
        from timeline_bridge.sources.slack import SlackSource

        return SlackSource()
    if source == "pipedrive":
        from timeline_bridge.sources.pipedrive import PipedriveSource

        return PipedriveSource()
    if source == "generic":
        from timeline_bridge.sources.generic import GenericSource

        return GenericSource.for_request(request)
    raise ValueError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
