"""moto's SQS made safe for several pollers at once (the local runtime and the test suites run
moto in-process, with a thread per poller).

moto appends a sent message under the queue's lock, but DeleteMessage rebuilds the queue's message
list without it: two deletes on one queue at once (two pollers of one function) each build a new
list from the old one, and a message sent in between ends up in neither, so it vanishes.
ReceiveMessage also moves messages to the DLQ without the lock. Real SQS loses nothing; here it
showed as jobs that route had enqueued and no worker ever received. `thread_safe()` runs delete,
receive and visibility changes under the queue's lock; the lock is a Condition, so a long poll
waiting on it lets the others in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Setter = Callable[[Any, str, Any], None]


def thread_safe(setter: Setter = setattr) -> None:
    """Wrap moto's SQS methods that touch a queue's messages in the queue's lock. `setter` is how
    the methods are replaced (`monkeypatch.setattr` undoes it after a test). Idempotent."""
    import moto.sqs.models as sqs_models

    queue_class, backend = sqs_models.Queue, sqs_models.SQSBackend
    if getattr(queue_class.delete_message, "thread_safe", False):
        return
    original_delete = queue_class.delete_message

    def delete_message(queue: Any, receipt_handle: str) -> None:
        with queue._messages_lock:
            original_delete(queue, receipt_handle)

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with self.get_queue(queue_name)._messages_lock:
                return method(self, queue_name, *args, **kwargs)

        call.thread_safe = True  # type: ignore[attr-defined]
        return call

    delete_message.thread_safe = True  # type: ignore[attr-defined]
    setter(queue_class, "delete_message", delete_message)
    setter(backend, "receive_message", locked(backend.receive_message))
    setter(backend, "change_message_visibility", locked(backend.change_message_visibility))
