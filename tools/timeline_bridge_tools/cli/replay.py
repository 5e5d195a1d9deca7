"""`bridge replay --since WHEN [--until WHEN] [--source S] [--type T] [--mapping M] [--dry-run]
[--rate N] [--json]`: put archived events back on the events queue so today's mappings route them
again (`timeline_bridge_tools.replay`); a job already delivered is not sent twice. `--dry-run` sends
nothing and counts, per mapping, the jobs that would be new, already delivered or skipped.
`--resume ID` carries on an interrupted replay. Against the `bridge dev` running in this folder, or
`--stack NAME`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from timeline_bridge_tools.cli.events import (
    add_deployment_arguments,
    add_window_arguments,
    current_mappings,
    deployment,
    event_filter,
)

FILTERS = ("since", "until", "source", "event_type", "mapping")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_window_arguments(parser, " (required, unless --resume)")
    parser.add_argument("--mapping", metavar="M", help="route the events through this mapping only")
    parser.add_argument("--dry-run", action="store_true", help="send nothing: count the jobs per mapping")
    parser.add_argument(
        "--no-enrich", action="store_true", help="dry run: do not run the mappings' enrich fetches"
    )
    parser.add_argument(
        "--rate", type=_rate, default=None, metavar="N", help="messages a second (default 50)"
    )
    parser.add_argument(
        "--resume", metavar="ID", help="carry on the interrupted replay ID (its window and filters)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_deployment_arguments(parser)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (messages a second, more than 0)")
    return rate


def run(args: argparse.Namespace) -> int:
    from timeline_bridge.errors import MappingLoadError

    from timeline_bridge_tools.history import History

    problem = _check(args)
    if problem:
        print(f"bridge replay: {problem}", file=sys.stderr)
        return 2
    try:
        found = deployment(args)
        mappings = current_mappings(args, required=bool(args.dry_run or args.mapping))
        history = History(found, mappings=mappings)
        if args.mapping and mappings.get(args.mapping) is None:
            known = ", ".join(sorted(m.name for m in mappings))
            raise ValueError(f"no mapping {args.mapping!r} in the mappings folder (there are: {known})")
        if args.dry_run:
            return _dry_run(history, mappings, args)
        return _replay(history, mappings, args)
    except MappingLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f"bridge replay: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # AWS errors: missing stack or bucket, no credentials, endpoint down
        print(f"bridge replay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace) -> str | None:
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in FILTERS if getattr(args, name, None)]
        if given:
            return f"--resume replays the window and filters it was started with ({', '.join(given)} given)"
        if args.dry_run:
            return "--resume and --dry-run: a dry run has nothing to resume"
        return None
    if not args.since:
        return "give --since WHEN (10m, 2h, 3d or an ISO 8601 time), or --resume ID"
    return None


def _dry_run(history: Any, mappings: Any, args: argparse.Namespace) -> int:
    from timeline_bridge_tools import replay

    where = event_filter(args, args.since)
    rendering = [mappings.get(args.mapping)] if args.mapping else list(mappings)
    enrich, started = _enrichment(args, any(m.enrich for m in rendering))
    try:
        report = replay.dry_run(history, where, mappings, mapping=args.mapping, enrich=enrich)
    finally:
        for sandbox in started.values():
            sandbox.stop()
    if args.json:
        print(json.dumps({"dry_run": True, **report.to_dict()}, indent=2))
        return 0
    window = where.window
    print(
        f"dry run: {report.events} archived event(s) received {window.since:%Y-%m-%d %H:%M:%S}Z"
        f" to {window.until:%Y-%m-%d %H:%M:%S}Z; nothing sent"
    )
    if report.mappings:
        width = max(len("mapping"), *(len(name) for name in report.mappings))
        print(f"  {'mapping'.ljust(width)}  {'new':>6} {'delivered':>9} {'skipped':>7} {'errors':>6}")
        for name, c in sorted(report.mappings.items()):
            print(f"  {name.ljust(width)}  {c.new:>6} {c.delivered:>9} {c.skipped:>7} {c.errors:>6}")
    else:
        print("  no mapping applies to them")
    for error in report.errors:
        print(f"  {error}")
    return 0


def _enrichment(args: argparse.Namespace, needed: bool) -> tuple[Any, dict[str, Any]]:
    """The enrich hook of a dry run, as `bridge map` runs it: the sandboxes of the `bridge dev`
    running here, or the APIs configured in the environment (with neither, locally, the seeded
    sandboxes, started for this run: the second value)."""
    from timeline_bridge.mapping.engine import no_enrichment

    from timeline_bridge_tools.cli import map as map_command

    if args.no_enrich or not needed:
        return no_enrichment, {}
    started: dict[str, Any] = {}
    if args.stack:
        if not map_command.enrichment_configured():
            print(
                "dry run without enrichment (no HUBSPOT_ACCESS_TOKEN / SLACK_BOT_TOKEN / STORA_TOKEN set):"
                " a mapping that needs it may count as an error",
                file=sys.stderr,
            )
            return no_enrichment, {}
    elif not (map_command.use_bridge_dev() or map_command.enrichment_configured()):
        started = map_command.start_enrichment_sandboxes()
    from timeline_bridge.enrichment import Enrichment
    from timeline_bridge.wiring import Dependencies

    return Enrichment.of(Dependencies.from_environ()), started


def _replay(history: Any, mappings: Any, args: argparse.Namespace) -> int:
    from timeline_bridge_tools import replay

    if args.resume:
        progress = replay.Progress.load(args.resume)
    else:
        window = event_filter(args, args.since).window
        progress = replay.Progress(
            id=replay.new_id(),
            since=window.since.isoformat(),
            until=window.until.isoformat(),
            source=args.source,
            event_type=args.event_type,
            mapping=args.mapping,
        )
        progress.save()
    chosen = mappings.get(progress.mapping) if mappings is not None and progress.mapping else None
    tty = sys.stderr.isatty() and not args.json

    def show(report: Any) -> None:
        if tty:
            print(
                f"\rreplay {report.id}: {report.objects_done}/{report.objects} archive objects,"
                f" {report.sent} events sent",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        report = replay.run(
            history,
            progress,
            rate=args.rate or replay.DEFAULT_RATE,
            source_of_mapping=chosen.source if chosen else None,
            on_progress=show,
        )
    except KeyboardInterrupt:
        if tty:
            print(file=sys.stderr)
        print(
            f"replay {progress.id} interrupted: resume with `bridge replay --resume {progress.id}`",
            file=sys.stderr,
        )
        return 130
    if tty:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    else:
        print(
            f"replay {report.id}: {report.sent} event(s) sent from {report.objects_done} of"
            f" {report.objects} archive object(s)"
            + (f", through {progress.mapping} only" if progress.mapping else "")
        )
    if report.error:
        print(f"replay stopped: {report.error}", file=sys.stderr)
        print(f"resume with `bridge replay --resume {report.id}`", file=sys.stderr)
        return 1
    return 0
