"""The console's event history page over a fake History: filtering by state and by event id or job
key, every value escaped, the Host / Origin / token rules of its Replay action, read-only without a
replay callable, and the window and filters a replay is asked for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from timeline_bridge.models import Envelope
from timeline_bridge_tools.history import EventFilter, EventHistory, JobHistory
from timeline_bridge_tools.local.console import CSRF_FIELD
from timeline_bridge_tools.local.events_page import READ_ONLY, EventsPage, ReplayAsk
from timeline_bridge_tools.local.function_url import HttpRequest

PORT = 8765
TOKEN = "the-run-token"
HOSTILE = "<script>alert(1)</script>"


def ago(minutes: float) -> str:
    return (
        (datetime.now(UTC) - timedelta(minutes=minutes))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def event(event_id: str, *jobs: JobHistory, minutes_ago: float = 5, source: str = "hubspot") -> EventHistory:
    envelope = Envelope(
        source=source,
        event_type="deal.propertyChange",
        event_id=event_id,
        occurred_at=None,
        received_at=ago(minutes_ago),
        event={"objectId": event_id},
    )
    return EventHistory(
        envelope, ago(minutes_ago), "events/date=x/hour=y/source=hubspot/o.jsonl.gz", list(jobs)
    )


class FakeHistory:
    """History's two queries over a fixed list of events; remembers what it was asked."""

    def __init__(self, events: list[EventHistory]) -> None:
        self.all = events
        self.asked: list[EventFilter] = []

    def events(
        self, where: EventFilter, *, status: str | None = None, limit: int | None = None
    ) -> list[EventHistory]:
        self.asked.append(where)
        found = [e for e in self.all if where.matches(e.envelope) and (status is None or e.status == status)]
        return found[:limit]

    def find(self, ident: str, where: EventFilter) -> list[EventHistory]:
        self.asked.append(where)
        return [
            e
            for e in self.all
            if where.matches(e.envelope)
            and (e.envelope.event_id == ident or ident in {j.key for j in e.jobs})
        ]


@pytest.fixture
def history() -> FakeHistory:
    delivered = JobHistory(
        "to-stora", "stora", "tb-stora-1", state="delivered", provider_id="evt_123", attempts=2
    )
    dead = JobHistory(
        "to-hubspot",
        "hubspot",
        "tb-hs-1",
        state="dead",
        attempts=1,
        reason={
            "reason": "permanent_failure",
            "stage": "deliver",
            "provider_message": "dealname is required",
        },
    )
    return FakeHistory(
        [
            event("deal-delivered", JobHistory("to-stora", "stora", "tb-stora-0", state="delivered")),
            event("deal-dead", delivered, dead),
            event("nobody-wants-me", source="generic"),
            event(HOSTILE, JobHistory("to-stora", "stora", f"tb-{HOSTILE}", state="delivered")),
        ]
    )


