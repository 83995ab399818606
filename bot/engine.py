"""The conversation core: one inbound message in, replies out (the only orchestrator).

`accept` stores an Inbound (a replay is a no-op). `process` runs one stored message through
language, intent, consent, verification and the active dialog, and writes conversation state,
audit events and outbound messages into the caller's transaction (the outbox).
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import bindparam, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.intents import INTENTS, classify_intent
from bot.language import detect_language, explicit_switch
from bot.language import warm_up as _warm_up_language
from bot.messages import Inbound, Reply
from dialogs import language as language_dialog
from dialogs import link, menu, optout, upload, verify
from dialogs.base import Context, Outcome
from dialogs.registry import ANSWERS, MATTER_INTENTS, STEPS
from dialogs.menu import MENU_INTENTS
from services import audit, events, handoffs, verification
from services.dates import looks_like_date
from services.db import utcnow
from services.contacts import opted_out_at
from services.documents import documents_of_message
from services.firm import get_firm
from services.i18n import Translator
from services.identity import normalize_address
from services.models import Client, Conversation, Document, FirmSettings, Handoff, Message
from services.vault import Vault

log = logging.getLogger(__name__)
KNOWN_CHOICE_INTENTS = set(INTENTS) | set(ANSWERS)
REDACTED_DATE = "[date of birth]"
MAX_TEXT = 4096  # longer inbound text is cut (no client writes more; regexes stay fast)


@dataclass(frozen=True)
class Processed:
    """What processing one message produced (ids only; the rows hold the rest)."""

    message_id: int
    outbound_ids: tuple[int, ...]
    filed_items: tuple[int, ...] = ()  # checklist items that got files (their staff copy is rebuilt)
    handoff_id: int | None = None  # a handoff this message started (its summary is drafted next)


_INSERT_OUTBOUND = Message.__table__.insert().returning(Message.__table__.c.id, sort_by_parameter_order=True)


@functools.cache
def _accept_statements(dialect: str):
    """accept's statements, built once per dialect (building them costs more than running them).

    Bind parameters: channel, address, provider_id, body, payload, media, received_at (and for
    a new conversation: created_at, opted_out_at)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    c = Message.__table__.c
    values = {"direction": literal("in", type_=c.direction.type), "channel": bindparam("channel", type_=c.channel.type),
              "provider_id": bindparam("provider_id", type_=c.provider_id.type), "body": bindparam("body", type_=c.body.type),
              "payload": bindparam("payload", type_=c.payload.type), "media": bindparam("media", type_=c.media.type),
              "state": literal("received", type_=c.state.type), "attempts": literal(0, type_=c.attempts.type),
              "received_at": bindparam("received_at", type_=c.received_at.type)}
    here = (Conversation.channel == bindparam("channel"), Conversation.address == bindparam("address"))
    store = insert(Message).from_select(["conversation_id", *values], select(Conversation.id, *values.values()).where(*here)) \
        .on_conflict_do_nothing(index_elements=["channel", "direction", "provider_id"]).returning(Message.id)
    find = select(Conversation.id).where(*here)
    new_conversation = insert(Conversation).values(
        channel=bindparam("channel"), address=bindparam("address"), status="bot", state={}, version=0,
        failed_verifications=0, unknown_streak=0, created_at=bindparam("created_at"),
        opted_out_at=bindparam("opted_out_at")).on_conflict_do_nothing(index_elements=["channel", "address"])
    return store, find, new_conversation


