"""`local.moto_sqs.thread_safe`: moto's SQS deletes wait for a send in progress on the same queue."""

from __future__ import annotations

import threading

from timeline_bridge_tools.local import moto_sqs


def test_a_delete_waits_for_a_send_in_progress_when_sqs_is_made_thread_safe(monkeypatch):
    import moto.sqs.models as sqs_models

    moto_sqs.thread_safe(monkeypatch.setattr)
    queue = sqs_models.Queue(name="q", region="eu-west-1", account_id="123456789012")
    message = sqs_models.Message("m-1", "body")
    message.mark_received()
    queue.add_message(message)
    deleted = threading.Event()

    def delete() -> None:
        queue.delete_message(message.receipt_handle)
        deleted.set()

    with queue._messages_lock:  # what add_message holds while it appends
        worker = threading.Thread(target=delete)
        worker.start()
        assert not deleted.wait(0.2)
    assert deleted.wait(5)
    worker.join(5)
    assert queue._messages == []


def test_methods_are_wrapped_once_when_made_thread_safe_twice(monkeypatch):
    import moto.sqs.models as sqs_models

    moto_sqs.thread_safe(monkeypatch.setattr)
    wrapped = sqs_models.Queue.delete_message, sqs_models.SQSBackend.receive_message
    moto_sqs.thread_safe(monkeypatch.setattr)
    assert (sqs_models.Queue.delete_message, sqs_models.SQSBackend.receive_message) == wrapped
