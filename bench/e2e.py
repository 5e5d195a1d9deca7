"""Figure 5: end-to-end local throughput. Bursts of signed HubSpot webhooks (signed as `bridge send`
signs them) into the local runtime of `bridge dev`, counted as timeline events in the provider
sandboxes; and the peak memory (RSS high-water mark) of the runtime's process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.context import ROOT
from bench.report import Figure, Row

SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"
WEBHOOKS = 40
SENDERS = 8
SCALE = 0.01  # sandbox windows and pacing: Stora's 60/min becomes 60 per 0.6 s
SETTLE_S = 20.0


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback sandbox
        return json.loads(answer.read())


def _stored(sandboxes: dict[str, str]) -> dict[str, int]:
    return {name: len(_get_json(f"{url}/_sandbox/events")["events"]) for name, url in sandboxes.items()}


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310 - loopback runtime
        return int(answer.status)


def _memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            name, value = line.split(":", 1)
            out[name] = int(value.split()[0])
    return out


def _bodies(n: int, first: int) -> list[bytes]:
    from timeline_bridge_tools import signing

    events = json.loads(signing.body_bytes(json.loads(SAMPLE.read_text())))
    out = []
    for i in range(n):
        batch = [dict(e, eventId=int(e["eventId"]) + first + i) for e in events]
        out.append(json.dumps(batch, separators=(",", ":")).encode())
    return out


def _wait_for(sandboxes: dict[str, str], total: int, deadline: float) -> tuple[dict[str, int], float]:
    counts = _stored(sandboxes)
    while sum(counts.values()) < total and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = _stored(sandboxes)
    return counts, time.monotonic()


def run() -> Figure:
    fig = Figure("e2e", "5. End-to-end local (bridge dev runtime)")
    try:
        from timeline_bridge_tools import signing
        from timeline_bridge_tools.local import runtime as _runtime  # noqa: F401 - present or not measured
    except ImportError as exc:
        return fig.skip(f"local runtime not importable ({exc})")
    if not SAMPLE.is_file():
        return fig.skip(f"{SAMPLE.relative_to(ROOT)} absent")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.devserver", str(SCALE)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
            return fig.skip("runtime did not start: " + (err[-1] if err else f"exit {proc.poll()}"))
        ready = json.loads(line)
        # Keep reading what the runtime prints: a full pipe would stall it mid-request.
        for stream in (proc.stdout, proc.stderr):
            threading.Thread(target=stream.read, daemon=True).start()
        url = ready["webhooks"]["hubspot"]
        secret = ready["secrets"]["HUBSPOT_CLIENT_SECRET"]
        sandboxes = {k: v for k, v in ready["sandboxes"].items() if k != "slack"}
        after_start = _memory_kib(proc.pid)

        def send(body: bytes) -> int:
            headers = {"content-type": "application/json", "user-agent": "bench"}
            headers.update(signing.sign_request("hubspot", body, secret, url=url))
            return _post(url, body, headers)

        # One webhook first: loads every code path and tells how many timeline events one makes.
        base = _stored(sandboxes)
        send(_bodies(1, 10_000_000)[0])
        deadline = time.monotonic() + SETTLE_S
        counts = base
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = _stored(sandboxes)
            if sum(now.values()) > sum(base.values()) and now == counts:
                break
            counts = now
        fanout = sum(counts.values()) - sum(base.values())
        if fanout <= 0:
            return fig.skip("the sample webhook produced no timeline event in the sandboxes")

        before = _stored(sandboxes)
        bodies = _bodies(WEBHOOKS, 20_000_000)
        started = time.monotonic()
        with ThreadPoolExecutor(SENDERS) as pool:
            statuses = list(pool.map(send, bodies))
        acked = time.monotonic()
        expected = sum(before.values()) + fanout * WEBHOOKS
        counts, finished = _wait_for(sandboxes, expected, started + SETTLE_S + WEBHOOKS)
        memory = _memory_kib(proc.pid)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    delivered = sum(counts.values()) - sum(before.values())
    seconds = finished - started
    rate = delivered / seconds if seconds > 0 else None
    ok = sum(1 for s in statuses if 200 <= s < 300)
    fig.add(
        Row(
            f"burst of {WEBHOOKS} HubSpot webhooks ({SENDERS} senders)",
            f"{rate:.1f} timeline events/s ({delivered}/{fanout * WEBHOOKS} in {seconds:.1f} s)",
            f"{ok}/{WEBHOOKS} acked in {acked - started:.2f} s ({WEBHOOKS / (acked - started):.0f} webhooks/s)",
            data={
                "events_per_s": rate,
                "delivered": delivered,
                "expected": fanout * WEBHOOKS,
                "fanout": fanout,
                "seconds": seconds,
                "ack_seconds": acked - started,
                "per_target": {k: counts[k] - before.get(k, 0) for k in counts},
                "startup_s": ready.get("startup_s"),
                "time_scale": SCALE,
            },
            met=delivered == fanout * WEBHOOKS,
            goal="every event delivered",
        )
    )
    fig.add(
        Row(
            "runtime peak memory (VmHWM)",
            f"{memory.get('VmHWM', 0) / 1024:.0f} MiB",
            f"{after_start.get('VmRSS', 0) / 1024:.0f} MiB right after start",
            data={"vmhwm_kib": memory.get("VmHWM"), "rss_after_start_kib": after_start.get("VmRSS")},
        )
    )
    fig.notes.append(f"sandbox rate limits and delivery pacing time-scaled x{SCALE}; one process, moto in it")
    return fig
