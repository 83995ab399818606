"""The composition root: builds the database, queue, engine and channels once, and runs jobs."""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import sessionmaker

from bot.engine import Engine
from bot.payments import PaymentDesk
from bot.messages import Inbound, Reply
from bot.queue import InProcessQueue, RQQueue
from bot.settings import Settings
from channels.base import MediaTooLarge, SendResult
from dialogs.base import PayOptions
from channels.simulator import SimulatorChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel
from services import audit
from services.db import make_engine, make_sessionmaker, utcnow
from services import delivery
from services import handoffs
from services.contacts import set_opted_out, sms_allowed
from services import intake, outreach, staff_copy
from services import proactive, webhooks
from services.firm import get_firm
from services.antivirus import ClamdScanner
from services.models import ChecklistItem, Conversation, Document, Handoff, Message, ProviderReceipt, WebhookDelivery
from services.vault import MasterKeys, Vault

log = logging.getLogger(__name__)
MAX_PROCESS_ATTEMPTS = 3
MAX_MEDIA_ATTEMPTS = 3
MEDIA_LEASE = timedelta(minutes=2)  # how long one job may hold a message's downloads before another takes over
AWAITING_WINDOW = "awaiting_window"  # a reply held until the person writes (their window reopens)
TEMPLATE_BODY = "[approved WhatsApp template \"%s\": you have a new message]"  # % purpose
MAX_SEND_ATTEMPTS = 8
SEND_LEASE = timedelta(seconds=60)
RELAY_AFTER = timedelta(seconds=30)
RECONCILE_FOR = timedelta(days=1)  # how long the reconciler keeps asking a provider about an `unknown` send


# The send step's statements, built once (they run twice for every reply).
_OUT = Message.__table__
_SEND_LOCK = select(Conversation.id, Conversation.channel, Conversation.address, Conversation.last_inbound_at,
                    Conversation.opted_out_at).with_for_update()
_SEND_WAITING = (select(Message.id, Message.state, Message.error, Message.locked_until, Message.received_at,
                        Message.attempts, Message.body, Message.payload)
                 .where(Message.conversation_id == bindparam("conversation_id"), Message.direction == "out",
                        Message.state.in_(("pending", "sending")))
                 .order_by(Message.id))
_MARK_SENDING = _OUT.update().where(_OUT.c.id == bindparam("mid")).values(
    state="sending", attempts=bindparam("attempts"), locked_until=bindparam("until"))
_MARK_SENT = _OUT.update().where(_OUT.c.id == bindparam("mid")).values(
    state="sent", provider_id=bindparam("provider_id"), sent_at=bindparam("now"), locked_until=None)
_CANCEL = _OUT.update().where(_OUT.c.id == bindparam("mid")).values(state="cancelled", error="opted out")
_SET_ERROR = _OUT.update().where(_OUT.c.id == bindparam("mid")).values(error=bindparam("error"))
_EARLY_RECEIPT = select(ProviderReceipt.id).where(ProviderReceipt.provider_id == bindparam("provider_id"),
                                                  ProviderReceipt.matched.is_(False)).limit(1)


def _media_to_fetch(media: list[dict]) -> list[dict]:
    """Attachments still to download: a provider URL, not stored yet, not given up on."""
    return [m for m in media or [] if m.get("url") and "document_id" not in m and "error" not in m]


def _media_to_prepare(media: list[dict]) -> bool:
    """Whether some attachment is still to download, or stored but not yet checked."""
    return bool(_media_to_fetch(media)) or any("document_id" in m and not m.get("checked") for m in media or [])


