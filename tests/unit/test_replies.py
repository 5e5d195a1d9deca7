"""Replies to the person who clicked: a mapping's `reply:`, the hooks-host rule and Slack's budget
of five posts per response URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge.config import Settings
from timeline_bridge.errors import MappingError
from timeline_bridge.mapping.loader import load_mapping
from timeline_bridge.models import Envelope
from timeline_bridge.replies import MAX_POSTS, Replies

ROOT = Path(__file__).resolve().parents[2]
HOOK = "https://hooks.slack.com/actions/T01ABCDEF12/6012345678901/AbCdEfGh"

MAPPING = """\
name: approvals
source: {source}
target: matter
body:
  kind: governance
  title: "${{{{ event.actions[0].value }}}}"
  occurred_at: "2025-11-23T12:16:27.412Z"
  actor: someone
reply:
  text: "{text}"
{extra}"""


def mapping(
    tmp_path: Path,
    *,
    source: str = "slack",
    text: str = "Approved: ${{ event.actions[0].value }}",
    extra: str = "",
) -> Any:
    path = tmp_path / "approvals.yaml"
    path.write_text(MAPPING.format(source=source, text=text, extra=extra))
    return load_mapping(path)


def click(**changes: Any) -> Envelope:
    event = {"type": "block_actions", "response_url": HOOK, "actions": [{"value": "discount 10%"}]} | changes
    return Envelope("slack", "block_actions", "trigger-1", None, "2025-11-23T12:16:28Z", event)


def test_job_carries_the_rendered_reply_and_where_it_goes(tmp_path: Path) -> None:
    from timeline_bridge.mapping.engine import MappingSet

    [job] = MappingSet([mapping(tmp_path)]).render_jobs(click())
    assert job.reply == {"url": HOOK, "text": "Approved: discount 10%", "replace_original": True}


def test_ephemeral_reply_when_replace_original_is_false(tmp_path: Path) -> None:
    m = mapping(tmp_path, extra="  replace_original: false\n")
    assert m.reply_for(click(), m.context(click()))["replace_original"] is False


def test_reply_on_a_source_without_reply_urls_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="reply"):
        mapping(tmp_path, source="pipedrive")


def test_no_reply_for_a_replayed_event_or_an_event_without_a_response_url(tmp_path: Path) -> None:
    m = mapping(tmp_path)
    replayed = click()
    replayed.replay = {"id": "r1", "mappings": None}
    assert m.reply_for(replayed, m.context(replayed)) is None
    bare = click(response_url=None)
    assert m.reply_for(bare, m.context(bare)) is None


def test_a_reply_text_that_does_not_render_keeps_only_the_not_recorded_note(tmp_path: Path) -> None:
    m = mapping(tmp_path, text="By ${{ event.user.name }}")  # no user in the click: null inside text
    assert m.reply_for(click(), m.context(click())) == {"url": HOOK, "text": None, "replace_original": True}


class FakeTable:
    """DynamoDB's conditional counter, as `Replies` uses it."""

    def __init__(self) -> None:
        self.posts: dict[str, int] = {}

    def update_item(self, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        key = kwargs["Key"]["id"]["S"]
        if self.posts.get(key, 0) >= int(kwargs["ExpressionAttributeValues"][":max"]["N"]):
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem")
        self.posts[key] = self.posts.get(key, 0) + 1


def replies(posted: list[tuple[str, dict[str, Any]]], base: str = "https://hooks.slack.com") -> Replies:
    def post(url: str, payload: dict[str, Any]) -> int:
        posted.append((url, payload))
        return 200

    settings = Settings.from_environ({"SLACK_HOOKS_BASE_URL": base} if base else {})
    return Replies(settings, table="t", dynamodb=FakeTable(), post=post)


def job_with(reply: dict[str, Any] | None, dead_letter: dict[str, Any] | None = None) -> Any:
    from timeline_bridge.models import DeliveryJob

    job = DeliveryJob(
        "k1", "matter", "approvals", "mappings/approvals.yaml", "slack", "t1", "block_actions", None, {}
    )
    job.reply, job.dead_letter = reply, dead_letter
    return job


def test_delivered_job_replaces_the_clicked_message() -> None:
    posted: list[tuple[str, dict[str, Any]]] = []
    replies(posted).recorded(job_with({"url": HOOK, "text": "Approved by Jane", "replace_original": True}))
    assert posted == [(HOOK, {"replace_original": True, "text": "Approved by Jane"})]


def test_dead_lettered_job_gets_an_ephemeral_note_naming_why_without_event_values() -> None:
    posted: list[tuple[str, dict[str, Any]]] = []
    dead = {
        "stage": "deliver",
        "reason": "permanent_failure",
        "target": "matter",
        "provider_code": "invalid_field",
    }
    replies(posted).not_recorded(
        job_with({"url": HOOK, "text": "secret deal text", "replace_original": True}, dead)
    )
    [(url, message)] = posted
    assert (url, message["response_type"], message["replace_original"]) == (HOOK, "ephemeral", False)
    assert message["text"].startswith(
        "Not recorded on the customer timeline: matter refused it (invalid_field)"
    )
    assert "secret deal text" not in json.dumps(message)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com.evil.example/actions/T1/1/x",
        "http://hooks.slack.com/actions/T1/1/x",
        "https://evil.example/actions/T1/1/x",
        "https://user@hooks.slack.com/actions/T1/1/x",
        "https://hooks.slack.com",
        "",
    ],
)
def test_a_response_url_off_the_hooks_host_is_never_called(url: str) -> None:
    posted: list[tuple[str, dict[str, Any]]] = []
    replies(posted).recorded(job_with({"url": url, "text": "Approved", "replace_original": True}))
    assert posted == []


def test_at_most_five_posts_per_response_url() -> None:
    posted: list[tuple[str, dict[str, Any]]] = []
    poster = replies(posted)
    for _ in range(MAX_POSTS + 3):
        poster.recorded(job_with({"url": HOOK, "text": "Approved", "replace_original": True}))
    other = HOOK.replace("AbCdEfGh", "Other")
    poster.recorded(job_with({"url": other, "text": "Approved", "replace_original": True}))
    assert [u for u, _ in posted] == [HOOK] * MAX_POSTS + [other]
