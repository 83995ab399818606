"""Nothing is lost: a queue outage or a crash leaves the message in the database, and the relay finishes it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bot.messages import Inbound
from bot.queue import InProcessQueue, RQQueue
from bot.runtime import build_runtime
from services.demo import seed
from services.models import Message


def test_queue_down_the_message_is_stored_and_answered_when_the_relay_runs(settings):
    runtime = build_runtime(settings.with_(redis_url="redis://127.0.0.1:1/0"))  # nothing listens there
    assert isinstance(runtime.queue, RQQueue)
    with runtime.Session.begin() as s:
        seed(s)
    earlier = datetime.now(timezone.utc) - timedelta(minutes=2)
    message_id = runtime.accept(Inbound("sms", "+15555550101", "SM-outage", text="hola", received_at=earlier))
    assert message_id is not None  # stored and acknowledged although the queue is down
    assert runtime.health()[0] == "degraded"
    with runtime.Session() as s:
        assert s.get(Message, message_id).state == "received"

    # The queue comes back (here: the in-process one); the relay finds the waiting row.
    runtime.queue = InProcessQueue({"process_message": runtime.process_message, "send_message": runtime.send_message})
    assert runtime.relay() == 1
    runtime.queue.join()
    with runtime.Session() as s:
        assert s.get(Message, message_id).state == "processed"
        reply = s.scalar(select(Message).where(Message.reply_to_id == message_id))
    assert reply.state == "sent" and "fecha de nacimiento" in reply.body
    assert runtime.relay() == 0  # nothing left: no second answer
    runtime.close()


def test_a_lost_job_is_found_by_the_relay_and_answered_once(settings):
    """A job that never ran (a worker died holding it): the row is still `received`; the relay redoes it."""
    runtime = build_runtime(settings, in_process=True)
    with runtime.Session.begin() as s:
        seed(s)
    crashed = runtime.queue
    runtime.queue = type("LostQueue", (), {"enqueue": lambda self, job, item: False, "join": lambda self: None})()
    earlier = datetime.now(timezone.utc) - timedelta(minutes=2)
    message_id = runtime.accept(Inbound("sms", "+15555550103", "SM-crash", text="hi", received_at=earlier))
    runtime.queue = crashed
    assert runtime.relay() == 1
    runtime.queue.join()
    with runtime.Session() as s:
        replies = s.scalars(select(Message).where(Message.reply_to_id == message_id)).all()
    assert [r.state for r in replies] == ["sent"] and "date of birth" in replies[0].body
    runtime.close()


class RecordingChannel:
    """Stands in for a provider: counts what reached it."""

    def __init__(self):
        self.sent = []

    def send(self, address, reply):
        from channels.base import SendResult

        self.sent.append(reply.text)
        return SendResult("sent", provider_id=f"P{len(self.sent)}")


def test_a_worker_dying_mid_send_never_sends_the_reply_twice(settings):
    runtime = build_runtime(settings, in_process=True)
    provider = RecordingChannel()
    runtime.channels["sms"] = provider
    runtime.queue = type("NoJobs", (), {"enqueue": lambda self, job, item: True, "join": lambda self: None})()
    message_id = runtime.accept(Inbound("sms", "+15555550103", "SM-die", text="hi"))
    runtime.process_message(message_id)
    with runtime.Session() as s:
        reply_id = s.scalar(select(Message.id).where(Message.reply_to_id == message_id))
    # The worker marks the reply `sending`, the provider accepts it, and the worker dies before recording.
    step = runtime._send_step(reply_id, None, None)
    runtime.channels["sms"].send(step[2], step[3])
    with runtime.Session.begin() as s:  # its lease runs out
        s.get(Message, reply_id).locked_until = datetime.now(timezone.utc) - timedelta(seconds=1)
    runtime.relay()
    runtime.send_message(reply_id)
    with runtime.Session() as s:
        assert s.get(Message, reply_id).state == "unknown"
    assert len(provider.sent) == 1  # reconciled later, never resent blindly
    runtime.close()


def test_replies_written_before_stop_are_not_sent_after_it(settings):
    runtime = build_runtime(settings, in_process=True)
    provider = RecordingChannel()
    runtime.channels["sms"] = provider
    held = []
    real_queue = runtime.queue
    runtime.queue = type("Hold", (), {"enqueue": lambda self, job, item: held.append((job, item)) or True,
                                     "join": lambda self: None})()
    first = runtime.accept(Inbound("sms", "+15555550103", "SM-1", text="hi"))
    runtime.process_message(first)           # its reply waits in the outbox (the send job is held)
    stop = runtime.accept(Inbound("sms", "+15555550103", "SM-2", text="STOP"))
    runtime.process_message(stop)
    runtime.queue = real_queue
    for job, item in held:
        if job == "send_message":
            runtime.send_message(item)
    assert len(provider.sent) == 1 and "START" in provider.sent[0]  # only the one confirmation
    runtime.close()
