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
