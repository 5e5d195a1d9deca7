"""Loading mapping files: safe YAML with line numbers, JSON Schema validation, compilation.

Every problem in a file is reported at once, each as a MappingError with `file:line`, the
field and the reason, so `bridge validate` and a cold start say everything that is wrong.

Mappings are checked for one function's settings (they choose the contract of a body naming
none: HUBSPOT_TIMELINE_API); without them, the settings parsed from this process's environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from timeline_bridge.config import Settings
from timeline_bridge.errors import MappingError, MappingLoadError
from timeline_bridge.mapping.contracts import mapping_schema_for
from timeline_bridge.mapping.engine import Mapping, MappingSet, compile_mapping, shorten
from timeline_bridge.mapping.yaml_lines import (
    AnchorError,
    DuplicateKeyError,
    Path_,
    dotted,
    line_of,
    load_with_lines,
)
from timeline_bridge.target_registry import target_names

MAPPING_SUFFIXES = (".yaml", ".yml")
CASES_SUFFIXES = (".cases.yaml", ".cases.yml")


def is_mapping_file(path: Path) -> bool:
    name = path.name
    return name.endswith(MAPPING_SUFFIXES) and not name.endswith(CASES_SUFFIXES) and not name.startswith(".")


def mapping_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus every `*.yaml`/`*.yml` (not `*.cases.yaml`) under the directories."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_mapping_file(p)))
        else:
            found.append(path)
    return found


def display_path(path: Path) -> str:
    """How a file is named in errors: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _schema_validator() -> Any:
    from timeline_bridge.sources import source_names

    # Keyed on the registered names: a source or target registered in-process gets its own schema.
    return _schema_validator_for(target_names(), source_names())


@cache
def _schema_validator_for(targets: tuple[str, ...], sources: tuple[str, ...]) -> Any:
    from jsonschema import Draft202012Validator  # lazy: only the route stage and the CLI load mappings

    # The schema itself is checked against the 2020-12 meta-schema by the tests, not at each start.
    return Draft202012Validator(mapping_schema_for(targets, sources), format_checker=None)


def _json_keys(value: Any) -> Any:
    """Mapping keys as JSON has them: strings (YAML allows `1:` or `true:` as keys)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, bool):
                key = "true" if key else "false"
            elif key is None:
                key = "null"
            out[str(key)] = _json_keys(item)
        return out
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


def check_text(
    text: str, mapping_file: str, *, settings: Settings | None = None
) -> tuple[Mapping | None, list[MappingError]]:
    """Parse, validate and compile one mapping document. Never raises for a bad document."""
    try:
        data, lines = load_with_lines(text)
    except DuplicateKeyError as exc:
        return None, [
            MappingError("duplicate key", mapping_file=mapping_file, field=dotted(exc.path), line=exc.line)
        ]
    except AnchorError as exc:
        return None, [MappingError(exc.reason, mapping_file=mapping_file, line=exc.line)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        return None, [MappingError(f"invalid YAML: {problem}", mapping_file=mapping_file, line=line)]
    if not isinstance(data, dict):
        return None, [
            MappingError(
                "a mapping file must be a YAML mapping (name:, source:, ...)",
                mapping_file=mapping_file,
                line=1,
            )
        ]
    data = _json_keys(data)

    errors = schema_errors(data, lines, mapping_file)
    mapping, compile_errors = compile_mapping(data, lines, mapping_file, settings or Settings.from_environ())
    # One report per field is enough: the schema's wording wins over the compiler's.
    reported = {e.field for e in errors}
    errors.extend(e for e in compile_errors if e.field not in reported)
    if errors:
        errors.sort(key=lambda e: (e.line or 0, e.field))
        return None, errors
    return mapping, []


def schema_errors(data: Any, lines: dict[Path_, int], mapping_file: str) -> list[MappingError]:
    """Every JSON Schema violation of a mapping document, each at its own line."""
    out: list[MappingError] = []

    seen: set[tuple[str, str]] = set()

    def add(path: Path_, reason: str) -> None:
        field = dotted(path)
        if (field, reason) not in seen:  # several keywords can word the same failure alike
            seen.add((field, reason))
            out.append(
                MappingError(reason, mapping_file=mapping_file, field=field, line=line_of(lines, path))
            )

    for error in _schema_validator().iter_errors(data):
        path: Path_ = tuple(error.absolute_path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        custom = schema.get("x-message")
        if "propertyNames" in error.absolute_schema_path:
            key = error.instance if isinstance(error.instance, str) else str(error.instance)
            add((*path, key), f"key {key!r} {custom}" if custom else f"key {key!r}: {error.message}")
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(schema.get("properties", {}))
            allowed = ", ".join(sorted(known))
            for key in error.instance:
                if key not in known:
                    add((*path, key), f"unknown key {key!r} (allowed: {allowed})")
        elif custom and error.validator != "required":
            add(path, f"{error.instance!r} {custom}" if isinstance(error.instance, str | int) else custom)
        else:
            add(path, shorten(error.message))
    return out


def check_file(
    path: str | Path, mapping_file: str | None = None, *, settings: Settings | None = None
) -> tuple[Mapping | None, list[MappingError]]:
    path = Path(path)
    name = mapping_file or display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [MappingError(f"cannot read: {exc}", mapping_file=name)]
    return check_text(text, name, settings=settings)


def load_mapping(path: str | Path, *, settings: Settings | None = None) -> Mapping:
    """One mapping file, compiled; raises MappingLoadError listing every problem."""
    mapping, errors = check_file(path, settings=settings)
    if errors or mapping is None:
        raise MappingLoadError(errors)
    return mapping


def check_paths(
    paths: Sequence[str | Path], *, settings: Settings | None = None
) -> tuple[list[Mapping], list[MappingError], list[Path]]:
    """Load every mapping under `paths`: (mappings, every error, the files looked at)."""
    settings = settings or Settings.from_environ()
    files = mapping_files(paths)
    mappings: list[Mapping] = []
    errors: list[MappingError] = []
    seen: dict[str, Mapping] = {}
    for path in files:
        if not path.exists():
            errors.append(MappingError("no such file or directory", mapping_file=display_path(path)))
            continue
        mapping, file_errors = check_file(path, settings=settings)
        errors.extend(file_errors)
        if mapping is None:
            continue
        other = seen.get(mapping.name)
        if other is not None:
            errors.append(mapping.error(f"duplicate mapping name (also in {other.file})", ("name",)))
            continue
        seen[mapping.name] = mapping
        mappings.append(mapping)
    return mappings, errors, files


def load_mappings(
    paths: str | Path | Sequence[str | Path], *, settings: Settings | None = None
) -> MappingSet:
    """A MappingSet from files and directories; raises MappingLoadError listing every problem."""
    if isinstance(paths, str | Path):
        paths = [paths]
    mappings, errors, _files = check_paths(paths, settings=settings)
    if errors:
        raise MappingLoadError(errors)
    return MappingSet(mappings)
