"""Figure 6: the built package. Sizes of the layer and each function as `sam build` makes them,
whether the layer carries valid hash-based .pyc, and the import time of the built code with and
without them.

The artifacts are built the way `sam build` builds them, without sam: each layer with
`BuildMethod: makefile` through its Makefile (`make build-<LogicalId>` in the layer's ContentUri,
ARTIFACTS_DIR set), each function as a copy of its CodeUri (the functions have no requirements of
their own). They land in bench/build/, rebuilt when an input is newer than the last build.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.context import ROOT, ImportRun, lambda_like_env, measure_import
from bench.report import Figure, Row
from bench.stats import fmt_bytes, fmt_ms, median, ratio

BUILD_DIR = ROOT / "bench" / "build"
BUILD_MARKER = BUILD_DIR / ".built"
BUILD_INPUTS = ("template.yaml", "layers", "functions", "mappings")
# Functions whose cold import is compared with and without bytecode: ingest, and route (the most).
IMPORT_PROBES = (
    ("HubspotWebhookFunction", {}),
    ("RouteFunction", {}),
)


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.endswith(".egg-info")]
                for f in filenames:
                    if not f.endswith(".pyc"):
                        newest = max(newest, (Path(dirpath) / f).stat().st_mtime)
    return newest


def build_is_current() -> bool:
    return BUILD_MARKER.is_file() and BUILD_MARKER.stat().st_mtime >= _newest_input_mtime()


def _uri(value: Any) -> Path | None:
    return ROOT / value if isinstance(value, str) else None


def build_plan(
    template_path: Path = ROOT / "template.yaml",
) -> tuple[dict[str, Path], dict[str, tuple[Path, Path]]]:
    """From the template: functions (logical id -> CodeUri) and makefile-built layers (logical id ->
    (ContentUri, folder of the Makefile))."""
    from timeline_bridge_tools.local.template import load_template

    template = load_template(template_path)
    default_code = _uri(((template.get("Globals") or {}).get("Function") or {}).get("CodeUri"))
    functions: dict[str, Path] = {}
    layers: dict[str, tuple[Path, Path]] = {}
    for name, resource in template["Resources"].items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function":
            code = _uri(props.get("CodeUri")) or default_code
            if code is not None:
                functions[name] = code
        elif kind == "AWS::Serverless::LayerVersion":
            metadata = resource.get("Metadata") or {}
            content = _uri(props.get("ContentUri"))
            if content is None:
                continue
            if metadata.get("BuildMethod") != "makefile":
                raise ValueError(f"{name}: only makefile-built layers are reproduced here")
            layers[name] = (content, _uri(metadata.get("ContextPath")) or content)
    return functions, layers


def build(timeout: float = 240) -> None:
    """Build every artifact into BUILD_DIR (see the module docstring). Raises with the reason."""
    functions, layers = build_plan()
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    BUILD_DIR.mkdir(parents=True)
    for name, code in functions.items():
        shutil.copytree(code, BUILD_DIR / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, (content, context) in layers.items():
        artifacts = BUILD_DIR / name
        artifacts.mkdir()
        proc = subprocess.run(  # noqa: S603 - make from PATH on our own Makefile, as sam build runs it
            [  # noqa: S607
                "make",
                "--no-print-directory",
                "-f",
                str(context / "Makefile"),
                f"build-{name}",
                f"ARTIFACTS_DIR={artifacts}",
                f"PYTHON={sys.executable}",
            ],
            cwd=content,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"build-{name} failed: " + " / ".join(tail))
    BUILD_MARKER.touch()


def ensure_build() -> str | None:
    """Build when bench/build is absent or older than its inputs. None, or why it could not."""
    if build_is_current():
        return None
    try:
        build()
    except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"build failed: {exc}"
    return None


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of everything under `path`."""
    total = files = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            total += (Path(dirpath) / f).stat().st_size
            files += 1
    return total, files


def zipped_size(path: Path) -> int:
    """Size of the deployment zip Lambda would receive (deflate, as sam package does)."""
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for dirpath, _, filenames in os.walk(path):
                for f in sorted(filenames):
                    full = Path(dirpath) / f
                    zf.write(full, full.relative_to(path))
        return tmp.tell()


def pyc_kind(pyc: Path, source: Path) -> str:
    """'unchecked-hash', 'checked-hash', 'timestamp' (valid only while the file dates survive) or
    'stale' (wrong interpreter or source changed). The header layout is PEP 552."""
    header = pyc.read_bytes()[:16]
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER:
        return "stale"
    flags = int.from_bytes(header[4:8], "little")
    if flags & 0b1:
        if header[8:16] != importlib.util.source_hash(source.read_bytes()):
            return "stale"
        return "checked-hash" if flags & 0b10 else "unchecked-hash"
    st = source.stat()
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    if mtime != (int(st.st_mtime) & 0xFFFFFFFF) or size != (st.st_size & 0xFFFFFFFF):
        return "stale"
    return "timestamp"


