"""`bridge validate [PATH…]`: check mapping files and the cases files beside them; every error as
`file:line: field: reason`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timeline_bridge.config import Settings

EXAMPLES = """examples:
  bridge validate                                  every mapping under mappings/ and its cases file
  bridge validate mappings/pipedrive-deal-stage-to-stora.yaml
  bridge test                                      then run the cases
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
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
    cases_errors = check_cases_files(files)
    for cases_error in cases_errors:
        print(cases_error)
    if errors or cases_errors:
        bad = len({e.mapping_file for e in errors})
        print(
            f"{len(errors)} error(s) in {bad} of {len(files)} mapping file(s), "
            f"{len(cases_errors)} malformed cases file(s)",
            file=sys.stderr,
        )
        return 1
    if not files:
        print(f"no mapping files found in {', '.join(str(p) for p in paths)}", file=sys.stderr)
        return 1
    expressions = sum(1 for _ in mappings)
    print(f"{expressions} mapping file(s) valid: {', '.join(m.name for m in mappings)}")
    return 0


def check_cases_files(files: list[Path]) -> list[ValueError]:
    """The first problem of each cases file beside `files` (a mapping without one is `bridge test`'s
    to report: validate checks what is there)."""
    from timeline_bridge_tools.mapping.cases import cases_path, load_cases

    problems = []
    for path in files:
        cases_file = cases_path(path)
        if not cases_file.is_file():
            continue
        try:
            load_cases(cases_file)
        except ValueError as exc:
            problems.append(exc)
    return problems
