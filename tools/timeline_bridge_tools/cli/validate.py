"""`bridge validate [PATH…]`: check mapping files; every error as `file:line: field: reason`."""

from __future__ import annotations

import argparse
import sys

from timeline_bridge.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="mapping files or directories (default: BRIDGE_MAPPINGS_DIR, i.e. mappings/)",
    )


def run(args: argparse.Namespace) -> int:
    from timeline_bridge.mapping.loader import check_paths

    settings = Settings.from_environ()
    paths = args.paths or [settings.mappings_dir]
    mappings, errors, files = check_paths(paths, settings=settings)
    for error in errors:
        print(error)
    if errors:
        bad = len({e.mapping_file for e in errors})
        print(f"{len(errors)} error(s) in {bad} of {len(files)} mapping file(s)", file=sys.stderr)
        return 1
    if not files:
        print(f"no mapping files found in {', '.join(str(p) for p in paths)}", file=sys.stderr)
        return 1
    expressions = sum(1 for _ in mappings)
    print(f"{expressions} mapping file(s) valid: {', '.join(m.name for m in mappings)}")
    return 0