class Engine:
    """Accepts and processes messages. Holds no per-conversation state: the database does."""

    FIRM_CACHE_SECONDS = 30.0

    def __init__(self, clock=utcnow, files: Vault | None = None):
        self.clock = clock
        self.files = files
        self._firm: tuple[float, FirmSettings] | None = None
        self.pay_options = None  # dialogs.base.PayOptions when online payments are configured

    def warm_up(self) -> None:
        """Loads what the first turns would otherwise load on the way (language model, catalogs,
        number and date formats), so a worker's first jobs are not the slow ones."""
        _warm_up_language()
        for language in ("en", "es"):
            t = Translator.for_language(language)
            t.money(Decimal("1"))
            t.date(date(2000, 1, 1))

    def firm_changed(self) -> None:
        """Forget the cached firm settings (after changing them in this process)."""
        self._firm = None

    def firm(self, session: Session) -> FirmSettings:
        """The firm's settings, re-read at most every 30 s (they change rarely; every turn reads them)."""
        cached = self._firm
        if cached and time.monotonic() < cached[0]:
            return cached[1]
        firm = get_firm(session)
        session.flush()
        session.expunge(firm)  # a read-only snapshot, safe to share between turns
        self._firm = (time.monotonic() + self.FIRM_CACHE_SECONDS, firm)
        return firm

    # -- accept ---------------------------------------------------------------------------
    def accept(self, conn: Connection, inbound: Inbound) -> int | None:
        """Stores the inbound message; returns its id, or None when this provider id was seen before.

        Runs on a Core connection (this is a webhook's hot path: no ORM unit of work). Both inserts
        are atomic (ON CONFLICT DO NOTHING), so two racing copies store one row.
        """
        address = normalize_address(inbound.channel, inbound.address)
        payload = {"choice": inbound.choice} if inbound.choice else {}
        if inbound.link:
            payload["link"] = inbound.link
        media = [{"content_type": m.content_type, "url": m.url, "filename": m.filename, "size": m.size} for m in inbound.media]
        params = {"channel": inbound.channel, "address": address, "provider_id": inbound.provider_id,
                  "body": (inbound.text or "")[:MAX_TEXT], "payload": payload, "media": media,
                  "received_at": inbound.received_at}
        store, find, new_conversation = _accept_statements(conn.dialect.name)
        # One statement on the hot path: insert the message for the conversation of this address.
        new_id = conn.scalar(store, params)
        if new_id is None:
            # No row: a replay, or no conversation for this address when the insert looked.
            if conn.scalar(find, params) is None:
                # First message from this address (two racing first messages make one conversation row).
                conn.execute(new_conversation, {"channel": inbound.channel, "address": address, "created_at": self.clock(),
                                                "opted_out_at": opted_out_at(conn, inbound.channel, address)})
            # The conversation exists now (maybe made by a racing first message a moment ago):
            # only a conflict on the provider id leaves no row this time.
            new_id = conn.scalar(store, params)
        if new_id is not None and any(m.content is not None for m in inbound.media):
            ids = self._store_media(conn, inbound, new_id)
            conn.execute(update(Message).where(Message.id == new_id).values(
                media=[{**item, **({"document_id": ids[i]} if ids[i] else {})} for i, item in enumerate(media)]))
        return new_id

    def _store_media(self, conn: Connection, inbound: Inbound, message_id: int) -> list[int | None]:
        """Keeps attachments that arrived with their bytes (e.g. `puente chat --attach`), fingerprinted;
        returns each one's document id (None for those fetched later from the provider's URL)."""
        insert_document = Document.__table__.insert().returning(Document.id)
        ids: list[int | None] = []
        for media in inbound.media:
            if media.content is None or self.files is None:
                ids.append(None)
                continue
            stored = self.files.put(media.content)
            ids.append(conn.scalar(insert_document.values(
                message_id=message_id, channel=inbound.channel, provider_message_id=inbound.provider_id,
                filename=media.filename, sha256=stored.sha256, mime=media.content_type, size=stored.size,
                storage_key=stored.key, wrapped_key=stored.wrapped_key, key_id=stored.key_id, status="stored",
                info={}, created_at=self.clock())))
        return ids

    # -- process --------------------------------------------------------------------------
    def process(self, session: Session, conv: Conversation, msg: Message) -> Processed:
        """Runs one message through the conversation and writes state, audit and outbox rows."""
        now = self.clock()
        firm = self.firm(session)
        was_handoff = conv.status == "handoff"
        text = (msg.body or "").strip()
        state = dict(conv.state or {})
        verified = verification.is_verified(conv, firm, now)
        choice = self._choice(msg, text, state, verified)
        if conv.client_id and not verified:
            verification.forget(conv)
        docs = documents_of_message(session, msg) if msg.media else []
        prior = conv.language or self._preferred_language(session, conv)
        switch = explicit_switch(text) if text and not choice else None
        neutral = choice or not text or (msg.payload or {}).get("link")  # nothing to detect a language from
        lang = switch or (prior or "es" if neutral else detect_language(text, prior))
        intent = self._intent(text, choice, switch, msg, lang)
        if any(d.status == "valid" for d in docs):
            intent = "upload"
        elif conv.dialog == "upload.collect" and not choice and (upload.says_done(text) or upload.says_skip(text)):
            intent = upload.DONE if upload.says_done(text) else upload.SKIP
        ctx = Context(session=session, conversation=conv, firm=firm, t=Translator.for_language(lang), now=now,
                      text=text, choice=choice, intent=intent, verified=verified, link=(msg.payload or {}).get("link"),
                      pay=self.pay_options)
        dialog, outcome = self._route(ctx)
        if dialog == "verify" and looks_like_date(msg.body or ""):
            msg.body = REDACTED_DATE  # a date of birth, right or wrong, is not kept in the transcript
        if msg.media and conv.opted_out_at is None and conv.status != "handoff":
            about_files = upload.file_problems(ctx, msg, docs)
            if dialog == "verify" and intent == "upload":
                about_files.append(Reply(ctx._("We received your file. We will add it to your case as soon as we confirm who you are.")))
            outcome = Outcome(about_files + outcome.replies, outcome.step, outcome.state, then=outcome.then)
        if outcome.then:
            # e.g. right after verification: answer what was asked before it.
            dialog, follow = self._answer(ctx, outcome.then)
            outcome = Outcome(outcome.replies + follow.replies, follow.step, follow.state)
        processed = self._commit_turn(session, conv, msg, ctx, dialog, outcome)
        if conv.status == "handoff" and not was_handoff:
            started = session.scalar(select(Handoff.id).where(Handoff.conversation_id == conv.id)
                                     .order_by(Handoff.id.desc()).limit(1))
            processed = Processed(processed.message_id, processed.outbound_ids, processed.filed_items, started)
        return processed

    def _route(self, ctx: Context) -> tuple[str, Outcome]:
        conv, intent = ctx.conversation, ctx.intent
        if ctx.link and conv.opted_out_at is None and conv.status != "handoff":
            return "link", (link.start_token(ctx) if ctx.link.startswith("start:") else link.shared_contact(ctx))
        if conv.opted_out_at is not None:
            if intent == "opt_in":
                return "opt_out", optout.opt_in(ctx)
            return "opt_out", Outcome()  # opted out: silence until START
        if intent == "opt_out":
            return "opt_out", optout.opt_out(ctx)
        if conv.status == "handoff":
            return "handoff", Outcome()  # staff own the thread
        if intent == "opt_in":
            return "opt_out", optout.opt_in(ctx)
        if intent == "language":
            return "language", language_dialog.switch(ctx)
        if intent == "help":
            return "help", menu.help_(ctx)
        if intent == "thanks":
            return "menu", menu.thanks(ctx)
        if verification.is_locked(conv, ctx.now):
            return "verify", verify.locked(ctx)
        if not ctx.verified:
            if conv.dialog == "verify.choose_client" and ctx.choice:
                outcome = verify.choose_client(ctx)
                if outcome.handled:
                    return "verify", outcome
            if intent == "handoff":
                return ANSWERS["handoff"][0], ANSWERS["handoff"][1](ctx)
            return "verify", verify.unverified_turn(ctx)
        return self._verified_turn(ctx)

    def _verified_turn(self, ctx: Context) -> tuple[str, Outcome]:
        conv = ctx.conversation
        step = STEPS.get(conv.dialog or "")
        if step and ctx.choice and ctx.choice not in KNOWN_CHOICE_INTENTS:
            outcome = step[1](ctx)
            if outcome.handled:
                return step[0], outcome
        if ctx.intent in ANSWERS:
            return self._answer(ctx, ctx.intent)
        if step:
            outcome = step[1](ctx)
            if outcome.handled:
                return step[0], outcome
        conv.unknown_streak += 1
        return "menu", menu.not_understood(ctx)

    def _answer(self, ctx: Context, intent: str) -> tuple[str, Outcome]:
        """Answers an intent for a verified sender, asking which matter first when needed."""
        ctx.conversation.unknown_streak = 0
        if intent in MATTER_INTENTS and ctx.conversation.matter_id is None:
            return "verify", verify.ask_matter(ctx, intent)
        name, answer = ANSWERS.get(intent, ANSWERS["menu"])
        outcome = answer(ctx)
        header = menu.case_header(ctx) if intent in MATTER_INTENTS and intent != "status" else None
        if header and outcome.replies:
            first = outcome.replies[0]
            outcome.replies[0] = Reply(header + "\n" + first.text, first.choices)
        if intent in MATTER_INTENTS:
            audit.record(ctx.session, f"conversation:{ctx.conversation.id}", "disclosed",
                         f"matter:{ctx.conversation.matter_id}", {"intent": intent})
        return name, outcome

    def give_up(self, session: Session, conv: Conversation, msg: Message) -> Processed:
        """After repeated failures: the message is failed, a person takes over, the client is told."""
        now = self.clock()
        msg.state, msg.error, msg.processed_at = "failed", "processing failed", now
        audit.record(session, "system", "message_failed", f"message:{msg.id}", {"attempts": msg.attempts})
        if conv.opted_out_at is not None or conv.status == "handoff":
            return Processed(msg.id, ())
        t = Translator.for_language(conv.language or "es")
        handoffs.start(session, conv, "processing_error", now)
        out = Message(conversation_id=conv.id, direction="out", channel=conv.channel, reply_to_id=msg.id,
                      body=t.gettext("Sorry, something went wrong on our side. A person from our team will reply to you here."),
                      payload={"choices": []}, media=[], state="pending", attempts=0, language=t.language, received_at=now)
        session.add(out)
        session.flush()
        return Processed(msg.id, (out.id,))

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _hint(ctx: Context, count: int) -> str:
        """'Reply 1, 2 or 3.' in the conversation's language (shown where choices are plain text)."""
        if count == 0:
            return ""
        numbers = [str(n) for n in range(1, count + 1)]
        listed = numbers[0] if count == 1 else ctx._("%(first)s or %(last)s", first=", ".join(numbers[:-1]), last=numbers[-1])
        return ctx._("Reply %(numbers)s.", numbers=listed)

    @staticmethod
    def _choice(msg: Message, text: str, state: dict, verified: bool) -> str | None:
        """A button press, or a number typed for one of the choices offered last (else the main menu's)."""
        choice = (msg.payload or {}).get("choice")
        offered = state.get("choices") or (list(MENU_INTENTS) if verified else [])
        number = text.rstrip(".)").strip()
        if not choice and number.isdigit() and 1 <= int(number) <= len(offered):
            choice = offered[int(number) - 1]
        return choice

    @staticmethod
    def _preferred_language(session: Session, conv: Conversation) -> str | None:
        client = session.get(Client, conv.client_id) if conv.client_id else None
        return client.preferred_language if client else None

    @staticmethod
    def _intent(text: str, choice: str | None, switch: str | None, msg: Message, lang: str) -> str:
        if (msg.payload or {}).get("link"):
            return "link"  # "/start <token>" is a link request, not START
        if switch:
            return "language"
        if choice:
            return choice if choice in KNOWN_CHOICE_INTENTS else "choice"
        if not text:
            return "upload" if msg.media else "unknown"
        return classify_intent(text, lang)

    def _commit_turn(self, session: Session, conv: Conversation, msg: Message, ctx: Context,
                     dialog: str, outcome: Outcome) -> Processed:
        replies: list[Reply] = outcome.replies
        offered = next(([c.value for c in r.choices] for r in reversed(replies) if r.choices), [])
        conv.dialog = outcome.step
        conv.state = {**outcome.state, "choices": offered} if offered else dict(outcome.state)
        conv.language = ctx.language
        if ctx.verified and conv.client_id:
            verification.touch(conv, ctx.now)  # written with the rest of the turn (one UPDATE)
        conv.version += 1
        conv.last_inbound_at = msg.received_at
        msg.state, msg.processed_at = "processed", ctx.now
        msg.intent, msg.language, msg.dialog = ctx.intent, ctx.language, dialog
        # Whom this turn was about (None while unverified): staff see a thread's turns by matter.
        msg.client_id, msg.matter_id = conv.client_id, conv.matter_id
        outbound = [
            {"conversation_id": conv.id, "direction": "out", "channel": conv.channel, "reply_to_id": msg.id,
             "body": r.text, "payload": {"choices": [{"value": c.value, "label": c.label} for c in r.choices],
                                         "hint": self._hint(ctx, len(r.choices)),
                                         **({"contact_button": r.contact_button} if r.contact_button else {})},
             "media": [], "state": "pending", "attempts": 0, "language": ctx.language, "received_at": ctx.now,
             "client_id": conv.client_id, "matter_id": conv.matter_id}
            for r in replies
        ]
        # The outbox rows go in with one Core INSERT (nothing reads them back as objects in this turn).
        outbound_ids = tuple(session.scalars(_INSERT_OUTBOUND, outbound).all()) if outbound else ()
        if conv.client_id:  # the firm's systems hear about messages from known clients (ids only)
            events.record(session, "message_received", matter_id=conv.matter_id, client_id=conv.client_id, now=ctx.now,
                          data={"message_id": msg.id, "conversation_id": conv.id, "channel": conv.channel,
                                "intent": ctx.intent})
        session.flush()
        return Processed(msg.id, outbound_ids, tuple(sorted(ctx.memo.get("filed_items", ()))))
