"""The `bridge` command. Each subcommand lives in its own module and registers its parser there;
modules are imported only when their command runs, so `bridge --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from timeline_bridge.config import load_dotenv

# command name → module in timeline_bridge_tools.cli (each defines `add_arguments(parser)` and `run(args)`)
COMMANDS = {
    "dev": ("dev", "run the whole pipeline on this machine"),
    "send": ("send", "sign a sample event as the real sender would and POST it"),
    "validate": ("validate", "validate mapping files and their cases files (file:line: field: reason)"),
    "test": ("cases", "run the mappings' cases: pass or fail per case, with the fields that differ"),
    "map": ("map", "dry run: print the target requests an event would produce"),
    "dlq": ("dlq", "inspect and redrive dead letters, locally or on a deployed stack"),
    "events": ("events", "list archived events and show what became of each"),
    "replay": ("replay", "put archived events back through today's mappings"),
    "console": ("console", "serve the event history page on 127.0.0.1 against a deployed stack"),
    "identities": ("identities", "manage the identity map used to resolve target ids"),
    "docs": ("docs", "generate the target field tables of mappings/README.md from the target schemas"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="timeline-bridge: webhooks to customer timelines",
        epilog="`bridge COMMAND --help` shows a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            importlib.import_module(f"timeline_bridge_tools.cli.{module}").add_arguments(cmd)
    return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("timeline-bridge")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    load_dotenv()
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        # `bridge` alone: the usage and the commands, as a user new to it needs them.
        parser.print_help()
        return 2
    module = importlib.import_module(f"timeline_bridge_tools.cli.{COMMANDS[args.command][0]}")
    try:
        return int(module.run(args) or 0)
    except BrokenPipeError:
        # `bridge map ... | head` closed the pipe: not an error. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
