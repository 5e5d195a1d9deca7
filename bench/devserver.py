"""The local runtime of `bridge dev` in its own process, for the end-to-end figure.

    python -m bench.devserver SCALE

Starts `LocalRuntime` on a free port with its state in a temporary folder (a developer's own
`bridge dev` is left alone), scales the sandboxes' rate limits and the deliverers' pacing by
SCALE (Stora's 60/min would otherwise cap a burst at one event per second), prints one JSON line
(URLs, secrets, sandboxes), and runs until stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def main(argv: list[str]) -> int:
    scale = argv[0] if argv else "1"
    from timeline_bridge_tools.local.runtime import LocalRuntime

    from bench.context import ROOT

    with tempfile.TemporaryDirectory(prefix="tb-bench-dev-") as state:
        runtime = LocalRuntime(
            ROOT,
            port=0,
            write_state=False,
            state_dir=state,
            log_level="ERROR",
            function_env={"DELIVERY_RATE_TIME_SCALE": scale},
            echo=None,
        )
        runtime.start()
        try:
            for sandbox in runtime.sandboxes.values():
                sandbox.set_rate_limits(None, time_scale=float(scale))
            ready = {
                "url": runtime.url,
                "webhooks": runtime.webhook_urls,
                "secrets": runtime.secret_values,
                "sandboxes": {name: sandbox.url for name, sandbox in runtime.sandboxes.items()},
                "startup_s": runtime.startup_seconds,
                "pid": os.getpid(),
            }
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
            sys.stdin.read()
        finally:
            runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