class Replays:
    """A replay callable that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[ReplayAsk] = []

    def __call__(self, ask: ReplayAsk) -> dict[str, Any]:
        self.asked.append(ask)
        return {"dry_run": ask.dry_run, "events": 3, "mappings": {"to-stora": {"new": 1, "delivered": 2}}}


@pytest.fixture
def replays() -> Replays:
    return Replays()


def page(history: FakeHistory, replay: Any = None) -> EventsPage:
    return EventsPage(lambda: history, replay=replay, csrf_token=TOKEN, port=PORT)


def get(path: str, query: dict[str, str] | None = None, *, host: str = f"127.0.0.1:{PORT}") -> HttpRequest:
    return HttpRequest("GET", path, urlencode(query or {}), [("Host", host)], b"", "127.0.0.1")


def post_form(
    fields: dict[str, str], *, host: str = f"127.0.0.1:{PORT}", origin: str | None = None
) -> HttpRequest:
    headers = [("Host", host), ("Content-Type", "application/x-www-form-urlencoded")]
    if origin:
        headers.append(("Origin", origin))
    return HttpRequest("POST", "/events/replay", "", headers, urlencode(fields).encode(), "127.0.0.1")


def post_json(body: dict[str, Any], *, token: str | None = TOKEN) -> HttpRequest:
    headers = [
        ("Host", f"localhost:{PORT}"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ]
    if token is not None:
        headers.append(("X-CSRF-Token", token))
    return HttpRequest("POST", "/events/replay", "", headers, json.dumps(body).encode(), "127.0.0.1")


def listed(history: FakeHistory, **query: str) -> list[tuple[str, str]]:
    answer = page(history).handle(get("/events.json", query))
    assert answer.status == 200, answer.body
    return [(e["event_id"], e["status"]) for e in json.loads(answer.body)["events"]]


def test_events_are_filtered_by_state(history):
    assert listed(history, status="dead") == [("deal-dead", "dead")]
    assert listed(history, status="unmatched") == [("nobody-wants-me", "unmatched")]
    assert len(listed(history)) == 4
    assert page(history).handle(get("/events.json", {"status": "lost"})).status == 400


def test_q_finds_an_event_by_its_id_or_one_of_its_job_keys(history):
    assert listed(history, q="deal-dead") == [("deal-dead", "dead")]
    assert listed(history, q="tb-hs-1") == [("deal-dead", "dead")]
    assert listed(history, q="tb-hs-1", status="delivered") == []
    assert listed(history, q="no-such-key") == []


def test_the_window_and_source_reach_the_history(history):
    assert listed(history, since="2m") == []
    assert listed(history, source="generic") == [("nobody-wants-me", "unmatched")]
    assert history.asked[0].window.until - history.asked[0].window.since == timedelta(minutes=2)
    answer = page(history).handle(get("/events", {"since": "yesterday"}))
    assert answer.status == 400 and b"yesterday" in answer.body


def test_the_page_shows_each_event_with_its_jobs_and_their_outcome(history):
    answer = page(history).handle(get("/events"))
    html = answer.body.decode()
    assert answer.status == 200
    assert ("x-frame-options", "DENY") in answer.headers
    for shown in (
        "deal-dead",
        "to-hubspot",
        "tb-hs-1",
        "evt_123",
        "permanent_failure (deliver stage): dealname is required",
    ):
        assert shown in html
    assert "no mapping matched it" in html
    assert 'class="badge s-unmatched"' in html


def test_a_hostile_event_value_is_escaped(history):
    html = page(history).handle(get("/events")).body.decode()
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    searched = page(history).handle(get("/events", {"q": HOSTILE})).body.decode()
    assert HOSTILE not in searched and "tb-&lt;script&gt;" in searched


@pytest.mark.parametrize("path", ["/events", "/events.json"])
def test_a_foreign_host_is_refused_with_421(history, path):
    assert page(history).handle(get(path, host=f"evil.example:{PORT}")).status == 421
    assert page(history).handle(get(path, host="127.0.0.1:9999")).status == 421


def test_a_replay_without_the_token_or_from_another_origin_is_refused(history, replays):
    served = page(history, replays)
    assert served.handle(post_form({"since": "1h"})).status == 403
    assert served.handle(post_form({"since": "1h", CSRF_FIELD: "guessed"})).status == 403
    assert served.handle(post_json({"since": "1h"}, token=None)).status == 403
    cross = post_form({"since": "1h", CSRF_FIELD: TOKEN}, origin="http://evil.example")
    assert served.handle(cross).status == 403
    foreign = post_form({"since": "1h", CSRF_FIELD: TOKEN}, host=f"evil.example:{PORT}")
    assert served.handle(foreign).status == 421
    assert replays.asked == []


def test_read_only_offers_no_replay_and_refuses_one(history):
    served = page(history)
    html = served.handle(get("/events")).body.decode()
    assert 'action="/events/replay"' not in html and READ_ONLY in html
    answer = served.handle(post_form({"since": "1h", CSRF_FIELD: TOKEN}))
    assert answer.status == 403 and json.loads(answer.body) == {"message": READ_ONLY}


def test_a_replay_form_with_the_token_runs_the_replay_of_its_window_and_filters(history, replays):
    served = page(history, replays)
    html = served.handle(get("/events")).body.decode()
    assert f'name="{CSRF_FIELD}" value="{TOKEN}"' in html

    fields = {
        "since": "2h",
        "until": "30m",
        "source": "generic",
        "type": "invoice.paid",
        "mapping": "to-matter",
        "dry_run": "1",
        CSRF_FIELD: TOKEN,
    }
    answer = served.handle(post_form(fields, origin=f"http://127.0.0.1:{PORT}"))
    assert (answer.status, answer.headers) == (303, [("location", "/events")])
    [ask] = replays.asked
    assert (ask.where.source, ask.where.event_type, ask.mapping, ask.dry_run) == (
        "generic",
        "invoice.paid",
        "to-matter",
        True,
    )
    assert ask.where.window.until - ask.where.window.since == timedelta(minutes=90)
    # Back on the page, the report of the dry run.
    shown = served.handle(get("/events")).body.decode()
    assert 'id="replay-report"' in shown and "Dry run: 3 archived event(s)" in shown


def test_a_json_replay_answers_with_its_report(history, replays):
    served = page(history, replays)
    answer = served.handle(post_json({"since": "10m", "dry_run": False}))
    assert answer.status == 200
    assert json.loads(answer.body)["events"] == 3
    [ask] = replays.asked
    assert ask.dry_run is False and ask.mapping is None and ask.where.source is None
    refused = served.handle(post_json({"until": "10m"}))
    assert refused.status == 400 and b"since" in refused.body
