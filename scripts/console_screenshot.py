"""Screenshot of the `bridge dev` console for the README (docs/console.png).

    .venv/bin/python scripts/console_screenshot.py [OUTPUT]

Starts the local runtime in this process, sends the shipped samples (signed as their senders sign
them), one forged request and one event the Matter sandbox refuses, then photographs the console
in headless Chromium (Debian's chromium + chromedriver: scripts/ensure-chromium installs them).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from timeline_bridge_tools import signing
from timeline_bridge_tools.cli.send import load_sample
from timeline_bridge_tools.local.runtime import LocalRuntime
from timeline_bridge_tools.sandboxes.matter import problem

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = (
    ("hubspot", "events/hubspot/deal-stage-change.json"),
    ("pipedrive", "events/pipedrive/deal-stage-change-v2.json"),
    ("slack", "events/slack/approve-button.json"),
    ("generic", "events/generic/standard-webhook.json"),
)
SECRETS = {
    "hubspot": "HUBSPOT_CLIENT_SECRET",
    "slack": "SLACK_SIGNING_SECRET",
    "pipedrive": "PIPEDRIVE_BASIC_AUTH",
    "generic": "GENERIC_WEBHOOK_SECRET",
}


def send(runtime: LocalRuntime, source: str, body: bytes, headers: dict[str, str], secret: str) -> None:
    url = runtime.webhook_urls[source].replace("<name>", "")
    options: dict[str, Any] = {}
    if source == "hubspot":
        options["url"] = url
    if source == "generic":
        url += "billing"
        options.update(name="billing", webhook_id=headers.pop("webhook-id", None))
    headers = {**headers, **signing.sign_request(source, body, secret, **options)}
    requests.post(url, data=body, headers=headers, timeout=10)


def main(output: Path) -> int:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        print("chromium and chromedriver are needed (run scripts/ensure-chromium)", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory() as state,
        LocalRuntime(ROOT, port=0, state_dir=state, environ={}) as runtime,
    ):
        for source, sample in SAMPLES:
            body, headers, _ = load_sample(ROOT / sample)
            send(runtime, source, body, headers, runtime.secret_values[SECRETS[source]])
        body, headers, _ = load_sample(ROOT / SAMPLES[0][1])
        send(runtime, "hubspot", body, headers, "a-forged-secret")  # refused: 401
        send(runtime, "hubspot", body, headers, runtime.secret_values["HUBSPOT_CLIENT_SECRET"])  # duplicate
        refusal = problem(422, "validation_failed", "contact_id does not exist")
        runtime.sandboxes["matter"].inject("respond", status=422, json=json.loads(refusal.body))
        events = json.loads(body)
        events[0]["eventId"] += 1
        send(
            runtime,
            "hubspot",
            json.dumps(events).encode(),
            headers,
            runtime.secret_values["HUBSPOT_CLIENT_SECRET"],
        )
        runtime.wait_idle(timeout=30)
        time.sleep(0.5)

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ):
            options.add_argument(flag)
        options.add_argument("--window-size=1440,900")
        options.add_argument(f"--user-data-dir={Path(state) / 'chromium'}")
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        try:
            driver.get(f"{runtime.url}/")
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            driver.set_window_size(1440, min(max(height, 900), 2400))
            time.sleep(1.2)  # one in-page refresh, so the page shows its steady state
            output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(output))
        finally:
            driver.quit()
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console.png"))
