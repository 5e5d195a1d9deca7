"""Every failure the bridge knows, as exception types.

Ingest errors carry the HTTP status the sender gets; delivery errors say whether a job is retried
or dead-lettered. Code raises these; exactly one place turns each family into an answer
(`http.error_response` for ingest, `delivery` for jobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class BridgeError(Exception):
    """Base class of every error the bridge raises on purpose."""


# --- ingest: answered to the sender -----------------------------------------------------------


class IngestError(BridgeError):
    status = 400
    reason = "bad_request"
    retry_after: int | None = None  # seconds, for a `Retry-After` header on answers worth retrying

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class SignatureError(IngestError):
    """Missing, malformed or wrong signature, or a timestamp outside the tolerance."""

    status = 401
    reason = "signature_invalid"


class SecretNotConfiguredError(IngestError):
    """The source has no secret: refuse everything (fail closed). 5xx so nothing is lost."""

    status = 503
    reason = "secret_not_configured"
    retry_after = 60  # an operator has to set it


class NotFoundError(IngestError):
    """No source answers on this path (e.g. `/generic/<name>` with an invalid name)."""

    status = 404
    reason = "not_found"


class MalformedBodyError(IngestError):
    status = 400
    reason = "malformed_body"


class TimestampOutOfRangeError(MalformedBodyError):
    """A time the sender always sends lies outside what a datetime holds (a 400, not a crash)."""

    reason = "timestamp_out_of_range"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLargeError(IngestError):
    status = 413
    reason = "payload_too_large"


class EnqueueError(IngestError):
    """The events queue or the dedupe store failed: answer 5xx so the sender retries."""

    status = 503
    reason = "enqueue_failed"
    retry_after = 5  # a passing AWS hiccup


# --- mapping -----------------------------------------------------------------------------------


class MappingError(BridgeError):
    """A mapping could not be loaded or rendered. Names the file, the field and the reason."""

    def __init__(self, reason: str, *, mapping_file: str = "", field: str = "", line: int | None = None):
        self.reason = reason
        self.mapping_file = mapping_file
        self.field = field
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.mapping_file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.field, self.reason) if p]
        return ": ".join(parts)


class MappingLoadError(MappingError):
    """One or more mapping files are invalid. `errors` lists every problem found, in file order."""

    def __init__(self, errors: list[MappingError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            f"{len(self.errors)} mapping error(s)" + (f"; first: {first}" if first else ""),
            mapping_file=first.mapping_file if first else "",
        )

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors) or self.reason


# --- delivery: decides what happens to a job ---------------------------------------------------


@dataclass
class DeliveryFailure(BridgeError):
    """The provider did not store the event. Subclasses say whether to try again."""

    message: str
    status: int | None = None
    code: str | None = None
    request_id: str | None = None
    details: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.code) if p)
        return f"{head}: {self.message}" if head else self.message


# Failure codes that name the operator's configuration (a credential or setting every job of the
# target shares), not the job: the target pauses until it is fixed.
CONFIGURATION_CODES = frozenset({"credentials_missing", "target_misconfigured"})


@dataclass
class RetryLaterError(DeliveryFailure):
    """Transient: 429, 5xx, timeout, reset, expired credentials. `retry_after` is the provider's ask."""

    retry_after: float | None = None
    throttled: bool = False
    # The request may have reached the provider (read timeout, connection lost after sending):
    # it may have stored the event. Safe to retry only where the provider dedupes the write.
    ambiguous: bool = False


@dataclass
class PermanentDeliveryError(DeliveryFailure):
    """The provider refused the request for good (validation, unknown object, key conflict)."""
