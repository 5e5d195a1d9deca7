"""`bridge events list|show`: what became of the events the bridge accepted, from its event archive,
delivered-records and DLQs (`timeline_bridge_tools.history`). Without `--stack` it finds a running
`bridge dev` in this folder (else the environment); with `--stack` it reads the deployed stack's
outputs.

    bridge events list [--since 2h] [--until WHEN] [--source S] [--type T] [--status STATUS] [--json]
    bridge events show ID|KEY [--since 7d] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from timeline_bridge_tools.history import STATUSES

LIST_SINCE = "24h"
SHOW_SINCE = "7d"
COLUMNS = (
    ("received_at", 24),
    ("source", 16),
    ("event_type", 22),
    ("event_id", 28),
    ("status", 9),
    ("jobs", 0),
)


def add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", metavar="NAME", help="a deployed stack (resources from its outputs)")
    parser.add_argument("--region", help="AWS region of --stack (default: the usual AWS settings)")
    parser.add_argument("--mappings", metavar="DIR", help="mapping files or directory (default: mappings/)")


def add_window_arguments(parser: argparse.ArgumentParser, since_default: str) -> None:
    when = "an ISO 8601 time, or a duration back from now (10m, 2h, 3d)"
    parser.add_argument("--since", metavar="WHEN", help=f"received at or after WHEN: {when}{since_default}")
    parser.add_argument("--until", metavar="WHEN", help=f"received at or before WHEN: {when} (default: now)")
    parser.add_argument("--source", metavar="S", help="only events of this source (hubspot, slack, ...)")
    parser.add_argument("--type", dest="event_type", metavar="T", help="only events of this type")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show"), help="what to do")
    parser.add_argument("ident", nargs="?", metavar="ID|KEY", help="show: a source event id or a job key")
    add_window_arguments(parser, f" (default: {LIST_SINCE} for list, {SHOW_SINCE} for show)")
    parser.add_argument("--status", choices=STATUSES, help="list: only events in this state")
    parser.add_argument("--limit", type=int, default=100, metavar="N", help="list: at most N events (newest)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_deployment_arguments(parser)


def deployment(args: argparse.Namespace) -> Any:
    """The stack `--stack` names, else the `bridge dev` running here (else the environment)."""
    from timeline_bridge_tools import history

    if args.stack:
        if args.region:
            os.environ["AWS_DEFAULT_REGION"] = args.region  # read by the clients made from here on
        return history.stack_deployment(args.stack)
    return history.local_deployment()


def current_mappings(args: argparse.Namespace, *, required: bool = False) -> Any:
    """Today's mapping set from the project folder; None (and a note) when it does not load,
    unless `required`."""
    from timeline_bridge.config import Settings
    from timeline_bridge.errors import MappingLoadError
    from timeline_bridge.mapping.loader import load_mappings

    settings = Settings.from_environ()
    try:
        return load_mappings(args.mappings or settings.mappings_dir, settings=settings)
    except MappingLoadError as exc:
        if required:
            raise
        print(
            f"mappings not loaded ({len(exc.errors)} error(s)): jobs of replays through mappings",
            file=sys.stderr,
        )
        print("  the archive does not name are not shown (bridge validate says why)", file=sys.stderr)
        return None


def event_filter(args: argparse.Namespace, default_since: str) -> Any:
    from timeline_bridge_tools.history import EventFilter, Window

    window = Window.of(args.since or default_since, args.until)
    return EventFilter(window, args.source, args.event_type)


def run(args: argparse.Namespace) -> int:
    from timeline_bridge_tools.history import History

    if args.action == "show" and not args.ident:
        print("bridge events show: give a source event id or a job key", file=sys.stderr)
        return 2
    try:
        where = event_filter(args, LIST_SINCE if args.action == "list" else SHOW_SINCE)
        found = History(deployment(args), mappings=current_mappings(args))
        if args.action == "list":
            events = found.events(where, status=args.status, limit=args.limit)
        else:
            events = found.find(args.ident, where)
    except (RuntimeError, ValueError) as exc:
        print(f"bridge events: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # AWS errors: missing stack or bucket, no credentials, endpoint down
        print(f"bridge events: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.action == "show" and not events:
        print(
            f"bridge events: no event or job {args.ident!r} received since {where.window.since:%Y-%m-%d %H:%M}Z"
            " (--since WHEN looks further back)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2, ensure_ascii=False))
    elif args.action == "list":
        _table(events, args.limit)
    else:
        for event in events:
            _show(event)
    return 0


def _cell(value: Any, width: int) -> str:
    text = "-" if value is None or value == "" else str(value)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width) if width else text


def _table(events: list[Any], limit: int) -> None:
    if not events:
        print("no events")
        return
    print(" ".join(_cell(name.replace("_", " "), width) for name, width in COLUMNS))
    for event in events:
        envelope = event.envelope
        row = {
            "received_at": envelope.received_at,
            "source": envelope.source if envelope.name is None else f"{envelope.source}/{envelope.name}",
            "event_type": envelope.event_type,
            "event_id": envelope.event_id,
            "status": event.status,
            "jobs": ", ".join(f"{j.mapping}: {j.state}" for j in event.jobs),
        }
        print(" ".join(_cell(row[name], width) for name, width in COLUMNS))
    if len(events) >= limit:
        print("… maybe more (--limit N, or a narrower --since/--until)")


def _show(event: Any) -> None:
    envelope = event.envelope
    source = envelope.source if envelope.name is None else f"{envelope.source}/{envelope.name}"
    print(f"{source} {envelope.event_type} {envelope.event_id}: {event.status}")
    print(f"  received {envelope.received_at}, routed {event.routed_at}")
    print(f"  archived in {event.archive_key}")
    if not event.jobs:
        print("  no mapping matched it")
    for job in event.jobs:
        print(f"  {job.mapping} → {job.target}  key {job.key}")
        if job.state == "delivered":
            print(
                f"    delivered at {_cell(job.delivered_at, 0)}, provider id {_cell(job.provider_id, 0)}, "
                f"status {_cell(job.status, 0)}, attempts {_cell(job.attempts, 0)}"
            )
        elif job.state == "dead":
            reason = job.reason or {}
            detail = reason.get("message") or reason.get("provider_message") or reason.get("detail")
            print(
                f"    dead-lettered ({reason.get('stage') or '-'} stage) at {_cell(job.dead_lettered_at, 0)}: "
                f"{reason.get('reason') or '-'}, status {_cell(job.status, 0)}, attempts {_cell(job.attempts, 0)}"
            )
            if detail:
                print(f"    {detail}")
        else:
            print(
                "    pending"
                + (": a worker is delivering it now" if job.in_progress else ": queued or retrying")
            )
    print("  event:")
    for line in json.dumps(envelope.event, indent=2, ensure_ascii=False).splitlines():
        print(f"    {line}")