def bytecode_census(root: Path) -> dict[str, Counter[str]]:
    """Per top-level package under `root`, how many .py files have which kind of .pyc (or none)."""
    tag = f"{importlib.util.cache_from_source('x.py').rsplit('.', 2)[-2]}"  # e.g. cpython-312
    census: dict[str, Counter[str]] = {}
    for source in root.rglob("*.py"):
        package = source.relative_to(root).parts[0].removesuffix(".py")
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        kind = pyc_kind(pyc, source) if pyc.is_file() else "missing"
        census.setdefault(package, Counter())[kind] += 1
    return census


def _strip_bytecode(root: Path) -> None:
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache)


def import_with_and_without_bytecode(layer_python: Path, runs: int = 3) -> dict[str, dict[str, float]]:
    """Median import cost of each probe function, with the layer's .pyc and with them removed."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tb-layer-") as tmp:
        with_pyc = Path(tmp) / "with"
        without = Path(tmp) / "without"
        shutil.copytree(layer_python, with_pyc)
        shutil.copytree(layer_python, without)
        _strip_bytecode(without)
        probes = [(n, e) for n, e in IMPORT_PROBES if (BUILD_DIR / n / "app.py").is_file()]
        samples: dict[tuple[str, str], list[ImportRun]] = {}
        for _ in range(runs):
            for name, extra in probes:
                for variant, layer in (("with_pyc", with_pyc), ("without_pyc", without)):
                    env = lambda_like_env(PYTHONDONTWRITEBYTECODE="1", **extra)
                    # The function folder and the layer on the path, as in /var/task and /opt/python.
                    run = measure_import("import app", pythonpath=[BUILD_DIR / name, layer], env=env)
                    samples.setdefault((name, variant), []).append(run)
        for (name, variant), rs in samples.items():
            out.setdefault(name, {})[f"{variant}_us"] = median([r.total_us for r in rs])
    return out


def run() -> Figure:
    fig = Figure("package", "6. Package (built as sam build does)")
    if not (ROOT / "template.yaml").is_file():
        return fig.skip("template.yaml absent")
    why = ensure_build()
    if why:
        return fig.skip(why)
    artifacts = sorted(p for p in BUILD_DIR.iterdir() if p.is_dir())
    layer_python = None
    layers_bytes = 0
    functions: dict[str, dict[str, int]] = {}
    for art in artifacts:
        size, files = tree_size(art)
        zipped = zipped_size(art)
        data = {"zipped_bytes": zipped, "unzipped_bytes": size, "files": files}
        if not art.name.endswith("Layer"):
            functions[art.name] = data
            continue
        layers_bytes += size
        if (art / "python").is_dir() and layer_python is None:
            layer_python = art / "python"
        fig.add(
            Row(
                f"size {art.name}",
                f"{fmt_bytes(zipped)} zipped, {fmt_bytes(size)} unzipped, {files} files",
                goal="<= 250 MiB unzipped (Lambda)",
                met=size <= 250 * 1024 * 1024,
                data=data,
            )
        )
    if functions:
        largest = max(functions.values(), key=lambda d: d["unzipped_bytes"])
        fig.add(
            Row(
                f"size of each function ({len(functions)})",
                f"at most {fmt_bytes(largest['zipped_bytes'])} zipped, {largest['files']} file(s): the handler alone",
                goal="function + layers <= 250 MiB unzipped",
                met=largest["unzipped_bytes"] + layers_bytes <= 250 * 1024 * 1024,
                data=functions,
            )
        )
    if layer_python is None:
        fig.notes.append("no layer with python/ in the build: bytecode not checked")
        return fig
    census = bytecode_census(layer_python)
    totals: Counter[str] = Counter()
    for counts in census.values():
        totals.update(counts)
    py_files = sum(totals.values())
    good = totals["unchecked-hash"] + totals["checked-hash"]
    ours = census.get("timeline_bridge", Counter())
    fig.add(
        Row(
            "layer bytecode",
            ", ".join(f"{k} {v}" for k, v in totals.most_common()),
            f"{py_files} .py files",
            ratio(good, py_files),
            "every .py with valid hash-based .pyc",
            good == py_files and py_files > 0,
            data={
                "totals": dict(totals),
                "timeline_bridge": dict(ours),
                "by_package": {k: dict(v) for k, v in census.items()},
            },
        )
    )
    for name, m in import_with_and_without_bytecode(layer_python).items():
        w, wo = m.get("with_pyc_us"), m.get("without_pyc_us")
        fig.add(
            Row(
                f"import {name}",
                f"{fmt_ms(w)} with the layer's .pyc",
                f"{fmt_ms(wo)} without .pyc",
                ratio(w, wo),
                data=m,
            )
        )
    fig.notes.append("import rows: ratio = with .pyc / without; median of 3 fresh interpreters each")
    return fig
