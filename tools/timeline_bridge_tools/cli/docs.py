"""`bridge docs targets [--write | --check] [--readme FILE]`: the per-target field tables of
mappings/README.md, generated from the target schemas (`timeline_bridge_tools.target_docs`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

README = Path("mappings/README.md")

EXAMPLES = """examples:
  bridge docs targets                 print the tables (Markdown)
  bridge docs targets --write         rewrite them in mappings/README.md after a target schema changed
  bridge docs targets --check         exit 1 when mappings/README.md is out of date
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("what", choices=["targets"], help="targets: the field tables of every target")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the tables in the README")
    action.add_argument("--check", action="store_true", help="exit 1 when the README's tables differ")
    parser.add_argument("--readme", type=Path, default=README, help=f"the README holding them ({README})")


def run(args: argparse.Namespace) -> int:
    from timeline_bridge_tools import target_docs

    if not (args.write or args.check):
        print(target_docs.markdown())
        return 0
    try:
        text = args.readme.read_text()
        updated = target_docs.spliced(text)
    except (OSError, ValueError) as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(
                f"{args.readme}: the target tables differ from the schemas: run bridge docs targets --write",
                file=sys.stderr,
            )
            return 1
        print(f"{args.readme}: the target tables match the schemas")
        return 0
    changed = target_docs.write(args.readme)
    print(f"{args.readme}: {'tables rewritten' if changed else 'already up to date'}")
    return 0
