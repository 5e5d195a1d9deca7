"""layers/bridge/Makefile, the layer builds `sam build` runs: hash-based bytecode (FM-26) and the
mapping files in a folder of their own. Run offline: no requirements, so pip fetches nothing."""

from __future__ import annotations

import importlib.util
import marshal
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "layers" / "bridge" / "Makefile"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make, as sam build does")

UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked at import


def _make(target: str, cwd: Path, artifacts: Path, **variables: str) -> None:
    args = [
        f"{k}={v}"
        for k, v in {"ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable, **variables}.items()
    ]
    subprocess.run(["make", "-f", str(MAKEFILE), target, *args], cwd=cwd, check=True, capture_output=True)


def test_core_layer_ships_unchecked_hash_bytecode_when_built(tmp_path):
    empty = tmp_path / "requirements.txt"
    empty.write_text("")
    _make("build-CoreLayer", ROOT / "layers" / "bridge", tmp_path / "out", REQUIREMENTS=str(empty))

    site = tmp_path / "out" / "python"
    sources = sorted(site.rglob("*.py"))
    assert site / "timeline_bridge" / "__init__.py" in sources
    # Lambda runs only the core: the CLI, the local runtime and the sandboxes stay out of the layer.
    assert not list(site.rglob("timeline_bridge_tools"))
    for tooling in ("cli", "local", "sandboxes", "dlq.py", "signing.py"):
        assert not (site / "timeline_bridge" / tooling).exists(), tooling
    assert not list(site.rglob("*.egg-info"))
    tag = sys.implementation.cache_tag
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        data = pyc.read_bytes()
        assert data[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH, source
        assert data[8:16] == importlib.util.source_hash(source.read_bytes()), source
        code = marshal.loads(data[16:])  # noqa: S302 - bytecode this test just built
        assert code.co_filename == f"/opt/python/{source.relative_to(site)}"
    assert len(list(site.rglob("*.pyc"))) == len(sources)


def test_mapping_layer_holds_only_mapping_files_when_built(tmp_path):
    mappings = tmp_path / "mappings"
    (mappings / "team").mkdir(parents=True)
    (mappings / "a.yaml").write_text("name: a\n")
    (mappings / "a.cases.yaml").write_text("cases: []\n")
    (mappings / "team" / "b.yml").write_text("name: b\n")
    (mappings / "team" / "b.cases.yml").write_text("cases: []\n")
    (mappings / ".editorconfig").write_text("root = true\n")
    _make("build-MappingsLayer", mappings, tmp_path / "out")

    built = tmp_path / "out" / "mappings"
    assert sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()) == [
        "a.yaml",
        "team/b.yml",
    ]


def test_layer_build_refuses_to_run_when_not_given_an_artifacts_folder(tmp_path):
    result = subprocess.run(
        ["make", "-f", str(MAKEFILE), "build-MappingsLayer", "ARTIFACTS_DIR="],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "ARTIFACTS_DIR is not set" in result.stdout + result.stderr