@dataclass
class Runtime:
    settings: Settings
    db: object
    Session: sessionmaker
    engine: Engine
    channels: dict = field(default_factory=dict)
    queue: object = None
    vault: Vault | None = None
    scanner: ClamdScanner | None = None
    payments: object = None  # bot.payments.PaymentDesk
    webhook_sender: webhooks.Sender = field(default_factory=webhooks.Sender)

    def __post_init__(self) -> None:
        # The webhook's store step (see accept): its own small pool of autocommit connections, so no
        # connection changes mode at every checkout. SQLite keeps its BEGIN IMMEDIATE transaction.
        self.ingest_db = (make_engine(self.db.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT",
                                      pool_size=4, max_overflow=4)
                          if self.db.dialect.name == "postgresql" else None)

    # -- the doors ------------------------------------------------------------------------
    def accept(self, inbound: Inbound) -> int | None:
        """Stores an inbound message, commits, then enqueues it. Returns None for a replay.

        On PostgreSQL a message without inline file bytes (every provider webhook) is stored in
        autocommit: each of accept's statements is atomic on its own (ON CONFLICT DO NOTHING) and
        committed when it returns, which spares the BEGIN and COMMIT round trips of the hot path.
        """
        autocommit = self.ingest_db is not None and not any(m.content is not None for m in inbound.media)
        with (self.ingest_db.connect() if autocommit else self.db.begin()) as conn:
            message_id = self.engine.accept(conn, inbound)
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
            handled_id, result, fetch_first, busy = None, None, None, False
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
                    if _media_to_prepare(msg.media):
                        now = utcnow()
                        if msg.locked_until is not None and msg.locked_until > now:
                            busy = True  # another job is fetching this message's files: wait for it
                        else:
                            msg.locked_until = now + MEDIA_LEASE  # one job fetches a message's files
                            fetch_first = msg.id  # download and check outside the lock, then come back for it
                    else:
                        handled_id = msg.id
                        result = self.engine.process(session, conv, msg)
            except Exception:
                if handled_id is None:
                    raise  # the database itself failed: the job fails and the relay retries it
                log.error("processing message %s failed", handled_id, exc_info=True)
                self._count_failure(handled_id)
            if busy:
                time.sleep(0.2)
                continue
            if fetch_first is not None:
                try:
                    self._prepare_media(fetch_first)
                finally:
                    with self.Session.begin() as session:
                        session.execute(update(Message).where(Message.id == fetch_first).values(locked_until=None))
                continue
            if result and result.outbound_ids:
                # One send job per processed message; it sends the conversation's replies in order.
                self.queue.enqueue("send_message", result.outbound_ids[-1])
            for item_id in (result.filed_items if result else ()):
                self.queue.enqueue("build_staff_copy", item_id)
            if result and result.handoff_id:
                self.queue.enqueue("summarise_handoff", result.handoff_id)
                if self.settings.smtp_url:
                    self.queue.enqueue("notify_staff", result.handoff_id)
            if handled_id == message_id:
                return

    def _prepare_media(self, message_id: int) -> None:
        """Downloads a message's attachments from its provider and checks every file (type, decode
        limits, quality, virus scan), all outside any lock; the verdicts go on the Document rows and
        what could not be received (e.g. too large) is noted on the message.
        A download error propagates: the job fails and the relay tries again."""
        with self.Session() as session:
            msg = session.get(Message, message_id)
            if msg is None or msg.state != "received" or not msg.media:
                return
            media, channel_name, provider_id = [dict(m) for m in msg.media], msg.channel, msg.provider_id
        channel = self.channels[channel_name]
        fetch = getattr(channel, "fetch_media", None)
        todo = _media_to_fetch(media)
        if fetch is None:  # this channel cannot download (e.g. the simulator): say so, do not wait forever
            for item in todo:
                item["error"] = "unavailable"
            todo = []
        for item in todo:
            try:
                data = self._download(fetch, item["url"])
            except MediaTooLarge as exc:
                item["error"], item["cap"] = "too_large", exc.cap
                continue
            except PermissionError:  # not our provider account's URL: never sent credentials, never fetched
                item["error"] = "refused"
                continue
            except Exception as exc:
                item["attempts"] = item.get("attempts", 0) + 1
                if item["attempts"] < MAX_MEDIA_ATTEMPTS:
                    with self.Session.begin() as session:
                        session.get(Message, message_id).media = [dict(m) for m in media]
                    raise  # the job fails; the relay tries again later
                log.warning("giving up on media of message %s: %s", message_id, type(exc).__name__)
                item["error"] = "unavailable"
                continue
            verdict = intake.check(data, self.scanner)
            stored = self.vault.put(data)
            with self.Session.begin() as session:
                doc = Document(message_id=message_id, channel=channel_name, provider_message_id=provider_id,
                               filename=item.get("filename"), sha256=stored.sha256,
                               mime=item.get("content_type") or "application/octet-stream", size=stored.size,
                               storage_key=stored.key, wrapped_key=stored.wrapped_key, key_id=stored.key_id,
                               status="stored", info={})
                session.add(doc)
                session.flush()
                intake.apply(session, doc, verdict)
                item["document_id"], item["checked"] = doc.id, True
                session.get(Message, message_id).media = [dict(m) for m in media]
            if hasattr(channel, "delete_media"):
                try:
                    channel.delete_media(item["url"])
                except Exception as exc:  # our copy is safe; the provider's copy is removed next time
                    log.warning("could not delete provider copy of media for message %s: %s", message_id, type(exc).__name__)
        for item in media:  # files that came with their bytes (stored at accept): check them now
            if "document_id" in item and not item.get("checked"):
                with self.Session.begin() as session:
                    doc = session.get(Document, item["document_id"])
                    try:
                        data = intake.open_document(session, self.vault, doc)
                    except intake.TamperedFile:
                        data = None
                    if data is not None:
                        intake.apply(session, doc, intake.check(data, self.scanner))
                item["checked"] = True
        with self.Session.begin() as session:
            session.get(Message, message_id).media = media

    def build_staff_copy(self, item_id: int) -> None:
        """Rebuilds one checklist item's staff PDF from its available originals (a job)."""
        with self.Session.begin() as session:
            item = session.get(ChecklistItem, item_id, with_for_update=True)
            if item is not None:
                staff_copy.rebuild(session, self.vault, item, self.engine.clock())

    def rescan_documents(self) -> int:
        """Scans files a scanner outage left waiting; infected ones are taken off their item and the
        client is asked for a new copy. Returns how many were scanned clean or infected."""
        if self.scanner is None:
            return 0
        with self.Session.begin() as session:
            firm = self.engine.firm(session)
            now = self.engine.clock()
            pending_items = {d.item_id for d in session.scalars(select(Document).where(Document.scan_status == "pending"))}
            infected = intake.rescan_pending(session, self.vault, self.scanner, now)
            notices = []
            for doc in infected:
                if doc.uploader_client_id:
                    notices.append(outreach.notify(
                        session, doc.uploader_client_id,
                        lambda t: t.gettext("Our security check did not accept a file you sent us. Please send a new photo of the document instead."),
                        firm=firm, now=now, reason="document_infected"))
            still = {d.item_id for d in session.scalars(select(Document).where(Document.scan_status == "pending"))}
        self.queue_sends(n.id for n in notices if n is not None)
        for item_id in pending_items - still - {None}:
            self.queue.enqueue("build_staff_copy", item_id)
        return len(pending_items - still)

    @staticmethod
    def _download(fetch, url: str, attempts: int = 3) -> bytes:
        """A brief 404 (media not ready yet at the provider) is retried a few times."""
        import requests

        for attempt in range(attempts):
            try:
                return fetch(url)
            except requests.HTTPError as exc:
                if exc.response is None or exc.response.status_code != 404 or attempt == attempts - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError("unreachable")

    def _count_failure(self, message_id: int) -> None:
        """A message whose processing raised is tried again; after MAX_PROCESS_ATTEMPTS the client is
        told a person will answer, staff get a handoff, and the failure is audited."""
        apology: tuple[int, ...] = ()
        with self.Session.begin() as session:
            msg = session.get(Message, message_id, with_for_update=True)
            msg.attempts += 1
            if msg.attempts >= MAX_PROCESS_ATTEMPTS:
                conv = session.scalar(select(Conversation).where(Conversation.id == msg.conversation_id).with_for_update())
                apology = self.engine.give_up(session, conv, msg).outbound_ids
        if apology:
            self.queue.enqueue("send_message", apology[-1])

    def queue_sends(self, message_ids) -> None:
        """Queues the send of outbox rows written by a committed transaction (notices, staff replies)."""
        for message_id in message_ids:
            if message_id is not None:
                self.queue.enqueue("send_message", message_id)

    def send_message(self, message_id: int) -> None:
        """Sends the conversation's pending replies one at a time, oldest first.

        Before each provider call the reply is marked `sending` in its own commit. A worker that
        dies after the provider accepted leaves it `sending`, and the relay turns it `unknown`
        (to reconcile, never to resend), so nobody gets the same message twice. While a reply of
        a conversation is in flight or waiting to retry, no other job sends for it: replies
        arrive in the order they were written.
        """
        step = self._send_step(message_id, None, None)
        while step:
            out_id, channel_name, address, reply = step
            try:
                result = self.channels[channel_name].send(address, reply)
            except Exception as exc:  # the outcome is not known: never resend blindly
                log.error("send of message %s raised %s", out_id, type(exc).__name__)
                result = SendResult("unknown", error=type(exc).__name__)
            step = self._send_step(message_id, out_id, result)

    def _send_step(self, upto: int, done_id: int | None, result: SendResult | None):
        """Records the last outcome (if any) and marks the next reply `sending`; None when there is none."""
        now = utcnow()
        owner = select(Message.conversation_id).where(Message.id == (done_id or upto)).scalar_subquery()
        with self.Session.begin() as session:
            session.info["puente_after_commit_sends"] = []
            step = self._send_step_in(session, owner, upto, done_id, result, now)
            rerouted = session.info.pop("puente_after_commit_sends", [])
        for copy_id in rerouted:  # enqueued only after commit
            self.queue.enqueue("send_message", copy_id)
        return step

    def _send_step_in(self, session, owner, upto: int, done_id: int | None, result: SendResult | None, now):
        """Inside the transaction: record the last outcome, pick and mark the next reply.

        Runs for every reply twice (mark, then record), so the usual path reads plain rows and
        writes with prebuilt UPDATEs; the rare ones (retry, failure, opt-out, a closed WhatsApp
        window, an early receipt) load the ORM objects they change. The conversation is locked in
        its own statement and the replies read in the next, so under READ COMMITTED they show what
        the previous holder of the lock committed.
        """
        conv = session.execute(_SEND_LOCK.where(Conversation.id == owner)).first()
        if conv is None:
            return None
        waiting = session.execute(_SEND_WAITING, {"conversation_id": conv.id}).all()
        if done_id is not None:
            waiting = [m for m in waiting if m.id != done_id]
            if result.state == "sent":
                session.execute(_MARK_SENT, {"mid": done_id, "provider_id": result.provider_id, "now": now})
                if session.scalar(_EARLY_RECEIPT, {"provider_id": result.provider_id}) is not None:
                    delivery.apply_early_receipts(session, session.get(Message, done_id))
            else:
                self._record_send(session, session.get(Message, done_id), result, now)
            if result.error == "opted_out":  # the carrier says this number texted STOP
                set_opted_out(session, session.get(Conversation, conv.id), now, words="carrier opt-out")
            if result.state != "sent":
                return None  # later replies wait behind this one
        window = getattr(self.channels[conv.channel], "session_window", None)
        closed = bool(window and conv.last_inbound_at and now - conv.last_inbound_at > window)
        for msg in waiting:
            if msg.error == AWAITING_WINDOW:
                if closed:
                    continue  # held until the person writes again
                session.execute(_SET_ERROR, {"mid": msg.id, "error": None})  # they wrote: it goes now, in order
            if msg.state == "sending" or (msg.locked_until and msg.locked_until > now):
                return None  # in flight or backing off: that job (or the relay) carries on
            if conv.opted_out_at and msg.received_at < conv.opted_out_at:
                session.execute(_CANCEL, {"mid": msg.id})  # written before STOP: not sent
                continue
            if done_id is None and msg.id > upto:
                return None
            if closed and not (msg.payload or {}).get("template"):
                # Outside the provider's free-form window: never attempted there.
                self._outside_window(session, session.get(Conversation, conv.id), session.get(Message, msg.id), now)
                continue
            session.execute(_MARK_SENDING, {"mid": msg.id, "attempts": msg.attempts + 1, "until": now + SEND_LEASE})
            reply = Reply.from_dict({"text": msg.body, **(msg.payload or {})})
            return msg.id, conv.channel, conv.address, reply
        return None

    def _outside_window(self, session, conv: Conversation, msg: Message, now) -> None:
        """A reply that can no longer go free-form on WhatsApp: with the firm's approved template for
        its purpose and language, the template goes now and the reply waits until the person writes;
        else it goes by SMS when the person consented to SMS on that number; else staff take it."""
        templates = (self.engine.firm(session).settings or {}).get("whatsapp_templates", {})
        template = outreach.approved_template(templates, outreach.template_purpose(msg.payload), msg.language or "es")
        if template:
            purpose, content_sid = template
            msg.error = AWAITING_WINDOW
            already = session.scalar(select(Message.id).where(
                Message.conversation_id == conv.id, Message.direction == "out", Message.id != msg.id,
                Message.state == "pending", Message.error == AWAITING_WINDOW))
            if already is None:  # one notice per closed window
                notice = Message(conversation_id=conv.id, direction="out", channel=conv.channel, reply_to_id=msg.reply_to_id,
                                 body=TEMPLATE_BODY % purpose, media=[], state="pending", attempts=0, language=msg.language,
                                 payload={"choices": [], "template": {"content_sid": content_sid, "purpose": purpose,
                                                                      "variables": {"1": self.engine.firm(session).name}}},
                                 received_at=now)
                session.add(notice)
                session.flush()
                session.info.setdefault("puente_after_commit_sends", []).append(notice.id)
            return
        msg.state, msg.error = "failed", "outside_window"
        audit.record(session, "system", "send_failed", f"message:{msg.id}", {"error": msg.error})
        if "sms" in self.channels and sms_allowed(session, conv.address):
            sms = session.scalar(select(Conversation).where(Conversation.channel == "sms", Conversation.address == conv.address))
            if sms is None:
                sms = Conversation(channel="sms", address=conv.address, status="bot", state={}, version=0,
                                   failed_verifications=0, unknown_streak=0, created_at=now)
                session.add(sms)
                session.flush()
            copy = Message(conversation_id=sms.id, direction="out", channel="sms", reply_to_id=msg.reply_to_id,
                           body=msg.body, payload=dict(msg.payload or {}), media=[], state="pending", attempts=0,
                           language=msg.language, received_at=now, client_id=msg.client_id, matter_id=msg.matter_id)
            session.add(copy)
            session.flush()
            msg.error = f"outside_window; sent by sms as message {copy.id}"
            session.info.setdefault("puente_after_commit_sends", []).append(copy.id)
        elif conv.status != "handoff":
            handoffs.start(session, conv, "whatsapp_window", now)

    @staticmethod
    def _record_send(session, msg: Message, result: SendResult, now) -> None:
        if result.state == "sent":
            msg.state, msg.provider_id, msg.sent_at, msg.locked_until = "sent", result.provider_id, now, None
            session.flush()
            delivery.apply_early_receipts(session, msg)
        elif result.state == "retry" and msg.attempts < MAX_SEND_ATTEMPTS:
            msg.state, msg.error = "pending", result.error
            # Jittered exponential backoff, or the provider's own retry-after when it gave one.
            wait = max(result.retry_after or 0, min(600, 2 ** msg.attempts) * random.uniform(0.5, 1.5))
            msg.locked_until = now + timedelta(seconds=wait)
        else:
            msg.state = "dead" if result.state == "retry" else result.state
            msg.error, msg.locked_until = result.error, None
            msg.provider_id = msg.provider_id or result.provider_id  # e.g. the parts that did go out
            audit.record(session, "system", "send_" + msg.state, f"message:{msg.id}", {"error": result.error})

    def relay(self, older_than: timedelta = RELAY_AFTER) -> int:
        """Re-enqueues work whose job was lost (queue down, crash): the rows say what is left.

        A reply still `sending` after its lease ran out may or may not have reached the provider:
        it becomes `unknown` for reconciliation and staff, and is never sent again blindly.
        """
        now = utcnow()
        cutoff = now - older_than
        with self.Session.begin() as session:
            stranded = session.scalars(
                update(Message).where(Message.direction == "out", Message.state == "sending", Message.locked_until < now)
                .values(state="unknown", error="worker stopped during send", locked_until=None)
                .returning(Message.id).execution_options(synchronize_session=False)).all()
            for mid in stranded:
                audit.record(session, "system", "send_unknown", f"message:{mid}", {"error": "worker stopped during send"})
            inbound = session.scalars(select(Message.id).where(
                Message.direction == "in", Message.state == "received", Message.received_at < cutoff).order_by(Message.id)).all()
            outbound = session.scalars(select(func.max(Message.id)).where(
                Message.direction == "out", Message.state == "pending", Message.received_at < cutoff,
                (Message.locked_until.is_(None)) | (Message.locked_until < now)).group_by(Message.conversation_id)).all()
            summaries = session.scalars(select(Handoff.id).where(
                Handoff.ai_summary_status == "pending", Handoff.created_at < cutoff)).all()
        for mid in inbound:
            self.queue.enqueue("process_message", mid)
        for mid in outbound:
            self.queue.enqueue("send_message", mid)
        for hid in summaries:
            self.queue.enqueue("summarise_handoff", hid)
        return len(inbound) + len(outbound)

    def notify_staff(self, handoff_id: int) -> None:
        """Emails the handoff's assignee that someone is waiting (no client details in the email)."""
        from services.models import StaffUser
        from services.staff_mail import send_handoff_ping

        with self.Session() as session:
            handoff = session.get(Handoff, handoff_id)
            person = session.get(StaffUser, handoff.assignee_id) if handoff and handoff.assignee_id else None
            if person is None or not person.active or not self.settings.smtp_url:
                return
            address, language = person.email, person.language
            link = f"{self.settings.public_base_url}/console/conversations/{handoff.conversation_id}"
        send_handoff_ping(self.settings.smtp_url, self.settings.smtp_from, address, language, link)
        with self.Session.begin() as session:
            audit.record(session, "system", "staff_notified", f"handoff:{handoff_id}", {"staff": person.id, "by": "email"})

    def summarise_handoff(self, handoff_id: int) -> None:
        """Drafts the staff summary of a handoff (AI only with the firm's switch and the client's consent)."""
        from services.summaries import summarise_handoff

        with self.Session.begin() as session:
            handoff = session.get(Handoff, handoff_id, with_for_update=True)
            if handoff is not None and handoff.ai_summary_status == "pending":
                summarise_handoff(session, handoff, self.settings, self.engine.clock())

    def reconcile(self, now=None) -> int:
        """Asks each provider about `unknown` sends from the last day: found → sent; surely absent →
        pending again (sent once more, in order); still unclear → left for the next pass and for staff.
        Channels that cannot tell (no `reconcile`) leave them to staff."""
        now = now or utcnow()
        with self.Session() as session:
            rows = session.execute(
                select(Message.id, Message.body, Message.payload, Message.provider_id, Message.received_at,
                       Conversation.channel, Conversation.address)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.direction == "out", Message.state == "unknown",
                       Message.received_at > now - RECONCILE_FOR)
            ).all()
        settled = 0
        for row in rows:
            ask = getattr(self.channels[row.channel], "reconcile", None)
            if ask is None:
                continue
            reply = Reply.from_dict({"text": row.body, **(row.payload or {})})
            answer = ask(row.address, reply, row.provider_id, row.received_at, now)
            if answer is None:
                continue
            with self.Session.begin() as session:
                msg = session.get(Message, row.id, with_for_update=True)
                if msg.state != "unknown":
                    continue
                if answer.state == "sent":
                    msg.state, msg.provider_id, msg.sent_at = "sent", answer.provider_id, now
                else:
                    msg.state, msg.locked_until, msg.error = "pending", None, answer.error
                audit.record(session, "system", "send_reconciled", f"message:{msg.id}", {"outcome": msg.state})
            settled += 1
            if answer.state != "sent":
                self.queue.enqueue("send_message", row.id)
        return settled

    def reconciles(self, channel: str, written_at, now) -> bool:
        """Whether the reconciler still asks the provider about an `unknown` send on this channel
        written at `written_at` (the staff console says so; other unknowns wait for staff)."""
        return hasattr(self.channels.get(channel), "reconcile") and written_at > now - RECONCILE_FOR

    # -- automation: outgoing webhooks and scheduled client messages --------------------------
    def deliver_webhook(self, delivery_id: int) -> None:
        """One try of one webhook delivery (a job): claimed under a lease, sent outside any transaction."""
        with self.Session.begin() as session:
            attempt = webhooks.claim(session, delivery_id, self.engine.clock())
        if attempt is None:
            return
        outcome = self.webhook_sender.send(attempt)
        with self.Session.begin() as session:
            state = webhooks.record(session, delivery_id, outcome, self.engine.clock())
            retry_at = session.get(WebhookDelivery, delivery_id).next_attempt_at if state == "pending" else None
        if retry_at is not None and hasattr(self.queue, "enqueue_at"):
            self.queue.enqueue_at("deliver_webhook", delivery_id, retry_at)  # rq's scheduler; the relay is the fallback

    def dispatch_webhooks(self) -> int:
        """Enqueues a job per due delivery (several go out at once, one delivery per job)."""
        with self.Session() as session:
            ids = webhooks.due(session, self.engine.clock())
        for delivery_id in ids:
            self.queue.enqueue("deliver_webhook", delivery_id)
        return len(ids)

    def run_proactive(self) -> int:
        """Schedules and sends the due stage updates, deadline reminders and document nudges (quiet
        hours respected); returns how many notices were queued."""
        policy = proactive.Policy(self.settings.deadline_reminder_days, self.settings.nudge_days)
        with self.Session.begin() as session:
            now = self.engine.clock()
            proactive.schedule(session, now, policy)
            sent = proactive.run_due(session, firm=get_firm(session), now=now, policy=policy)
        self.queue_sends(sent)
        return len(sent)

    def automation(self) -> None:
        """The periodic pass of the automation work: scheduled client messages, due webhook deliveries."""
        self.run_proactive()
        self.dispatch_webhooks()

    def start_relay(self, interval: float = 15.0) -> threading.Thread:
        """Runs the relay now and then every `interval` seconds on a daemon thread."""
        def loop():
            while True:
                try:
                    self.relay()
                    self.reconcile()
                    self.rescan_documents()
                    if self.payments is not None:
                        self.payments.housekeeping()
                    self.automation()
                except Exception as exc:
                    log.error("relay pass failed: %s", type(exc).__name__)
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
        if self.ingest_db is not None:
            self.ingest_db.dispose()


