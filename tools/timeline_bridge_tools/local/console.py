"""The console page of `bridge dev`: one server-rendered HTML page, no build step.

Everything shown comes from webhooks and providers, i.e. untrusted input: every value goes
through `html.escape` (the only way text reaches the page is `_e`).

Every action (a form) carries the run's token in `CSRF_FIELD`; the runtime refuses actions without
it, so a page on another site cannot submit them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

# Fields that best describe a stored timeline event, across the four providers' bodies.
_SUMMARY_FIELDS = ("description", "title", "text", "name", "message", "headline")
_TIME_FIELDS = ("occurred_at", "occurredAt", "timestamp", "created_at", "createdAt", "time", "received_at")
_ID_FIELDS = ("id", "external_id", "idempotency_key", "key")
# The form field (or `X-CSRF-Token` header) that carries the run's token with a console action.
CSRF_FIELD = "csrf_token"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@cache
def _template() -> Template:
    return Template(
        resources.files("timeline_bridge_tools.local").joinpath("console.html").read_text("utf-8")
    )


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(status)}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """`rows` hold cells that are already escaped HTML."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _time(value: Any) -> str:
    text = str(value or "")
    # ISO 8601 → the time of day is what matters while watching a local run.
    if "T" in text:
        text = text.split("T", 1)[1].rstrip("Z")
    return f'<span class="muted">{_e(text)}</span>'


def _webhooks(items: list[dict[str, Any]]) -> str:
    rows = [
        (
            _time(w.get("time")),
            _e(w.get("source")) + (f" / {_e(w['name'])}" if w.get("name") else ""),
            _e(w.get("status")),
            _badge(str(w.get("outcome", ""))),
            _e(w.get("reason")),
            _webhook_jobs(w.get("jobs") or []) + _replies(w.get("replies") or []),
            "<br>".join(f"<code>{_e(e)}</code>" for e in w.get("events") or []),
        )
        for w in items
    ]
    table = _table(
        ("time", "source", "HTTP", "outcome", "reason", "jobs", "source events"), rows, "No webhooks yet."
    )
    return (
        f'<section id="webhooks"><h2>Webhooks <span class="count">{len(items)}</span></h2>{table}</section>'
    )


def _webhook_jobs(jobs: list[dict[str, Any]]) -> str:
    """The jobs a webhook produced, one badge each: target and where the job stands."""
    badges = (
        f'<span class="badge s-{_e(j.get("status"))}" title="{_e(j.get("mapping"))} {_e(j.get("key"))}">'
        f"{_e(j.get('target'))}: {_e(j.get('status'))}</span>"
        for j in jobs
    )
    return f'<span class="jobs">{"".join(badges)}</span>'


def _replies(messages: list[dict[str, Any]]) -> str:
    """What the person who clicked was shown (the replies posted to the click's response_url)."""
    lines = (
        f'<div class="reply">↳ {"ephemeral" if m.get("response_type") == "ephemeral" else "message"}: '
        f"{_e(m.get('text'))}</div>"
        for m in messages
    )
    return "".join(lines)


def _jobs(items: list[dict[str, Any]]) -> str:
    rows = [
        (
            _time(j.get("created")),
            _e(j.get("mapping")),
            _e(j.get("target")),
            f"<code>{_e(j.get('key'))}</code>",
            _badge(str(j.get("status", ""))),
            _e(j.get("attempts")),
            _e(j.get("detail")),
        )
        for j in items
    ]
    table = _table(
        ("created", "mapping", "target", "key", "status", "attempts", "detail"), rows, "No delivery jobs yet."
    )
    return f'<section id="jobs" class="wide"><h2>Jobs <span class="count">{len(items)}</span></h2>{table}</section>'


def _attempts(items: list[dict[str, Any]]) -> str:
    rows = [
        (
            _time(a.get("time")),
            _e(a.get("target")),
            f"<code>{_e(a.get('key'))}</code>",
            _e(a.get("attempt")),
            _badge(str(a.get("outcome", ""))),
            _e(a.get("detail")),
        )
        for a in items
    ]
    table = _table(
        ("time", "target", "key", "attempt", "outcome", "detail"), rows, "No delivery attempts yet."
    )
    return f'<section id="deliveries"><h2>Delivery attempts <span class="count">{len(items)}</span></h2>{table}</section>'


def _dead_letters(groups: dict[str, dict[str, Any]], csrf_token: str) -> str:
    parts = []
    total = 0
    for target, group in groups.items():
        count = int(group.get("count") or 0)
        total += count
        if not count:
            continue
        action = f"/_console/redrive?target={quote(target)}"
        button = (
            f'<form method="post" action="{_e(action)}" style="display:inline">'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf_token)}">'
            f'<button type="submit" name="redrive" value="{_e(target)}" id="redrive-{_e(target)}">'
            f"Redrive {_e(count)}</button></form>"
        )
        rows = [
            (
                f"<code>{_e(m.get('key'))}</code>",
                _e(m.get("mapping")),
                _e(m.get("status")),
                _e(m.get("code")),
                _e(m.get("reason")),
                _e(m.get("message")),
                _e(m.get("details")),
                _e(m.get("attempts")),
            )
            for m in group.get("messages") or []
        ]
        table = _table(
            ("key", "mapping", "status", "code", "reason", "message", "details", "attempts"), rows, ""
        )
        parts.append(
            f'<div class="dlq" id="dlq-{_e(target)}"><h3>{_e(target)} <span class="muted">{_e(count)}</span> {button}</h3>{table}</div>'
        )
    body = "".join(parts) or '<p class="empty">No dead letters.</p>'
    return (
        f'<section id="dead-letters"><h2>Dead letters <span class="count">{total}</span></h2>{body}</section>'
    )


