"""The route stage sends the jobs of a whole SQS batch together: one SendMessageBatch per queue and
ten messages, and a refused job fails only the record it came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from delivery_harness import FAULT_MAPPINGS, envelopes
from timeline_bridge import TARGETS, route
from timeline_bridge.config import Settings
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import DeliveryJob


class RecordingQueue(route.SqsJobQueue):
    """The SQS job queue, recording each send and refusing the jobs in `refused` ((event id,
    target) pairs) as SQS refuses an entry of a batch."""

    def __init__(self, sqs: Any, refused: frozenset[tuple[str, str]] = frozenset()) -> None:
        super().__init__(sqs)
        self.sends: list[tuple[str, int]] = []
        self.refused = refused

    def send(self, queue_url: str, messages: Sequence[DeliveryJob]) -> list[int]:
        self.sends.append((queue_url, len(messages)))
        kept = [i for i, job in enumerate(messages) if (job.event_id, job.target) not in self.refused]
        failed = super().send(queue_url, [messages[i] for i in kept])
        return sorted(set(range(len(messages))) - set(kept) | {kept[i] for i in failed})


def sqs_event(bodies: Sequence[str]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"msg-{i}", "receiptHandle": f"rh-{i}", "body": body, "attributes": {}}
            for i, body in enumerate(bodies)
        ]
    }


def router(queue: RecordingQueue) -> route.Router:
    return route.Router(
        mappings=load_mappings(FAULT_MAPPINGS),
        queue=queue,
        queue_url=Settings.from_environ().queue_url,
        enrich=no_enrichment,
    )


def test_jobs_of_ten_events_go_out_in_one_call_per_queue_when_they_arrive_in_one_batch(aws, lambda_context):
    batch = envelopes(10, "batched")
    queue = RecordingQueue(aws.sqs)
    answer = route.handle(sqs_event([e.to_json() for e in batch]), lambda_context, router=router(queue))
    assert answer == {"batchItemFailures": []}
    assert sorted(url for url, _ in queue.sends) == sorted(aws.queues[t] for t in TARGETS)
    assert sum(n for _, n in queue.sends) == 15  # 3 HubSpot x 2, 3 Slack, 2 Pipedrive, 2 generic x 2
    assert {t: aws.count(t) for t in TARGETS} == {"stora": 3, "hubspot": 5, "matter": 5, "applied": 2}


def test_only_the_record_whose_job_was_refused_fails_when_a_queue_refuses_part_of_a_batch(
    aws, lambda_context
):
    batch = envelopes(10, "refusal")
    queue = RecordingQueue(aws.sqs, refused=frozenset({("refusal-hs-0", "stora")}))
    answer = route.handle(sqs_event([e.to_json() for e in batch]), lambda_context, router=router(queue))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}  # routed again later
    assert aws.count("stora") == 2
    # The event's other job did get out; routing it again yields the same key (deliver dedupes).
    hubspot = [DeliveryJob(**body) for body in aws.receive("hubspot")]
    assert sum(job.event_id == "refusal-hs-0" for job in hubspot) == 1


def test_a_failing_record_does_not_hold_back_the_others_when_its_envelope_is_unreadable(aws, lambda_context):
    batch = [e.to_json() for e in envelopes(4, "mixed")]
    batch.insert(2, "{not an envelope")
    queue = RecordingQueue(aws.sqs)
    answer = route.handle(sqs_event(batch), lambda_context, router=router(queue))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-2"}]}
    assert sum(aws.count(t) for t in TARGETS) == 7  # 3 HubSpot events x 2 jobs, 1 Slack event
