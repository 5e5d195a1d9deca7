"""Fakes for the enrichment unit tests: an in-memory HTTP transport (a requests adapter that
answers from registered handlers, no sockets) and sample HubSpot answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from timeline_bridge.enrichment import Enrichment
from timeline_bridge.wiring import Dependencies

HUBSPOT = "https://api.hubapi.test"
SLACK = "https://slack.test"
STORA = "https://stora.test"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any


Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]] | Exception
Handler = Callable[[Call], Answer]


@dataclass
class FakeApis(BaseAdapter):
    """Answers `(METHOD, path)` with a registered handler; records every call."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def on(self, method: str, url: str, answer: Answer | Handler) -> None:
        parts = urlsplit(url)
        handler = answer if callable(answer) else (lambda _call, a=answer: a)
        self.routes[(method, f"{parts.scheme}://{parts.netloc}{parts.path}")] = handler

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        call = Call(
            method=request.method or "",
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(request.headers),
            json=json.loads(body) if body else None,
        )
        self.calls.append(call)
        handler = self.routes.get((call.method, f"{parts.scheme}://{parts.netloc}{parts.path}"))
        answer: Answer = handler(call) if handler else (404, {"message": "no route"})
        if isinstance(answer, Exception):
            raise answer
        status, payload, *rest = answer
        response = requests.Response()
        response.status_code = status
        response.headers.update(rest[0] if rest else {})
        response._content = b"" if payload is None else json.dumps(payload).encode()
        response.headers.setdefault("Content-Type", "application/json")
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""


def enrichment_from_environ() -> Enrichment:
    """An Enrichment on this process's environment as it is now (the route function's, in a test)."""
    return Enrichment.of(Dependencies.from_environ())


def deal_answer(deal_id: str = "18147040851", history: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """HubSpot's answer to GET /crm/v3/objects/deals/{id} with dealstage history (newest first)."""
    entries = history or [
        ("contractsent", "2025-11-23T12:01:55.724Z"),
        ("qualifiedtobuy", "2025-11-03T15:47:09.502Z"),
        ("appointmentscheduled", "2025-10-14T08:12:40.118Z"),
    ]
    return {
        "id": deal_id,
        "properties": {"dealname": "Acme Storage - 3 units", "hs_object_id": deal_id},
        "propertiesWithHistory": {
            "dealstage": [{"value": v, "timestamp": ts, "sourceType": "CRM_UI"} for v, ts in entries]
        },
        "archived": False,
    }


PIPELINES = {
    "results": [
        {
            "id": "default",
            "label": "Sales Pipeline",
            "stages": [
                {"id": "qualifiedtobuy", "label": "Qualified", "displayOrder": 1},
                {"id": "contractsent", "label": "Negotiation", "displayOrder": 4},
            ],
        },
        {
            "id": "renewals",
            "label": "Renewals",
            "stages": [{"id": "1234567", "label": "Renewal due", "displayOrder": 0}],
        },
    ]
}
