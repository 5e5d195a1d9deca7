"""`bridge identities import FILE.csv` and `bridge identities list`: the identity map that turns
source keys (an email) into a target's own ids (a Stora `con_…`).

The CSV has a header row with the columns `namespace,key,target_id`. Every row is checked before
anything is written: a file with one bad row changes nothing (`--skip-invalid` imports the good
rows anyway). The table is `--table`, else `IDENTITY_TABLE`, else the `IdentityTableName` output
of `--stack`, else the table of the `bridge dev` running from this folder.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import TextIO

from timeline_bridge.enrichment.identity import Identity, IdentityTable, check_entry, normalize_key

COLUMNS = ("namespace", "key", "target_id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="load namespace,key,target_id rows from a CSV file")
    imp.add_argument("file", type=Path, help="CSV file with the header namespace,key,target_id")
    imp.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    imp.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are not")
    _table_arguments(imp)
    lst = sub.add_parser("list", help="print the identity map as CSV")
    lst.add_argument("--namespace", help="only this namespace (e.g. stora_contact)")
    _table_arguments(lst)


def _table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="DynamoDB table name (default: $IDENTITY_TABLE)")
    parser.add_argument("--stack", help="a deployed stack: use its IdentityTableName output")


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        return _import(args, sys.stdout, sys.stderr)
    return _list(args, sys.stdout, sys.stderr)


def read_rows(path: Path) -> tuple[list[Identity], list[str], int]:
    """(valid entries, `file:line: reason` errors, duplicate keys) of a CSV file. A key given twice
    in one namespace keeps its last row, as the table would."""
    errors: list[str] = []
    entries: dict[tuple[str, str], Identity] = {}
    duplicates = 0
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            return (
                [],
                [f"{path}:1: header must name the columns {','.join(COLUMNS)} (missing {','.join(missing)})"],
                0,
            )
        for row in reader:
            line = reader.line_num
            namespace, key, target_id = ((row.get(c) or "").strip() for c in COLUMNS)
            if not (namespace or key or target_id):
                continue  # blank line
            problem = check_entry(namespace, key, target_id)
            if problem:
                errors.append(f"{path}:{line}: {problem}")
                continue
            ident = (namespace, normalize_key(key))
            duplicates += ident in entries
            entries[ident] = Identity(namespace, key, target_id)
    return list(entries.values()), errors, duplicates


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=err)
        return 2
    entries, errors, duplicates = read_rows(args.file)
    for line in errors:
        print(line, file=err)
    if errors and not args.skip_invalid:
        print(f"{len(errors)} invalid row(s): nothing imported (fix them, or pass --skip-invalid)", file=err)
        return 1
    namespaces = sorted({e.namespace for e in entries})
    summary = f"{len(entries)} identities ({', '.join(namespaces) or 'none'}), {len(errors)} invalid, {duplicates} duplicate"
    if args.dry_run:
        print(f"dry run: would import {summary}", file=out)
        return 1 if errors else 0
    table = _table(args, err)
    if table is None:
        return 2
    written = table.put_many(entries)
    print(f"imported {written} into {table.table_name}: {summary}", file=out)
    return 1 if errors else 0


def _list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    table = _table(args, err)
    if table is None:
        return 2
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = sorted(table.scan(args.namespace), key=lambda e: (e.namespace, e.key))
    for entry in rows:
        writer.writerow((entry.namespace, entry.key, entry.target_id))
    print(f"{len(rows)} identities", file=err)
    return 0


def _table(args: argparse.Namespace, err: TextIO) -> IdentityTable | None:
    name = args.table or os.environ.get("IDENTITY_TABLE", "").strip()
    if not name and args.stack:
        name = _stack_output(args.stack, "IdentityTableName")
    if not name and not args.stack:
        name = _local_table()
    if not name:
        print(
            "no identity table: pass --table NAME or --stack NAME, set IDENTITY_TABLE, or start bridge dev",
            file=err,
        )
        return None
    from timeline_bridge.aws import AwsClients

    return IdentityTable(name, AwsClients())


def _local_table() -> str:
    """The identity table of the `bridge dev` running from this folder ("" when none runs)."""
    from timeline_bridge_tools.local.state import apply_env, read_state

    state = read_state()
    if not state:
        return ""
    apply_env(state)  # the local AWS endpoint and its dummy credentials
    # bridge dev names each table after its logical id in template.yaml.
    return str((state.get("env") or {}).get("IDENTITY_TABLE") or "IdentityTable")


def _stack_output(stack: str, key: str) -> str:
    from timeline_bridge import aws

    answer = aws.new_client("cloudformation").describe_stacks(StackName=stack)
    for output in answer["Stacks"][0].get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    return ""
