"""`bridge console --stack NAME [--region R] [--port 8765] [--allow-actions]`: the console's event
history page (`timeline_bridge_tools.local.events_page`) on 127.0.0.1 against a deployed stack: its
archived events, what became of each, found as `bridge events --stack` finds them. Read-only unless
`--allow-actions`, which adds the Replay action (with this run's own token). Ctrl-C stops it.
Under `bridge dev` the same page is part of its console."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from timeline_bridge_tools.cli.events import add_deployment_arguments, current_mappings, deployment

HOST = "127.0.0.1"  # loopback only: the page reads a deployed stack with this machine's credentials
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_arguments(parser)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, metavar="N", help=f"port on {HOST} (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--allow-actions", action="store_true", help="offer the Replay action (default: read-only)"
    )


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """The server (bound, not started) and its page, for `args`."""
    from timeline_bridge import aws

    from timeline_bridge_tools.history import History
    from timeline_bridge_tools.local.events_page import EventsPage, replay_action
    from timeline_bridge_tools.local.function_url import HttpRequest, HttpResponse, LocalHttpServer

    found = deployment(args)
    mappings = current_mappings(args)
    # One set of clients for every request (boto3 clients are thread-safe); a History per request.
    clients = {name: aws.new_client(name) for name in ("s3", "sqs", "dynamodb")}

    def history() -> History:
        return History(found, mappings=mappings, **clients)

    replay = replay_action(history, lambda: mappings, enrich_factory=_enrichment(args, mappings))
    page = EventsPage(
        history,
        replay=replay if args.allow_actions else None,
        csrf_token=secrets.token_urlsafe(32),
        port=args.port,
        label=f"stack {args.stack}",
        console_link=False,
    )

    def app(request: HttpRequest) -> HttpResponse:
        if page.handles(request.path):
            return page.handle(request)
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return HttpResponse(303, b"", [("location", "/events")])
        return HttpResponse.json(404, {"message": "Not Found"})

    server = LocalHttpServer(HOST, args.port, app)
    page.port = server.port  # --port 0: the port the system chose
    return server, page


def _enrichment(args: argparse.Namespace, mappings: Any) -> Any:
    """A dry run's enrich hook, as `bridge replay --stack --dry-run` makes it."""
    from timeline_bridge_tools.cli.replay import _enrichment as replay_enrichment

    def make() -> Any:
        needed = mappings is not None and any(m.enrich for m in mappings)
        return replay_enrichment(argparse.Namespace(no_enrich=False, stack=args.stack), needed)[0]

    return make


def run(args: argparse.Namespace) -> int:
    if not args.stack:
        print(
            "bridge console: give --stack NAME (under `bridge dev` the event history is at its console's /events)",
            file=sys.stderr,
        )
        return 2
    try:
        server, page = build(args)
    except OSError as exc:
        print(f"bridge console: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as exc:
        print(f"bridge console: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # AWS errors: missing stack, no credentials, endpoint down
        print(f"bridge console: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    mode = "Replay allowed" if page.replay else "read-only (--allow-actions offers Replay)"
    print(f"event history of stack {args.stack}: http://{HOST}:{server.port}/events  ({mode}; Ctrl-C stops)")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        server.server_close()
    return 0
