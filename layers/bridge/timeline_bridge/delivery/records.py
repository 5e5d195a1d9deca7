"""Delivered-records: the claim of each delivery job, so a job is sent to its provider once."""

from __future__ import annotations

import copy
from typing import Any

from timeline_bridge import config
from timeline_bridge.claims import ClaimStore
from timeline_bridge.models import DeliveryJob

MIN_RECORD_TTL = config.MIN_RECORD_TTL


class DeliveredRecords(ClaimStore):
    """Powertools idempotency records on DynamoDB, one per job key (`deliver#<target>#<md5>`).

    Claimed, not decorated, because one provider request can carry a hundred jobs: each is claimed
    before the request and COMPLETED only after the provider confirmed it (the jobs of one request
    together). The INPROGRESS record expires with the invocation (`in_progress_expiration`), so a
    worker killed mid-send never blocks the job: the next delivery re-runs (FM-04).
    """

    def __init__(
        self,
        table: str,
        target: str,
        *,
        dynamodb: Any,
        ttl: int = 14 * 86_400,
        validate_payload: bool = True,  # False: a reader that knows the job key, not the body
    ) -> None:
        super().__init__(
            table,
            key_prefix=f"deliver#{target}",
            key_field="key",
            payload_field="body" if validate_payload else None,
            expires_after_seconds=max(ttl, MIN_RECORD_TTL),
            dynamodb=dynamodb,
            label="delivered-record",
        )

    @staticmethod
    def data(job: DeliveryJob) -> dict[str, Any]:
        """What the record is keyed and validated on; a snapshot, so a client touching the body
        cannot change the hash between claim and completion."""
        return {"key": job.key, "body": copy.deepcopy(job.body)}
