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
