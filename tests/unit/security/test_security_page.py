"""SECURITY.md names the test that proves each promise: every test it names must exist."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "SECURITY.md"

# `tests/x.py`, `tests/x.py::test_name`, `tests/test_{a,b}.py::test_*_pattern`, and a bare
# `::test_name` that continues the file named just before it in the same cell.
CITATION = re.compile(r"`(tests/[^`\s:]+)?(?:::([A-Za-z0-9_*]+))?`")


def _expand(path: str) -> list[str]:
    match = re.search(r"\{([^}]*)\}", path)
    if not match:
        return sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(path)) or [path]
    return [e for alt in match.group(1).split(",") for e in _expand(path.replace(match.group(0), alt, 1))]


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")}


def _citations() -> list[tuple[str, str | None]]:
    cited: list[tuple[str, str | None]] = []
    for line in PAGE.read_text().splitlines():
        current: str | None = None
        for match in CITATION.finditer(line):
            path, name = match.groups()
            if path:
                current = path
            if current is None or (not path and not name):
                continue
            cited.append((current, name))
    return cited


def test_security_page_cites_tests_when_it_states_promises():
    assert len(_citations()) >= 20


def test_every_test_the_security_page_cites_exists():
    missing = []
    for path, name in _citations():
        files = [ROOT / p for p in _expand(path)]
        if not all(f.is_file() or (f.is_dir() and name is None) for f in files):
            missing.append(path)
            continue
        if name is None:
            continue
        for f in files:
            if not fnmatch.filter(_test_names(f), name):
                missing.append(f"{f.relative_to(ROOT)}::{name}")
    assert missing == []
