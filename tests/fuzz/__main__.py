"""Run the fuzz harnesses: `python -m tests.fuzz [--runs N] [--harness NAME ...] [--jobs J]`.

Each harness runs in a process of its own (`--worker NAME`), because libFuzzer takes over the
process and exits it when done. The parent runs them in parallel, prints one line per harness
(inputs run, coverage, seconds) and exits non-zero when any harness found something; the finding's
input is kept in the artifacts folder and replays with `--worker NAME --reproduce FILE`.

    python -m tests.fuzz --runs 200000          # make fuzz
    python -m tests.fuzz --runs 3000 --seed 1   # the smoke run of make test
    python -m tests.fuzz --list
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_STATS = re.compile(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: (\d+)")


@dataclass
class Result:
    harness: str
    ok: bool
    runs: int
    coverage: int
    features: int
    seconds: float
    artifacts: str
    output: str  # libFuzzer's last lines when something was found


def _names() -> list[str]:
    from tests.fuzz.harnesses import HARNESSES

    return list(HARNESSES)


def run_worker(name: str, argv: list[str]) -> None:
    """Fuzz one harness in this process (never returns: libFuzzer exits)."""
    import atheris

    with atheris.instrument_imports(include=["timeline_bridge"]):
        from tests.fuzz.harnesses import HARNESSES

        harness = HARNESSES[name]
        harness.run(b"")  # load what the harness caches (mappings, samples) while instrumenting
    atheris.Setup([sys.argv[0], *argv], harness.run)
    atheris.Fuzz()


def _seed_corpus(folder: Path, seed: int, count: int = 64) -> None:
    """Random inputs of every length to start from: the harnesses read structured values out of
    the bytes, so long varied inputs reach deep shapes sooner than libFuzzer's empty start."""
    rng = random.Random(seed or None)
    for index in range(count):
        size = rng.choice((16, 64, 256, 1024, 4096))
        (folder / f"seed-{index:03d}").write_bytes(rng.randbytes(rng.randint(1, size)))


def run_one(name: str, runs: int, seed: int, max_time: int, artifacts: Path) -> Result:
    """Start a worker for `name`; parse libFuzzer's report."""
    folder = artifacts / name
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Path(tempfile.mkdtemp(prefix=f"corpus-{name}-"))
    _seed_corpus(corpus, seed)
    argv = [
        f"-runs={runs}",
        f"-seed={seed}",
        f"-max_total_time={max_time}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=8192",
        "-len_control=0",
        "-print_final_stats=1",
        f"-artifact_prefix={folder}/",
        str(corpus),
    ]
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "tests.fuzz", "--worker", name, "--", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    seconds = time.monotonic() - started
    log = process.stderr
    done = _DONE.search(log)
    stats = _STATS.findall(log)
    executed = int(done.group(1)) if done else (int(stats[-1][0]) if stats else 0)
    coverage, features = (int(stats[-1][1]), int(stats[-1][2])) if stats else (0, 0)
    ok = process.returncode == 0 and done is not None
    tail = "" if ok else "\n".join((process.stdout + "\n" + log).strip().splitlines()[-60:])
    return Result(name, ok, executed, coverage, features, round(seconds, 1), str(folder), tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000, help="inputs per harness (default 200000)")
    parser.add_argument("--harness", action="append", help="run only these harnesses (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer seed (0: random)")
    parser.add_argument("--max-time", type=int, default=3600, help="seconds per harness at most")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="harnesses run at once")
    parser.add_argument("--artifacts", type=Path, help="where findings are kept (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the harnesses")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--reproduce", type=Path, help="with --harness NAME: run this one input")
    parser.add_argument("libfuzzer", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_worker(args.worker, args.libfuzzer)
        return 0
    if args.list:
        from tests.fuzz.harnesses import HARNESSES

        for harness in HARNESSES.values():
            print(f"{harness.name:26} {harness.doc}")
        return 0
    names = args.harness or _names()
    unknown = sorted(set(names) - set(_names()))
    if unknown:
        parser.error(f"unknown harness(es): {', '.join(unknown)} (see --list)")
    if args.reproduce:
        if len(names) != 1:
            parser.error("--reproduce needs exactly one --harness")
        command = [sys.executable, "-m", "tests.fuzz", "--worker", names[0], "--", str(args.reproduce)]
        return subprocess.run(command, cwd=ROOT, check=False).returncode

    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="timeline-bridge-fuzz-"))
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda n: run_one(n, args.runs, args.seed, args.max_time, artifacts), names))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        for r in results:
            status = "ok" if r.ok else "FINDING"
            print(
                f"{r.harness:26} {status:8} {r.runs:>9} inputs  cov {r.coverage:>5}  ft {r.features:>6}  {r.seconds:>7.1f} s"
            )
        for r in results:
            if not r.ok:
                print(f"\n--- {r.harness}: finding (input kept in {r.artifacts}) ---\n{r.output}")
                print(
                    f"replay: python -m tests.fuzz --harness {r.harness} --reproduce {r.artifacts}/<crash file>"
                )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
