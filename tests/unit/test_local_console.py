"""The console page escapes everything it shows, and the journal keeps each job's story."""

from __future__ import annotations

import os
from pathlib import Path

from timeline_bridge_tools.local import state as state_files
from timeline_bridge_tools.local.console import render
from timeline_bridge_tools.local.journal import Journal, WebhookRecord

HOSTILE = '<script>alert("x")</script>'


def job(key: str = "tb-1", **extra: object) -> dict[str, object]:
    return {"key": key, "target": "matter", "mapping": "m", "source": "hubspot", "event_id": "e1", **extra}


def test_untrusted_text_is_escaped_when_the_page_is_rendered() -> None:
    page = render(
        {
            "webhook_urls": {"hubspot": "http://127.0.0.1:3000/hubspot"},
            "webhooks": [
                {
                    "time": "t",
                    "source": "hubspot",
                    "status": 401,
                    "outcome": "rejected",
                    "reason": HOSTILE,
                    "events": [HOSTILE],
                }
            ],
            "jobs": [{"created": "t", "mapping": HOSTILE, "target": "stora", "key": "k", "status": "queued"}],
            "attempts": [],
            "dead_letters": {"matter": {"count": 1, "messages": [{"key": "k", "message": HOSTILE}]}},
            "timelines": {"stora": [{"description": HOSTILE, "id": '"><img src=x onerror=alert(1)>'}]},
            "sandboxes": {"stora": {"url": "http://127.0.0.1:1", "real": False}},
        }
    )

    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'action="/_console/redrive?target=matter"' in page


def test_mappings_and_the_last_refused_reload_are_shown_escaped_when_the_page_is_rendered() -> None:
    mappings = {
        "folder": "mappings",
        "names": ["hubspot-deal-stage-to-stora", HOSTILE],
        "loaded_at": "2026-12-02T15:10:32.622Z",
        "errors": [f"mappings/m.yaml:8: target: {HOSTILE}"],
        "failed_at": "2026-12-02T15:11:02.100Z",
    }

    page = render({"mappings": mappings})

    section = page.split('<section id="mappings">', 1)[1].split("</section>", 1)[0]
    assert "<code>hubspot-deal-stage-to-stora</code>" in section and "15:10:32.622" in section
    assert "reload refused" in section and "still routing with the set above" in section
    assert "mappings/m.yaml:8: target: &lt;script&gt;" in section
    assert "<script>alert" not in page


def test_redrive_form_and_page_carry_the_run_token_when_rendered() -> None:
    state = {"dead_letters": {"matter": {"count": 1, "messages": [{"key": "k"}]}}}

    page = render(state, csrf_token="tok-123")

    form = page.split('<form method="post"', 1)[1].split("</form>", 1)[0]
    assert '<input type="hidden" name="csrf_token" value="tok-123">' in form
    assert '<meta name="csrf-token" content="tok-123">' in page


def test_job_goes_dead_lettered_redriven_delivered_when_the_journal_follows_it() -> None:
    journal = Journal()
    journal.job_queued(job())
    journal.attempt(job(), 1, "dead-lettered", "permanent_failure · 422")
    assert journal.job("tb-1").status == "dead-lettered"

    journal.job_queued(job())  # put back by a redrive
    assert journal.job("tb-1").status == "redriven"

    journal.attempt(job(attempts=1), 2, "delivered")
    record = journal.job("tb-1")
    assert (record.status, record.attempts, record.detail) == ("delivered", 2, "")
    assert [a["outcome"] for a in journal.snapshot()["attempts"]] == ["delivered", "dead-lettered"]


def test_journal_lists_newest_first_and_stays_bounded_when_many_webhooks_arrive() -> None:
    journal = Journal()
    for i in range(250):
        journal.webhook(
            WebhookRecord(request_id=str(i), source="slack", path="/slack", status=200, outcome="accepted")
        )

    webhooks = journal.snapshot()["webhooks"]
    assert len(webhooks) == 200
    assert webhooks[0]["request_id"] == "249"


def test_dev_json_is_ignored_when_its_process_is_gone(tmp_path: Path) -> None:
    state_files.write_state({"pid": os.getpid(), "url": "http://127.0.0.1:3000"}, tmp_path)
    assert state_files.read_state(tmp_path)["url"] == "http://127.0.0.1:3000"

    state_files.write_state({"pid": 2**22 + 12345, "url": "http://127.0.0.1:3000"}, tmp_path)
    assert state_files.read_state(tmp_path) is None


def test_development_secrets_are_reused_when_generated_before(tmp_path: Path) -> None:
    first, created = state_files.ensure_secrets(["GENERIC_WEBHOOK_SECRET", "PIPEDRIVE_BASIC_AUTH"], tmp_path)
    again, created_again = state_files.ensure_secrets(
        ["GENERIC_WEBHOOK_SECRET", "PIPEDRIVE_BASIC_AUTH"], tmp_path
    )

    assert created == ["GENERIC_WEBHOOK_SECRET", "PIPEDRIVE_BASIC_AUTH"] and created_again == []
    assert again == first
    assert first["GENERIC_WEBHOOK_SECRET"].startswith("whsec_")
    assert ":" in first["PIPEDRIVE_BASIC_AUTH"]
    assert (tmp_path / ".bridge" / "secrets.json").stat().st_mode & 0o077 == 0


def test_paused_targets_are_shown_with_their_reason_when_a_deliverer_holds_one_back() -> None:
    quiet = render({"paused": {}})
    page = render({"paused": {"stora": {"until": "2026-11-23T10:00:05.000Z", "reason": f"401 {HOSTILE}"}}})

    assert 'id="paused"' not in quiet
    assert 'id="paused"' in page and "10:00:05.000" in page
    assert "401 &lt;script&gt;" in page and "<script>alert" not in page
