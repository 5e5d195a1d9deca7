"""The event history page of the console: search the archived events by event id or job key, filter
them by state, source and time window, each with its jobs and their outcome; and a Replay action for
a time window (`timeline_bridge_tools.replay`). Served by `bridge dev` next to its console and, on
127.0.0.1 against a deployed stack, by `bridge console --stack NAME`.

    GET  /events?q=&status=&source=&since=&until=   the page
    GET  /events.json?...                          the same as JSON
    POST /events/replay                            since, until, source, type, mapping, dry_run

Everything shown comes from webhooks and providers: every value goes through `console._e`. Every
route answers only a loopback Host of its port (421 otherwise); the Replay action also needs the
run's token and, from a browser, the page's own origin (`action_refusal`, the console's rule).
Without a replay callable the page is read-only: no Replay form, and the action answers 403.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

from timeline_bridge_tools.history import STATUSES, EventFilter, Window
from timeline_bridge_tools.local import loopback
from timeline_bridge_tools.local.console import CSRF_FIELD, _badge, _e, _table
from timeline_bridge_tools.local.function_url import HttpRequest, HttpResponse

PAGE = "/events"
PAGE_JSON = "/events.json"
REPLAY = "/events/replay"
LIST_SINCE = "24h"  # the window of a listing, as `bridge events list`
SEARCH_SINCE = "7d"  # the window of a search by id or key, as `bridge events show`
REPLAY_SINCE = "1h"  # what the Replay form offers
LIMIT = 100
READ_ONLY = "read-only: start with --allow-actions"
_PAGE_HEADERS = [
    ("cache-control", "no-store"),
    # A page with an action must not be framed by another site (clickjacking).
    ("x-frame-options", "DENY"),
    ("content-security-policy", "frame-ancestors 'none'"),
]
# The event states the console's stylesheet does not colour.
_EXTRA_STYLE = """
  .s-dead { background: #fee4e2; color: var(--bad); }
  .s-pending { background: #fef0c7; color: var(--warn); }
  .s-unmatched { background: #f2f4f7; color: var(--muted); }
  form.filters, form.replay { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; margin: 0 0 6px; }
  form label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
  input, select { font: inherit; font-size: 12.5px; padding: 2px 6px; border: 1px solid #d0d5dd; border-radius: 6px; }
  td table { margin: 0; } td table td, td table th { border-bottom: 0; padding: 1px 6px 1px 0; }
  .notice { padding: 6px 10px; border-radius: 6px; background: #fee4e2; color: var(--bad); }
  header a { color: #d0d5dd; }
"""


def action_refusal(
    request: HttpRequest, port: int, token: str, what: str = "the console"
) -> HttpResponse | None:
    """The refusal of a console action (421 for a foreign Host, 403 otherwise), unless it carries
    the run's `token` (`X-CSRF-Token` or the form's `CSRF_FIELD`) and, when a browser sent it, the
    console's own origin. The token is what a cross-site form cannot know."""
    origin = request.header("origin") or None
    refused = loopback.refusal(request.header("host"), origin, port, what)
    if refused is not None:
        return HttpResponse.json(refused[0], {"message": refused[1]})
    given = request.header("x-csrf-token")
    if not given and _is_form(request):
        given = (parse_qs(request.body.decode("utf-8", "replace")).get(CSRF_FIELD) or [""])[0]
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        message = "missing or wrong console token: reload the console page and try again"
        return HttpResponse.json(403, {"message": message})
    return None


def _is_form(request: HttpRequest) -> bool:
    return "application/x-www-form-urlencoded" in request.header("content-type")


@dataclass(frozen=True)
class ReplayAsk:
    """One Replay action: the archived events of `where`, through `mapping` only when given."""

    where: EventFilter
    mapping: str | None = None
    dry_run: bool = False


# Runs a replay (or its dry run) and answers with its report; ValueError / RuntimeError: refused.
ReplayAction = Callable[[ReplayAsk], dict[str, Any]]


def replay_action(
    history_factory: Callable[[], Any],
    mappings_factory: Callable[[], Any],
    *,
    enrich_factory: Callable[[], Any] | None = None,
    rate: float | None = None,
) -> ReplayAction:
    """The Replay action over `timeline_bridge_tools.replay`, as `bridge replay` runs it: the
    mapping set comes from `mappings_factory` (needed by a dry run and by a mapping filter), a dry
    run's enrich hook from `enrich_factory` (none fetched without it)."""

    def run(ask: ReplayAsk) -> dict[str, Any]:
        from timeline_bridge_tools import replay

        history = history_factory()
        mappings: Any = None
        if ask.dry_run or ask.mapping:
            mappings = mappings_factory()
            if mappings is None:
                raise RuntimeError("the mapping files do not load (bridge validate says why)")
        chosen = mappings.get(ask.mapping) if ask.mapping else None
        if ask.mapping and chosen is None:
            raise ValueError(f"no mapping {ask.mapping!r} in the mappings folder")
        if ask.dry_run:
            enrich = enrich_factory() if enrich_factory else None
            report = replay.dry_run(history, ask.where, mappings, mapping=ask.mapping, enrich=enrich)
            return {"dry_run": True, **report.to_dict()}
        window = ask.where.window
        progress = replay.Progress(
            id=replay.new_id(),
            since=window.since.isoformat(),
            until=window.until.isoformat(),
            source=ask.where.source,
            event_type=ask.where.event_type,
            mapping=ask.mapping,
        )
        progress.save()  # resumable with `bridge replay --resume ID`, as any replay
        done = replay.run(
            history,
            progress,
            rate=rate or replay.DEFAULT_RATE,
            source_of_mapping=chosen.source if chosen else None,
        )
        return {"dry_run": False, **done.__dict__}

    return run


class EventsPage:
    """The event history page over the History `history_factory` makes (one per request: a History
    reads the DLQs once); `replay` None makes it read-only. `port` is the server's, for the Host and
    Origin checks (set it once the server is bound when it was 0)."""

    def __init__(
        self,
        history_factory: Callable[[], Any],
        *,
        replay: ReplayAction | None,
        csrf_token: str,
        port: int,
        label: str = "bridge dev",
        console_link: bool = True,
    ) -> None:
        self.history_factory = history_factory
        self.replay = replay
        self.csrf_token = csrf_token
        self.port = port
        self.label = label  # what the history is of, in the page's header
        self.console_link = console_link  # a link back to the console page at /
        self.last_replay: dict[str, Any] | None = None  # shown after a form's redirect

    @staticmethod
    def handles(path: str) -> bool:
        return path in (PAGE, PAGE_JSON, REPLAY)

    def handle(self, request: HttpRequest) -> HttpResponse:
        refused = loopback.refusal(request.header("host"), None, self.port, "the console")
        if refused is not None:
            return HttpResponse.json(refused[0], {"message": refused[1]})
        if request.path == REPLAY:
            if request.method != "POST":
                return HttpResponse.json(405, {"message": "POST a replay"})
            return self._replay(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponse.json(405, {"message": "Method Not Allowed"})
        query = _fields(request.query)
        try:
            found = self._query(query)
        except ValueError as exc:
            if request.path == PAGE_JSON:
                return HttpResponse.json(400, {"message": str(exc)})
            return self._html(400, render(self._view(query, error=str(exc))))
        if request.path == PAGE_JSON:
            return HttpResponse.json(200, found)
        return self._html(200, render(self._view(query, found=found)))

    # -- reading ---------------------------------------------------------------------------------

    def _query(self, query: dict[str, str]) -> dict[str, Any]:
        """The events `query` asks for, as JSON (ValueError for a query that means nothing)."""
        status = query.get("status")
        if status and status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
        ident = query.get("q")
        where = EventFilter(
            Window.of(query.get("since") or (SEARCH_SINCE if ident else LIST_SINCE), query.get("until")),
            query.get("source"),
            query.get("type"),
        )
        limit = _limit(query.get("limit"))
        history = self.history_factory()
        if ident:
            events = [e for e in history.find(ident, where) if not status or e.status == status][:limit]
        else:
            events = history.events(where, status=status or None, limit=limit)
        return {
            "since": _iso(where.window.since),
            "until": _iso(where.window.until),
            "q": ident,
            "status": status,
            "source": where.source,
            "type": where.event_type,
            "limit": limit,
            "events": [e.to_dict() for e in events],
        }

    def _view(
        self, query: dict[str, str], *, found: dict[str, Any] | None = None, error: str = ""
    ) -> dict[str, Any]:
        return {
            "label": self.label,
            "console_link": self.console_link,
            "query": query,
            "found": found,
            "error": error,
            "csrf_token": self.csrf_token if self.replay else None,
            "last_replay": self.last_replay,
        }

    @staticmethod
    def _html(status: int, page: str) -> HttpResponse:
        response = HttpResponse.text(status, page, "text/html; charset=utf-8")
        response.headers += _PAGE_HEADERS
        return response

    # -- the Replay action -----------------------------------------------------------------------

    def _replay(self, request: HttpRequest) -> HttpResponse:
        if self.replay is None:
            origin = request.header("origin") or None
            refused = loopback.refusal(request.header("host"), origin, self.port, "the console")
            status, message = refused or (403, READ_ONLY)
            return HttpResponse.json(status, {"message": message})
        refused_action = action_refusal(request, self.port, self.csrf_token)
        if refused_action is not None:
            return refused_action
        wants_json = "application/json" in request.header("accept")
        try:
            ask = _replay_ask(request)
            report = self.replay(ask)
        except (ValueError, RuntimeError) as exc:
            report = {"refused": str(exc)}
            if wants_json or not _is_form(request):
                return HttpResponse.json(400, {"message": str(exc)})
        self.last_replay = report
        if wants_json or not _is_form(request):
            return HttpResponse.json(200, report)
        return HttpResponse(303, b"", [("location", PAGE)])


def _fields(text: str) -> dict[str, str]:
    """Query or form fields, first value each, blanks dropped."""
    return {k: v[0].strip() for k, v in parse_qs(text).items() if v and v[0].strip()}


def _limit(text: str | None) -> int:
    try:
        limit = int(text) if text else LIMIT
    except ValueError:
        raise ValueError(f"limit {text!r} is not a number") from None
    if limit < 1:
        raise ValueError("limit must be 1 or more")
    return limit


def _replay_ask(request: HttpRequest) -> ReplayAsk:
    """The window and filters of a Replay action, from its form or its JSON body."""
    fields: dict[str, Any]
    if _is_form(request):
        fields = _fields(request.body.decode("utf-8", "replace"))
    else:
        try:
            fields = json.loads(request.body or b"{}")
        except ValueError:
            raise ValueError("the body is neither a form nor JSON") from None
        if not isinstance(fields, dict):
            raise ValueError("the JSON body must be an object")
    since = _text(fields.get("since"))
    if not since:
        raise ValueError("give since (10m, 2h, 3d or an ISO 8601 time)")
    where = EventFilter(
        Window.of(since, _text(fields.get("until"))), _text(fields.get("source")), _text(fields.get("type"))
    )
    dry_run = fields.get("dry_run")
    if isinstance(dry_run, str):
        dry_run = dry_run.lower() in ("1", "true", "on", "yes")
    return ReplayAsk(where, _text(fields.get("mapping")), bool(dry_run))


def _text(value: Any) -> str | None:
    return (str(value).strip() or None) if value is not None else None


def _iso(when: Any) -> str:
    return str(when.isoformat(timespec="seconds")).replace("+00:00", "Z")


# --- the page ------------------------------------------------------------------------------------


@cache
def _console_style() -> str:
    """The console's stylesheet, so both pages look alike from one place."""
    page = resources.files("timeline_bridge_tools.local").joinpath("console.html").read_text("utf-8")
    found = re.search(r"<style>(.*?)</style>", page, re.S)
    return found.group(1) if found else ""


def _when(value: Any) -> str:
    text = str(value or "").replace("T", " ").rstrip("Z")
    return f'<span class="muted">{_e(text)}</span>'


def _source(event: dict[str, Any]) -> str:
    return _e(event.get("source")) + (f" / {_e(event['name'])}" if event.get("name") else "")


def _reason(job: dict[str, Any]) -> str:
    """A dead-lettered job's reason, its stage and the provider's words."""
    reason = job.get("reason") or {}
    if not reason:
        return ""
    detail = reason.get("message") or reason.get("provider_message") or reason.get("detail")
    stage = f" ({reason['stage']} stage)" if reason.get("stage") else ""
    text = f"{reason.get('reason') or '-'}{stage}" + (f": {detail}" if detail else "")
    return _e(text)


def _state(job: dict[str, Any]) -> str:
    badge = _badge(str(job.get("state") or ""))
    if job.get("in_progress"):
        badge += ' <span class="muted">delivering now</span>'
    if job.get("archived") is False:
        badge += ' <span class="muted">made by a replay</span>'
    return badge


def _jobs(jobs: list[dict[str, Any]]) -> str:
    if not jobs:
        return '<span class="muted">no mapping matched it</span>'
    rows = [
        (
            _e(j.get("mapping")),
            _e(j.get("target")),
            f"<code>{_e(j.get('key'))}</code>",
            _state(j),
            f"<code>{_e(j.get('provider_id'))}</code>" if j.get("provider_id") else "",
            _e(j.get("attempts")),
            _reason(j),
        )
        for j in jobs
    ]
    return _table(
        ("mapping", "target", "key", "state", "provider id", "attempts", "dead-letter reason"), rows, ""
    )


def _events(found: dict[str, Any]) -> str:
    events = found["events"]
    rows = [
        (
            _when(e.get("received_at")),
            _source(e),
            _e(e.get("event_type")),
            f"<code>{_e(e.get('event_id'))}</code>"
            f"<details><summary>event</summary><pre>{_e(json.dumps(e.get('event'), indent=1, ensure_ascii=False))}</pre></details>",
            _badge(str(e.get("status") or "")),
            _jobs(e.get("jobs") or []),
        )
        for e in events
    ]
    table = _table(
        ("received", "source", "type", "event id", "status", "jobs"), rows, "No events in this window."
    )
    window = f"received {_e(found['since'])} to {_e(found['until'])}"
    more = (
        f' · <span class="muted">the newest {len(events)}: narrow the window for more</span>'
        if len(events) >= found["limit"]
        else ""
    )
    return (
        f'<section id="events" class="wide"><h2>Events <span class="count">{len(events)}</span>'
        f' <span class="count">{window}</span></h2>{table}<p class="muted">{more}</p></section>'
    )


def _input(name: str, label: str, value: Any, placeholder: str = "") -> str:
    return f'<label>{_e(label)}<input name="{_e(name)}" value="{_e(value)}" placeholder="{_e(placeholder)}"></label>'


def _search(query: dict[str, str]) -> str:
    chosen = query.get("status") or ""
    options = "".join(
        f'<option value="{_e(s)}"{" selected" if s == chosen else ""}>{_e(s or "any")}</option>'
        for s in ("", *STATUSES)
    )
    return (
        f'<section id="search" class="wide"><h2>Search</h2><form class="filters" method="get" action="{PAGE}">'
        + _input("q", "event id or job key", query.get("q"))
        + f'<label>status<select name="status">{options}</select></label>'
        + _input("source", "source", query.get("source"), "hubspot, generic, ...")
        + _input("type", "type", query.get("type"))
        + _input("since", "since", query.get("since"), f"{LIST_SINCE} ({SEARCH_SINCE} for a search)")
        + _input("until", "until", query.get("until"), "now")
        + '<button type="submit" id="search-button">Search</button></form></section>'
    )


def _replay_section(csrf_token: str | None, last: dict[str, Any] | None) -> str:
    if csrf_token is None:
        return (
            f'<section id="replay" class="wide"><h2>Replay</h2><p class="muted">{_e(READ_ONLY)}</p></section>'
        )
    form = (
        f'<form class="replay" method="post" action="{REPLAY}">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf_token)}">'
        + _input("since", "since", REPLAY_SINCE)
        + _input("until", "until", "", "now")
        + _input("source", "source", "")
        + _input("type", "type", "")
        + _input("mapping", "through mapping only", "")
        + '<label>dry run<input type="checkbox" name="dry_run" value="1" checked></label>'
        + '<button type="submit" id="replay-button">Replay</button></form>'
        + '<p class="muted">Puts the archived events of the window back through the current mappings;'
        " a job already delivered is not sent again. A dry run sends nothing.</p>"
    )
    return f'<section id="replay" class="wide"><h2>Replay</h2>{form}{_last_replay(last)}</section>'


def _last_replay(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    if report.get("refused"):
        return f'<div id="replay-report"><p class="notice">replay refused: {_e(report["refused"])}</p></div>'
    if report.get("dry_run"):
        rows = [
            (_e(name), _e(c.get("new")), _e(c.get("delivered")), _e(c.get("skipped")), _e(c.get("errors")))
            for name, c in (report.get("mappings") or {}).items()
        ]
        table = _table(
            ("mapping", "new", "delivered", "skipped", "errors"), rows, "No mapping applies to them."
        )
        errors = "".join(f"<li><code>{_e(e)}</code></li>" for e in report.get("errors") or [])
        return (
            f'<div id="replay-report"><h3>Dry run: {_e(report.get("events"))} archived event(s), nothing sent</h3>'
            f"{table}{f'<ul>{errors}</ul>' if errors else ''}</div>"
        )
    outcome = "complete" if report.get("complete") else f"stopped: {report.get('error') or 'interrupted'}"
    return (
        f'<div id="replay-report"><h3>Replay <code>{_e(report.get("id"))}</code>: {_e(report.get("sent"))} event(s)'
        f" sent from {_e(report.get('objects_done'))} of {_e(report.get('objects'))} archive object(s),"
        f" {_e(outcome)}</h3></div>"
    )


def render(view: dict[str, Any]) -> str:
    """The whole page: the search form, the Replay form (with the run's token, unless read-only),
    the last replay's report and the events found (or why the query was refused)."""
    found = view.get("found")
    error = view.get("error")
    listing = (
        f'<section id="events" class="wide"><p class="notice">{_e(error)}</p></section>'
        if error
        else _events(found)
        if found
        else ""
    )
    back = ' <a href="/">console</a>' if view.get("console_link") else ""
    json_link = f"{PAGE_JSON}?{urlencode(view.get('query') or {})}"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>timeline-bridge · event history · {_e(view.get('label'))}</title>\n"
        f"<style>{_console_style()}{_EXTRA_STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>timeline-bridge · event history</h1>"
        f'<div class="urls">{_e(view.get("label"))}{back} · <a href="{_e(json_link)}">JSON</a></div></header>\n'
        '<main id="event-history">\n'
        + _search(view.get("query") or {})
        + _replay_section(view.get("csrf_token"), view.get("last_replay"))
        + listing
        + "\n</main>\n</body>\n</html>\n"
    )