def _paused(targets: dict[str, dict[str, Any]]) -> str:
    """A notice while a target is held back: nothing reaches it until the time shown."""
    if not targets:
        return ""
    rows = [(_e(t), _time(p.get("until")), _e(p.get("reason"))) for t, p in targets.items()]
    table = _table(("target", "paused until", "why (status, code)"), rows, "")
    return f'<section id="paused"><h2>Paused targets <span class="count">{len(rows)}</span></h2>{table}</section>'


def _mappings(loaded: dict[str, Any]) -> str:
    """The mappings the route function runs on, when they were loaded, and the last reload refused."""
    if not loaded:
        return ""
    names = loaded.get("names") or []
    listed = " · ".join(f"<code>{_e(n)}</code>" for n in names) or '<span class="empty">none</span>'
    since = f" · loaded {_time(loaded['loaded_at'])}" if loaded.get("loaded_at") else ""
    body = f'<p>{listed} <span class="muted">from <code>{_e(loaded.get("folder"))}</code>{since}</span></p>'
    errors = loaded.get("errors") or []
    if errors:
        items = "".join(f"<li><code>{_e(e)}</code></li>" for e in errors)
        kept = "still routing with the set above" if names else "no mapping is loaded"
        body += (
            f'<div id="mapping-errors"><h3><span class="badge s-error">reload refused</span> '
            f'{_time(loaded.get("failed_at"))} <span class="muted">{_e(kept)}</span></h3>'
            f"<ul>{items}</ul></div>"
        )
    return f'<section id="mappings"><h2>Mappings <span class="count">{len(names)}</span></h2>{body}</section>'


def _first(event: dict[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = event.get(name)
        if value not in (None, "", {}, []):
            return value
    return None


def _summary(event: dict[str, Any]) -> str:
    found = _first(event, _SUMMARY_FIELDS)
    if found is None:
        for value in event.values():
            if isinstance(value, dict) and (nested := _first(value, _SUMMARY_FIELDS)) is not None:
                found = nested
                break
    if found is None:
        # No prose field (HubSpot timeline events carry tokens): show the first nested values.
        for key, value in event.items():
            if isinstance(value, dict) and value:
                pairs = [f"{k}={v}" for k, v in value.items() if isinstance(v, str | int | float)][:4]
                found = f"{key}: " + ", ".join(pairs)
                break
    return "" if found is None else str(found)


def _timelines(sandboxes: dict[str, dict[str, Any]], timelines: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for target, events in timelines.items():
        info = sandboxes.get(target) or {}
        where = "real provider" if info.get("real") else "sandbox"
        rows = [
            (
                _time(_first(e, _TIME_FIELDS)) if isinstance(e, dict) else "",
                f"<code>{_e(_first(e, _ID_FIELDS))}</code>" if isinstance(e, dict) else "",
                _e(_summary(e)) if isinstance(e, dict) else "",
                f"<details><summary>body</summary><pre>{_e(json.dumps(e, indent=1, ensure_ascii=False))}</pre></details>",
            )
            for e in events
        ]
        table = _table(("time", "id", "summary", ""), rows, "Nothing stored yet.")
        parts.append(
            f'<div class="timeline" id="timeline-{_e(target)}"><h3>{_e(target)} '
            f'<span class="sandbox-url">{_e(where)} {_e(info.get("url"))} · {len(events)} events</span></h3>{table}</div>'
        )
    body = "".join(parts) or '<p class="empty">No sandboxes running.</p>'
    return f'<section id="timelines" class="wide"><h2>Timelines (newest first)</h2>{body}</section>'


def render(state: dict[str, Any], csrf_token: str = "") -> str:
    """The whole page for a console state (what `GET /_console/state.json` returns), its forms
    carrying `csrf_token`."""
    urls = state.get("webhook_urls") or {}
    webhook_urls = " · ".join(f"{_e(name)} <code>{_e(url)}</code>" for name, url in urls.items())
    sections = "\n".join(
        (
            _paused(state.get("paused") or {}),
            _mappings(state.get("mappings") or {}),
            _webhooks(state.get("webhooks") or []),
            _dead_letters(state.get("dead_letters") or {}, csrf_token),
            _jobs(state.get("jobs") or []),
            _timelines(state.get("sandboxes") or {}, state.get("timelines") or {}),
            _attempts(state.get("attempts") or []),
        )
    )
    return _template().substitute(
        webhook_urls=webhook_urls,
        sections=sections,
        refreshed=_e(f"updated {state.get('generated_at', '')}"),
        send_example=_e(state.get("send_example") or ""),
        csrf_token=_e(csrf_token),
    )