def build_runtime(settings: Settings, *, in_process: bool | None = None) -> Runtime:
    """Builds everything once from Settings. Without REDIS_URL (or in_process=True) jobs run in-process."""
    db = make_engine(settings.database_url)
    keys = (MasterKeys.parse(settings.encryption_key) if settings.encryption_key
            else MasterKeys.development(settings.storage_dir.parent / "development-master.key"))
    vault = Vault(settings.storage_dir, keys)
    runtime = Runtime(settings=settings, db=db, Session=make_sessionmaker(db), engine=Engine(files=vault), vault=vault,
                      scanner=ClamdScanner(settings.clamd_address) if settings.clamd_address else None)
    # Providers come with the channels work; until one is configured its replies go to the simulator.
    runtime.channels = {name: SimulatorChannel(name) for name in ("sms", "whatsapp", "telegram")}
    if settings.telegram_bot_token:
        runtime.channels["telegram"] = TelegramChannel(settings.telegram_bot_token, settings.telegram_webhook_secret,
                                                       settings.telegram_api_url)
    if settings.twilio_account_sid:
        callback = settings.public_base_url + "/webhooks/twilio/status"
        for name, sender in (("sms", settings.twilio_sms_from), ("whatsapp", settings.twilio_whatsapp_from)):
            runtime.channels[name] = TwilioChannel(name, settings.twilio_account_sid, settings.twilio_auth_token, sender,
                                                   settings.twilio_api_url, callback)
    runtime.payments = PaymentDesk(settings, runtime.Session, lambda: runtime.engine.clock(), runtime.queue_sends)
    if runtime.payments.provider is not None:
        runtime.engine.pay_options = PayOptions(settings.payments_provider, settings.public_base_url,
                                                settings.payment_link_days)
    use_rq = settings.redis_url and not in_process
    # SQLite takes one writer at a time, so more threads would only wait on its lock.
    threads = 1 if settings.is_sqlite else 4
    runtime.queue = RQQueue(settings.redis_url) if use_rq else InProcessQueue(
        {"process_message": runtime.process_message, "send_message": runtime.send_message,
         "build_staff_copy": runtime.build_staff_copy, "summarise_handoff": runtime.summarise_handoff,
         "notify_staff": runtime.notify_staff, "deliver_webhook": runtime.deliver_webhook}, threads=threads)
    return runtime
