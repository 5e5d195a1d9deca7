"""A dead letter's reason in one readable line, the provider's details included: what the dev log,
the console and `bridge dlq list` show for both stages."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from timeline_bridge.delivery.outcomes import DETAILS_TEXT_LIMIT, details_text, reason_text
from timeline_bridge.models import DeliveryJob
from timeline_bridge_tools.cli import dlq as dlq_cli
from timeline_bridge_tools.dlq import DeadLetter, QueuePair
from timeline_bridge_tools.local.console import render

STORA_REFUSAL = {
    "reason": "permanent_failure",
    "stage": "deliver",
    "status": 422,
    "provider_code": "invalid_content",
    "provider_message": "The request body content is not valid.",
    "details": [{"message": "value at `/contact` is required by the template", "pointer": "/contact"}],
}
ROUTE_FAILURE = {
    "reason": "mapping_error",
    "stage": "route",
    "field": "body.occurred_at",
    "detail": "not a time: 'dealstage'",
    "message": "mappings/m.yaml:20: body.occurred_at: not a time: 'dealstage'",
}


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        # Stora: the message names its pointer already.
        (STORA_REFUSAL["details"], "value at `/contact` is required by the template"),
        # Matter: {field, code, message}.
        ([{"field": "kind", "code": "required", "message": "kind is required."}], "kind is required."),
        # Applied (drf-standardized-errors): {code, detail, attr}; the attr says where.
        ([{"code": "invalid", "detail": "Not a valid shop.", "attr": "shop"}], "shop: Not a valid shop."),
        # Applied (plain DRF): {field: [messages]}.
        ([{"field": "title", "messages": ["This field is required."]}], "title: This field is required."),
        # HubSpot: {message, in, code}.
        ([{"message": "eventTemplateId is not valid", "in": "body"}], "body: eventTemplateId is not valid"),
        # Anything else: its keys and values.
        ([{"read_bytes": 10, "limit_bytes": 5}], "read_bytes=10, limit_bytes=5"),
        (
            [{"message": "a", "pointer": "/a"}, {"message": "b", "pointer": "/b"}],
            "/a: a; /b: b",
        ),
        ([], ""),
        (None, ""),
        ("not a list", ""),
    ],
)
def test_provider_details_read_as_one_line_when_a_target_lists_reasons(details: Any, expected: str) -> None:
    assert details_text(details) == expected


def test_provider_details_are_cut_to_a_line_when_a_target_lists_many_reasons() -> None:
    many = [{"message": f"value at `/variables/v{i}` must be a string"} for i in range(50)]

    text = details_text(many)

    assert len(text) == DETAILS_TEXT_LIMIT and text.endswith("…")
    assert text.startswith("value at `/variables/v0` must be a string; value at `/variables/v1`")


def test_a_refusal_reads_with_its_status_code_message_and_details_when_deliver_dead_letters_it() -> None:
    assert reason_text(STORA_REFUSAL) == (
        "permanent_failure · 422 · invalid_content · The request body content is not valid. · "
        "value at `/contact` is required by the template"
    )


def test_a_mapping_error_reads_with_its_file_line_field_and_why_when_route_dead_letters_it() -> None:
    assert reason_text(ROUTE_FAILURE) == (
        "mapping_error · mappings/m.yaml:20: body.occurred_at: not a time: 'dealstage'"
    )
    assert reason_text({}) == "" and reason_text(None) == ""


def dead_letter(record: dict[str, Any]) -> DeadLetter:
    job = DeliveryJob(
        key="tb-1f2e3d4c5b6a7980",
        target="stora",
        mapping="hubspot-contact-to-stora",
        mapping_file="mappings/hubspot-contact-to-stora.yaml",
        source="hubspot",
        event_id="1",
        event_type="contact.creation",
        occurred_at=None,
        body={},
        attempts=1,
        dead_letter=record,
    )
    return DeadLetter(queue="stora", message_id="m-1", receipt_handle="rh", body=job.to_json())


def test_a_dead_letter_summary_carries_the_provider_details_when_the_target_gave_some() -> None:
    assert (
        dead_letter(STORA_REFUSAL).summary()["details"] == "value at `/contact` is required by the template"
    )
    assert dead_letter(ROUTE_FAILURE).summary()["details"] == ""


class FakeQueues:
    """What `bridge dlq list` asks of the dlq module: a depth and the first letters of a queue."""

    def __init__(self, letters: list[DeadLetter]) -> None:
        self.letters = letters

    def depth(self, pair: QueuePair) -> int:
        return len(self.letters)

    def peek(self, pair: QueuePair, *, limit: int, where: Any = None) -> list[DeadLetter]:
        return self.letters[:limit]


def test_dlq_list_shows_the_provider_details_after_its_message_when_a_target_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(
        limit=None, json=False, mapping=None, code=None, status=None, since=None, target="stora"
    )
    pair = QueuePair("stora", "https://sqs/stora", "https://sqs/stora-dlq")

    assert dlq_cli._list(FakeQueues([dead_letter(STORA_REFUSAL)]), [pair], args) == 0

    row = capsys.readouterr().out.splitlines()[2]
    assert row.rstrip().endswith(
        "The request body content is not valid. · value at `/contact` is required by the template"
    )


def test_console_dead_letters_show_the_provider_details_when_a_target_refused() -> None:
    message = {"key": "tb-1", "reason": "permanent_failure", "status": 422, "code": "invalid_content"}
    details = "value at `/contact` is required by the template"

    page = render({"dead_letters": {"stora": {"count": 1, "messages": [{**message, "details": details}]}}})

    section = page.split('<section id="dead-letters">', 1)[1].split("</section>", 1)[0]
    assert "<th>details</th>" in section
    assert "value at `/contact` is required by the template" in section
