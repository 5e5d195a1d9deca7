"""Run provider sandboxes by hand: `python -m timeline_bridge_tools.sandboxes [stora|hubspot|matter|applied|all]`.

Prints the environment that points the bridge at them, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from timeline_bridge_tools.sandboxes import SANDBOX_CLASSES, env_for, start, stop_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timeline_bridge_tools.sandboxes", description=__doc__)
    parser.add_argument("names", nargs="*", default=["all"], help="sandboxes to run (default: all)")
    parser.add_argument(
        "--port", type=int, default=0, help="first port (next ones follow); 0 = any free port"
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="scale the rate-limit windows (0.1 = 10x faster)"
    )
    parser.add_argument("--no-rate-limits", action="store_true", help="serve without rate limits")
    args = parser.parse_args(argv)
    names = list(SANDBOX_CLASSES) if "all" in args.names else args.names
    unknown = [n for n in names if n not in SANDBOX_CLASSES]
    if unknown:
        parser.error(f"unknown sandbox(es): {', '.join(unknown)}")
    options: dict[str, Any] = {"time_scale": args.time_scale}
    if args.no_rate_limits:
        options["rate_limits"] = ()
    running = {}
    try:
        for offset, name in enumerate(names):
            running[name] = start(name, port=args.port + offset if args.port else 0, **options)
        for key, value in env_for(running).items():
            sys.stdout.write(f"{key}={value}\n")
        sys.stdout.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(running)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
