"""Through Redis: two `puente worker` processes, one conversation, answers in arrival order."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.messages import Inbound
from bot.runtime import build_runtime
from services.demo import seed
from services.models import Message
from tests.conftest import redis_url

REDIS = redis_url()
pytestmark = pytest.mark.skipif(REDIS is None, reason="no Redis at REDIS_URL or 127.0.0.1:6379")


@pytest.fixture
def workers(settings):
    from redis import Redis

    Redis.from_url(REDIS).flushdb()
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": REDIS,
           "PUENTE_STORAGE_DIR": str(settings.storage_dir)}
    puente = str(Path(sys.executable).parent / "puente")
    procs = [subprocess.Popen([puente, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    yield procs
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a worker stuck in a job: end it rather than hang the suite
            p.kill()
            p.wait(timeout=10)
    Redis.from_url(REDIS).flushdb()


def _wait_all_processed(runtime, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.Session() as s:
            done = s.scalars(select(Message).where(Message.direction == "in", Message.state == "processed")).all()
            sent = s.scalars(select(Message).where(Message.direction == "out", Message.state == "sent")).all()
            pending = s.scalars(select(Message).where(Message.direction == "out", Message.state == "pending")).all()
        if len(done) == count and not pending and sent:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {len(done)} of {count} processed")


def test_two_workers_answer_one_conversation_in_arrival_order(settings, workers):
    runtime = build_runtime(settings.with_(redis_url=REDIS))
    with runtime.Session.begin() as s:
        seed(s)
    script = ["hola", "21/03/1988", "cuánto debo", "qué documentos faltan", "cómo va mi caso", "cuándo es mi cita",
              "cuánto debo", "gracias"]
    other = ["hi", "12/01/1992", "what's my status", "what do I owe"]
    ids = []
    for i, text in enumerate(script):
        ids.append(runtime.accept(Inbound("sms", "+15555550101", f"SM-a{i}", text=text)))
        if i < len(other):
            runtime.accept(Inbound("sms", "+15555550103", f"SM-b{i}", text=other[i]))
    _wait_all_processed(runtime, len(script) + len(other))
    with runtime.Session() as s:
        inbound = s.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)).all()
        order = [m.id for m in sorted(inbound, key=lambda m: (m.processed_at, m.id))]
        intents = [m.intent for m in inbound]
        answers = {m.reply_to_id: m.body for m in s.scalars(select(Message).where(Message.direction == "out"))}
    assert order == ids, "messages of one conversation were processed out of order"
    assert intents[2:7] == ["balance", "checklist", "status", "appointments", "balance"]
    # Answered as verified: the second message verified, so the balance question got amounts.
    assert "$1,020.00" in answers[ids[2]] and "$1,020.00" in answers[ids[6]]
    runtime.close()


def test_our_enqueue_writes_what_rqs_own_enqueue_writes():
    """RQQueue writes the job hash itself (the webhook's hot path): field for field what rq writes."""
    from redis import Redis

    from bot.queue import RQQueue

    redis = Redis.from_url(REDIS)
    redis.flushdb()
    queue = RQQueue(REDIS)
    with redis.pipeline() as pipe:
        queue.queue.enqueue_call("bot.jobs.send_message", args=(7,), job_id="send_message-7", result_ttl=0,
                                 failure_ttl=86400, pipeline=pipe)
        pipe.execute()
    by_rq = redis.hgetall("rq:job:send_message-7")
    redis.flushdb()
    assert queue.enqueue("send_message", 7)
    ours = redis.hgetall("rq:job:send_message-7")
    times = {b"created_at", b"enqueued_at"}
    assert set(ours) == set(by_rq)
    assert {k: v for k, v in ours.items() if k not in times} == {k: v for k, v in by_rq.items() if k not in times}
    assert redis.lrange(queue.queue.key, 0, -1) == [b"send_message-7"]
    assert queue.queue.key.encode() in redis.smembers("rq:queues")
    job = queue.queue.fetch_job("send_message-7")
    assert (job.func_name, job.args, job.get_status()) == ("bot.jobs.send_message", [7], "queued")
    redis.flushdb()
