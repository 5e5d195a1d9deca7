"""The `bridge dev` console in a real headless Chromium: a webhook's timeline event appears, a
dead-lettered job shows with its reason, and the Redrive button delivers it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by Debian's chromedriver, with a fresh profile."""
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium and chromedriver are not installed (scripts/ensure-chromium installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def send_deal_stage_change(runtime: LocalRuntime, event_id: int | None = None) -> None:
    """POST the HubSpot sample, signed as HubSpot signs it; another `event_id` makes a new event."""
    events = json.loads(signing.body_bytes(json.loads(SAMPLE.read_text())))
    if event_id is not None:
        events[0]["eventId"] = event_id
    body = json.dumps(events).encode()
    url = runtime.webhook_urls["hubspot"]
    headers = signing.sign_request("hubspot", body, runtime.secret_values["HUBSPOT_CLIENT_SECRET"], url=url)
    answer = requests.post(
        url, data=body, headers={"content-type": "application/json", **headers}, timeout=10
    )
    assert answer.status_code == 200, answer.text


def section_text(driver: Any, element_id: str) -> str:
    """The text of a console section, or "" while it is absent (the page refreshes it in place)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.ID, element_id).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def wait_until(driver: Any, condition: Callable[[Any], bool], what: str, timeout: float = 10.0) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, message=f"console never showed {what}")


def click_redrive(driver: Any, target: str) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def clicked(d: Any) -> bool:
        try:
            d.find_element(By.ID, f"redrive-{target}").click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False  # replaced by a refresh between finding and clicking: try again
        return True

    wait_until(driver, clicked, f"a Redrive button for {target}")


def test_console_shows_delivery_dead_letter_and_redrive_when_driven_in_chromium(
    browser: Any, local_runtime: LocalRuntime
) -> None:
    browser.get(f"{local_runtime.url}/")
    assert "timeline-bridge" in browser.title

    # 1. A webhook: its timeline event shows up under the Stora sandbox.
    send_deal_stage_change(local_runtime)
    stora = local_runtime.sandboxes["stora"]
    wait_until(browser, lambda d: bool(stora.events()), "an event stored by the Stora sandbox")
    stored = stora.events()[0]
    description = str(stored.get("description") or json.dumps(stored)[:40])
    wait_until(
        browser, lambda d: description in section_text(d, "timeline-stora"), "the Stora timeline event"
    )
    assert "accepted" in section_text(browser, "webhooks")

    # 2. Matter refuses the next event for good: the job is dead-lettered, with the provider's reason.
    from timeline_bridge_tools.sandboxes.matter import problem

    refusal = problem(422, "validation_failed", "occurred_at is too far in the past")
    local_runtime.sandboxes["matter"].inject("respond", status=422, json=json.loads(refusal.body))
    send_deal_stage_change(local_runtime, event_id=3816279341)
    wait_until(
        browser, lambda d: "validation_failed" in section_text(d, "dlq-matter"), "the Matter dead letter"
    )
    matter_before = len(local_runtime.sandboxes["matter"].events())

    # 3. Redrive from the page: the fault is spent, so the job is delivered and the DLQ empties.
    click_redrive(browser, "matter")
    wait_until(
        browser,
        lambda d: len(local_runtime.sandboxes["matter"].events()) == matter_before + 1,
        "the redriven job delivered to Matter",
    )
    wait_until(browser, lambda d: section_text(d, "dlq-matter") == "", "the Matter DLQ emptied")
    wait_until(
        browser,
        lambda d: (
            "No dead letters" in section_text(d, "dead-letters")
            and "redriven" not in section_text(d, "jobs")
            and f"{matter_before + 1} events" in section_text(d, "timeline-matter")
        ),
        "the redriven job delivered on the page",
    )
    assert "dead-lettered" in section_text(browser, "deliveries")  # the attempt history keeps the failure
