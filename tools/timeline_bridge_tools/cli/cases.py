"""`bridge test [PATH…]`: run the cases of mappings (`<name>.cases.yaml` beside `<name>.yaml`), as
the project's tests do, in seconds. Each case passes or fails with the fields that differ; the exit
status is non-zero when any case fails, a mapping does not load or a cases file is malformed."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from timeline_bridge.config import Settings

EXAMPLES = """examples:
  bridge test                                         every mapping under mappings/
  bridge test mappings/hubspot-deal-stage-to-stora.yaml
  bridge test mappings/hubspot-deal-stage-to-stora.cases.yaml   the same, named by its cases file

A failure names the cases file, the case's line and name, and each field that differs:
  FAIL mappings/x.cases.yaml:12: the sample deal
    body differs from `output`
    variables.new_state: got "Qualified", expected "Negotiation"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="mapping files, cases files or directories (default: BRIDGE_MAPPINGS_DIR, i.e. mappings/)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print failures only")


def mapping_paths(paths: list[str]) -> list[Path]:
    """A cases file names its mapping: `x.cases.yaml` → `x.yaml`."""
    out = []
    for raw in paths:
        path = Path(raw)
        name = path.name
        for suffix in (".cases.yaml", ".cases.yml"):
            if name.endswith(suffix):
                path = path.with_name(name[: -len(suffix)] + ".yaml")
        out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    from timeline_bridge.mapping.loader import check_paths, display_path

    from timeline_bridge_tools.mapping.cases import (
        CaseFailure,
        case_envelope,
        cases_path,
        load_cases,
        run_case,
        unresolved_paths,
    )
    from timeline_bridge_tools.mapping.samples import SampleError

    started = time.monotonic()
    settings = Settings.from_environ()
    paths = mapping_paths(args.paths) if args.paths else [Path(settings.mappings_dir)]
    mappings, errors, files = check_paths(paths, settings=settings)
    for error in errors:
        print(error)
    if not files:
        print(f"no mapping files found in {', '.join(str(p) for p in paths)}", file=sys.stderr)
        return 1
    root = Path.cwd()  # case inputs name samples relative to the project folder
    passed = failed = 0
    broken = len({e.mapping_file for e in errors})
    for mapping in mappings:
        cases_file = cases_path(Path(mapping.file))
        shown = display_path(cases_file)
        if not cases_file.exists():
            print(f"FAIL {display_path(Path(mapping.file))}: no cases file ({cases_file.name})")
            broken += 1
            continue
        try:
            cases = load_cases(cases_file)
        except ValueError as exc:
            print(f"FAIL {exc}")
            broken += 1
            continue
        if not cases:
            print(f"FAIL {shown}: no cases")
            broken += 1
            continue
        for case in cases:
            where = f"{shown}:{case.line}" if case.line else shown
            try:
                run_case(case, mapping, root)
            except (CaseFailure, SampleError) as exc:
                failed += 1
                print(f"FAIL {where}: {case.name}")
                for line in str(exc).splitlines():
                    print(f"  {line.strip()}")
                continue
            passed += 1
            if not args.quiet:
                print(f"ok   {where}: {case.name}")
        inputs = []
        for case in cases:
            with contextlib.suppress(CaseFailure, SampleError):  # reported above
                inputs.append(case_envelope(case, mapping, root))
        for warning in unresolved_paths(mapping, inputs):
            print(f"warning: {warning}")
    seconds = time.monotonic() - started
    summary = f"{passed} passed, {failed} failed in {len(files)} mapping file(s) ({seconds:.1f} s)"
    if broken:
        summary += f"; {broken} mapping or cases file(s) could not be run"
    print(summary, file=sys.stderr)
    return 1 if failed or broken else 0
