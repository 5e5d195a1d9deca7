"""docs/architecture.md names the test that proves each failure mode: every test it names must
exist, every failure mode names one, and every failure-mode id a test cites is defined there.
docs/contributing.md names the files to touch: every existing file it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
CONTRIBUTING = ROOT / "docs" / "contributing.md"

CITATION = re.compile(r"`(tests/[^`\s:]+\.py)::([A-Za-z0-9_]+)`")
ROW = re.compile(r"^\| (FM-\d{2}) \|")
FM_ID = re.compile(r"\bFM-\d{2}\b")
# A repository path in backticks; `acme` is the contributing page's example of a file to create.
REPO_PATH = re.compile(r"`((?:bench|docs|events|functions|layers|mappings|schemas|tests|tools)/[^`\s<>*]+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")}


def _rows() -> dict[str, str]:
    return {m.group(1): line for line in PAGE.read_text("utf-8").splitlines() if (m := ROW.match(line))}


def test_every_test_the_architecture_page_cites_exists():
    missing = []
    for path, name in CITATION.findall(PAGE.read_text("utf-8")):
        file = ROOT / path
        if not file.is_file() or name not in _test_names(file):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_every_failure_mode_names_a_test_when_listed():
    rows = _rows()
    assert len(rows) >= 28
    assert [fm for fm, line in rows.items() if not CITATION.search(line)] == []


def test_every_failure_mode_a_test_cites_is_defined_on_the_page():
    defined = set(_rows())
    cited = {
        (str(path.relative_to(ROOT)), fm)
        for path in (ROOT / "tests").rglob("*.py")
        for fm in FM_ID.findall(path.read_text("utf-8"))
    }
    assert sorted((path, fm) for path, fm in cited if fm not in defined) == []


def test_every_file_the_contributing_page_names_exists_unless_it_is_the_example_to_create():
    named = {p.rstrip("/") for p in REPO_PATH.findall(CONTRIBUTING.read_text("utf-8")) if "acme" not in p}
    assert len(named) >= 20
    assert sorted(p for p in named if not (ROOT / p).exists()) == []
