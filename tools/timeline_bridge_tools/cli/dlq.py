"""`bridge dlq list|show|redrive [--target T] [--stack NAME] [--limit N]`: inspect and redrive dead
letters. Without `--stack` it finds a running `bridge dev` in this folder (else the queue URLs in
the environment); with `--stack` it reads the queue URLs from the deployed stack's outputs.

`list` and `redrive` take a filter (`--mapping NAME`, `--code CODE`, `--status N`, `--since WHEN`);
`redrive --dry-run` counts what would move and moves nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from timeline_bridge_tools.dlq import QUEUE_NAMES, DeadLetterFilter, parse_since

COLUMNS = (
    ("key", 18),
    ("mapping", 34),
    ("reason", 19),
    ("status", 6),
    ("provider_code", 24),
    ("attempts", 8),
    ("provider_message", 0),  # with the provider's details after it: they say what to fix
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show", "redrive"), help="what to do")
    parser.add_argument("ident", nargs="?", metavar="ID", help="show: a message id or job key (or a prefix)")
    parser.add_argument("--target", choices=QUEUE_NAMES, help="one queue (default: every target and events)")
    parser.add_argument("--stack", metavar="NAME", help="a deployed stack (queue URLs from its outputs)")
    parser.add_argument("--region", help="AWS region of --stack (default: the usual AWS settings)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N messages per queue")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    only = parser.add_argument_group("filter (list, redrive)")
    only.add_argument("--mapping", metavar="NAME", help="only dead letters of this mapping")
    only.add_argument(
        "--code", metavar="CODE", help="only this provider error code or reason (e.g. invalid_content)"
    )
    only.add_argument("--status", type=_status, metavar="N", help="only this provider HTTP status")
    only.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="only dead-lettered at or after WHEN: an ISO 8601 time, or a duration back from now (30m, 2h, 7d)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="redrive: count what would move per queue, move nothing"
    )


def _status(text: str) -> int:
    try:
        status = int(text)
    except ValueError:
        status = 0
    if not 100 <= status <= 599:
        raise argparse.ArgumentTypeError(f"{text!r} is not an HTTP status (100-599)")
    return status


def _since(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter(mapping=args.mapping, code=args.code, status=args.status, since=args.since)


def _pairs(args: argparse.Namespace) -> dict[str, Any]:
    from timeline_bridge_tools import dlq

    if args.stack:
        if args.region:
            os.environ["AWS_DEFAULT_REGION"] = args.region  # read by the clients made from here on
        return dlq.stack_queues(args.stack)
    return dlq.local_queues()


def _cell(value: Any, width: int) -> str:
    text = "-" if value is None or value == "" else str(value)
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width) if width else text


def _value(summary: dict[str, Any], column: str) -> Any:
    if column == "provider_message" and summary.get("details"):
        return " · ".join(str(v) for v in (summary.get(column), summary["details"]) if v)
    return summary.get(column)


def run(args: argparse.Namespace) -> int:
    from timeline_bridge_tools import dlq

    if args.action == "show" and not _filter(args).everything:
        print(
            "bridge dlq show: --mapping, --code, --status and --since apply to list and redrive",
            file=sys.stderr,
        )
        return 2
    if args.dry_run and args.action != "redrive":
        print(f"bridge dlq {args.action}: --dry-run applies to redrive", file=sys.stderr)
        return 2
    try:
        pairs = _pairs(args)
        selected = dlq.select(pairs, args.target)
    except (RuntimeError, ValueError) as exc:
        print(f"bridge dlq: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # AWS errors: missing stack, no credentials, endpoint down
        print(f"bridge dlq: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    if args.action == "list":
        return _list(dlq, selected, args)
    if args.action == "show":
        if not args.ident:
            print("bridge dlq show: give a message id or job key", file=sys.stderr)
            return 2
        letter = dlq.find(selected, args.ident, limit=args.limit or 1000)
        if letter is None:
            print(f"bridge dlq: no dead letter {args.ident!r}", file=sys.stderr)
            return 1
        print(json.dumps(letter.full(), indent=2, ensure_ascii=False))
        return 0
    return _redrive(dlq, selected, pairs, args)


def _list(dlq: Any, selected: list[Any], args: argparse.Namespace) -> int:
    limit = args.limit or 100
    where = _filter(args)
    filtering = not where.everything
    everything = []
    for pair in selected:
        depth = dlq.depth(pair)
        letters = dlq.peek(pair, limit=limit, where=where if filtering else None) if depth else []
        entry: dict[str, Any] = {"queue": pair.name, "count": depth}
        if filtering:
            entry["matching"] = len(letters)
        entry["dead_letters"] = [dl.summary() for dl in letters]
        everything.append(entry)
    if args.json:
        print(json.dumps(everything, indent=2, ensure_ascii=False))
        return 0
    for entry in everything:
        head = f"{entry['queue']}: {entry['count']} dead letter(s)"
        if filtering:
            head += f", {'at least ' if entry['matching'] >= limit else ''}{entry['matching']} matching"
        print(head)
        if entry["dead_letters"]:
            print("  " + " ".join(_cell(name, width) for name, width in COLUMNS))
            for summary in entry["dead_letters"]:
                print("  " + " ".join(_cell(_value(summary, name), width) for name, width in COLUMNS))
        if filtering:
            if entry["matching"] >= limit:
                print("  … maybe more matching (--limit N)")
        elif entry["count"] > len(entry["dead_letters"]):
            print(f"  … {entry['count'] - len(entry['dead_letters'])} more (--limit N)")
    return 0


def _redrive(dlq: Any, selected: list[Any], pairs: dict[str, Any], args: argparse.Namespace) -> int:
    where = _filter(args)
    filtering = not where.everything
    reports = [
        dlq.redrive(pair, pairs, limit=args.limit, where=where if filtering else None, dry_run=args.dry_run)
        for pair in selected
    ]
    if args.json:
        print(json.dumps([r.__dict__ for r in reports], indent=2))
    else:
        moved = "would move" if args.dry_run else "moved"
        for report in reports:
            line = f"{report.queue}: {moved} {report.moved}"
            if report.to_events:
                line += f" ({report.to_events} back through routing)"
            line += f", failed {report.failed}"
            if filtering:
                line += f", skipped {report.skipped} (not matching)"
            print(line)
            for error in report.errors[:10]:
                print(f"  {error}")
        total = f"total: {moved} {sum(r.moved for r in reports)}, failed {sum(r.failed for r in reports)}"
        if filtering:
            total += f", skipped {sum(r.skipped for r in reports)}"
        print(total)
        if args.dry_run:
            print("dry run: nothing moved; every dead letter is still in its DLQ")
    return 1 if any(r.failed for r in reports) else 0
