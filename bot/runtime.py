"""The composition root: builds the database, queue, engine and channels once, and runs jobs."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker

from bot.engine import Engine, Processed
from bot.messages import Inbound, Reply
from bot.queue import InProcessQueue, RQQueue
from bot.settings import Settings
from channels.base import SendResult
from channels.simulator import SimulatorChannel
from services import audit
from services.db import make_engine, make_sessionmaker, utcnow
from services.models import Conversation, Message
from services.storage import FileStore

log = logging.getLogger(__name__)
MAX_PROCESS_ATTEMPTS = 3
MAX_SEND_ATTEMPTS = 8
SEND_LEASE = timedelta(seconds=60)
RELAY_AFTER = timedelta(seconds=30)


@dataclass
class Runtime:
    settings: Settings
    db: object
    Session: sessionmaker
    engine: Engine
    channels: dict = field(default_factory=dict)
    queue: object = None

    # -- the doors ------------------------------------------------------------------------
    def accept(self, inbound: Inbound) -> int | None:
        """Stores an inbound message, commits, then enqueues it. Returns None for a replay."""
        with self.Session.begin() as session:
            message_id = self.engine.accept(session, inbound)
        if message_id is not None:
            self.queue.enqueue("process_message", message_id)
        return message_id

    # -- jobs -------------------------------------------------------------------------------
    def process_message(self, message_id: int) -> None:
        """Processes the conversation's waiting messages, oldest first, up to and including this one.

        The conversation row is locked while one message is handled, so two workers never
        handle one conversation at once and messages are answered in arrival order.
        """
        owner = select(Message.conversation_id).where(Message.id == message_id).scalar_subquery()
        while True:
            handled_id, result = None, None
            try:
                with self.Session.begin() as session:
                    conv = session.scalar(select(Conversation).where(Conversation.id == owner).with_for_update())
                    msg = conv and session.scalar(
                        select(Message).where(Message.conversation_id == conv.id, Message.direction == "in",
                                              Message.state == "received", Message.id <= message_id)
                        .order_by(Message.id).limit(1)
                    )
                    if msg is None:
                        return  # already handled (a replayed job, or drained by an earlier one)
                    handled_id = msg.id
                    result = self.engine.process(session, conv, msg)
            except Exception:
                if handled_id is None:
                    raise  # the database itself failed: the job fails and the relay retries it
                log.exception("processing message %s failed", handled_id)
                self._count_failure(handled_id)
            if result and result.outbound_ids:
                # One send job per processed message; it sends the conversation's replies in order.
                self.queue.enqueue("send_message", result.outbound_ids[-1])
            if handled_id == message_id:
                return

    def _count_failure(self, message_id: int) -> None:
        """A message whose processing raised is tried again; after MAX_PROCESS_ATTEMPTS it is failed and audited."""
        with self.Session.begin() as session:
            msg = session.get(Message, message_id, with_for_update=True)
            msg.attempts += 1
            if msg.attempts >= MAX_PROCESS_ATTEMPTS:
                msg.state, msg.error = "failed", "processing failed"
                audit.record(session, "system", "message_failed", f"message:{msg.id}", {"attempts": msg.attempts})

    def send_message(self, message_id: int) -> None:
        """Sends the conversation's pending replies, oldest first, up to and including this one.

        A batch is claimed under a lease; while one job holds a lease on a conversation, no other
        job sends for it, so replies reach the person in the order they were written. Replies
        that arrive while a batch is out are picked up by the same job when it records the batch.
        """
        batch = self._claim_replies(message_id)
        while batch:
            conv_id, channel_name, address, rows = batch
            channel = self.channels[channel_name]
            results = []
            for out_id, reply in rows:
                try:
                    result = channel.send(address, reply)
                except Exception as exc:  # the outcome is not known: never resend blindly
                    log.exception("send of message %s raised", out_id)
                    result = SendResult("unknown", error=type(exc).__name__)
                results.append((out_id, result))
                if result.state != "sent":
                    break  # later replies wait behind this one (the relay retries them)
            batch = self._record_sends(conv_id, rows, results)

    def _claim(self, session, conv: Conversation, upto: int | None):
        """Leases the conversation's pending replies (up to `upto`), unless another job holds a lease."""
        now = utcnow()
        query = select(Message).where(Message.conversation_id == conv.id, Message.direction == "out",
                                      Message.state == "pending")
        if upto is not None:
            query = query.where(Message.id <= upto)
        pending = session.scalars(query.order_by(Message.id)).all()
        if not pending or any(m.locked_until and m.locked_until > now for m in pending):
            return None
        for m in pending:
            m.attempts += 1
            m.locked_until = now + SEND_LEASE
        rows = [(m.id, Reply.from_dict({"text": m.body, "choices": (m.payload or {}).get("choices", [])})) for m in pending]
        return conv.id, conv.channel, conv.address, rows

    def _claim_replies(self, message_id: int):
        owner = select(Message.conversation_id).where(Message.id == message_id, Message.direction == "out").scalar_subquery()
        with self.Session.begin() as session:
            conv = session.scalar(select(Conversation).where(Conversation.id == owner).with_for_update())
            return self._claim(session, conv, message_id) if conv else None

    def _record_sends(self, conv_id: int, rows, results):
        """Records each outcome; releases replies that were not tried; claims replies that arrived meanwhile."""
        tried = dict(results)
        with self.Session.begin() as session:
            conv = session.scalar(select(Conversation).where(Conversation.id == conv_id).with_for_update())
            messages = session.scalars(select(Message).where(Message.id.in_([out_id for out_id, _ in rows]))).all()
            for msg in messages:
                result = tried.get(msg.id)
                if result is None:
                    msg.locked_until = None  # not tried: waits behind the one that failed
                elif result.state == "sent":
                    msg.state, msg.provider_id, msg.sent_at, msg.locked_until = "sent", result.provider_id, utcnow(), None
                elif result.state == "retry" and msg.attempts < MAX_SEND_ATTEMPTS:
                    msg.locked_until = utcnow() + timedelta(seconds=min(600, 2 ** msg.attempts))
                    msg.error = result.error
                else:
                    msg.state = "dead" if result.state == "retry" else result.state
                    msg.error, msg.locked_until = result.error, None
                    audit.record(session, "system", "send_" + msg.state, f"message:{msg.id}", {"error": result.error})
            if any(r.state != "sent" for _, r in results):
                return None
            session.flush()
            return self._claim(session, conv, None)

    def relay(self) -> int:
        """Re-enqueues work whose job was lost (queue down, crash): the rows say what is left."""
        cutoff = utcnow() - RELAY_AFTER
        with self.Session() as session:
            inbound = session.scalars(select(Message.id).where(
                Message.direction == "in", Message.state == "received", Message.received_at < cutoff).order_by(Message.id)).all()
            outbound = session.scalars(select(Message.id).where(
                Message.direction == "out", Message.state == "pending", Message.received_at < cutoff,
                (Message.locked_until.is_(None)) | (Message.locked_until < utcnow())).order_by(Message.id)).all()
        for mid in inbound:
            self.queue.enqueue("process_message", mid)
        for mid in outbound:
            self.queue.enqueue("send_message", mid)
        return len(inbound) + len(outbound)

    def start_relay(self, interval: float = 15.0) -> threading.Thread:
        """Runs the relay now and then every `interval` seconds on a daemon thread."""
        def loop():
            while True:
                try:
                    self.relay()
                except Exception:
                    log.exception("relay pass failed")
                time.sleep(interval)

        thread = threading.Thread(target=loop, name="puente-relay", daemon=True)
        thread.start()
        return thread

    def wait_processed(self, message_id: int, timeout: float = 30.0) -> Message | None:
        """Waits until a message has been processed (for `puente chat` and tests)."""
        self.queue.join()
        deadline = time.monotonic() + timeout
        while True:
            with self.Session() as session:
                msg = session.get(Message, message_id)
                if msg is not None and msg.state != "received":
                    return msg
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def health(self) -> tuple[str, list[str]]:
        """('ok' | 'degraded', reasons)."""
        problems = []
        try:
            with self.db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            problems.append("database unreachable")
        if isinstance(self.queue, RQQueue) and not self.queue.healthy():
            problems.append("redis unreachable; messages wait in the database")
        return ("degraded" if problems else "ok"), problems

    def close(self) -> None:
        self.db.dispose()


def build_runtime(settings: Settings, *, in_process: bool | None = None) -> Runtime:
    """Builds everything once from Settings. Without REDIS_URL (or in_process=True) jobs run in-process."""
    db = make_engine(settings.database_url)
    runtime = Runtime(settings=settings, db=db, Session=make_sessionmaker(db), engine=Engine(files=FileStore(settings.storage_dir)))
    # Providers come with the channels work; until one is configured its replies go to the simulator.
    runtime.channels = {name: SimulatorChannel(name) for name in ("sms", "whatsapp", "telegram")}
    use_rq = settings.redis_url and not in_process
    # SQLite takes one writer at a time, so more threads would only wait on its lock.
    threads = 1 if settings.is_sqlite else 4
    runtime.queue = RQQueue(settings.redis_url) if use_rq else InProcessQueue(
        {"process_message": runtime.process_message, "send_message": runtime.send_message}, threads=threads)
    return runtime
