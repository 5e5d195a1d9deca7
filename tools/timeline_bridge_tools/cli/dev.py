"""`bridge dev [--port 3000]`: the whole pipeline on this machine (see `timeline_bridge_tools.local.runtime`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

# How much of a generated secret the banner shows: enough to tell values apart, never the secret.
SHOWN_SECRET_CHARS = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=3000, help="port of the webhook URLs and the console (3000)"
    )
    parser.add_argument(
        "--max-batching-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="cap on the template's MaximumBatchingWindowInSeconds, so one webhook goes through at "
        "once (default 0.2; 300 keeps the template's values)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the functions' Powertools log level (default WARNING, or LOG_LEVEL from .env; INFO shows "
        "every function's log lines)",
    )


def _echo(line: str) -> None:
    print(line, flush=True)


def _program() -> str:
    """How this shell reaches `bridge`: `.venv/bin/bridge` under `make dev`, else `bridge`."""
    argv0 = Path(sys.argv[0])
    try:
        relative = argv0.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return "bridge"
    return str(relative) if relative.name == "bridge" else "bridge"


def shown_secret(value: str) -> str:
    """`value` cut for the terminal: its first characters (at most a third of it), then "…".

    Terminals are scrolled back, shared and recorded; the full value stays in the owner-only
    `.bridge/secrets.json`, where a developer configuring a real sender reads it."""
    return value[: min(SHOWN_SECRET_CHARS, len(value) // 3)] + "…"


def banner(runtime: Any) -> str:
    """What `bridge dev` prints once it is ready."""
    from timeline_bridge_tools.local.state import SECRETS_FILE, STATE_DIR

    lines = [f"timeline-bridge is running locally (ready in {runtime.startup_seconds:.1f} s)", ""]
    lines.append("Webhook URLs")
    for name, url in runtime.webhook_urls.items():
        lines.append(f"  {name:<10} {url}")
    lines += ["", f"Console        {runtime.url}/", *_mapping_lines(runtime.loaded_mappings()), ""]
    if runtime.generated_secrets:
        lines.append(
            f"Development secrets (generated now; full values in {STATE_DIR}/{SECRETS_FILE}, mode 0600):"
        )
        for name in runtime.generated_secrets:
            lines.append(f"  {name:<24} {shown_secret(runtime.secret_values.get(name, ''))}")
    else:
        lines.append(f"Webhook secrets: {STATE_DIR}/{SECRETS_FILE} (or your environment/.env)")
    lines += ["", "Targets"]
    for target, info in runtime.targets().items():
        where = "REAL PROVIDER" if info["real"] else "sandbox"
        lines.append(f"  {target:<10} {where:<14} {info['url']}")
    lines += ["", f"AWS APIs (moto) {runtime.aws_endpoint_url}", ""]
    from timeline_bridge.sources import SOURCE_SPECS

    spec = next((s for s in SOURCE_SPECS.values() if s.example), None)
    if spec is not None and spec.example and (runtime.root / spec.example).is_file():
        lines += ["Send a sample webhook:", f"  {_program()} send {spec.name} {spec.example}", ""]
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def _mapping_lines(loaded: dict[str, Any]) -> list[str]:
    """The mappings the route function loaded at start (reloaded when their folder changes), or
    why none is loaded."""
    if not loaded:
        return []
    folder = loaded.get("folder")
    errors = loaded.get("errors") or []
    if errors:
        return [
            f"Mappings       none loaded: {len(errors)} error(s) in {folder}/ (fixed files are reloaded)",
            *(f"  {error}" for error in errors),
        ]
    names = loaded.get("names") or []
    listed = ", ".join(names) or "none"
    return [f"Mappings       {len(names)} from {folder}/ (reloaded when a file changes): {listed}"]


def run(args: argparse.Namespace) -> int:
    from timeline_bridge_tools.local.runtime import DEFAULT_MAX_BATCHING_WINDOW, LocalRuntime
    from timeline_bridge_tools.local.state import read_state

    # Powertools warns on every invocation that records no metric; locally that is just noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    running = read_state()
    if running is not None:
        print(
            f"bridge dev is already running (pid {running.get('pid')}, {running.get('url')}); stop it first.",
            file=sys.stderr,
        )
        return 1
    if not Path("template.yaml").is_file():
        print("template.yaml not found: run bridge dev from the project folder.", file=sys.stderr)
        return 2
    runtime = LocalRuntime(
        ".",
        port=args.port,
        max_batching_window=(
            DEFAULT_MAX_BATCHING_WINDOW if args.max_batching_window is None else args.max_batching_window
        ),
        log_level=args.log_level or os.environ.get("LOG_LEVEL") or "WARNING",
        echo=_echo,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            runtime.start()
        except OSError as exc:
            print(
                f"bridge dev could not start: {exc} (is port {args.port} in use? try --port)", file=sys.stderr
            )
            return 1
        print(banner(runtime), flush=True)
        while not stop.wait(0.5):
            pass
        print("\nstopping…", flush=True)
    finally:
        runtime.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped.", flush=True)
    return 0
