"""What a handoff summary is made from (HandoffFacts), what it is (Summary), and who makes it (Summariser).

`facts_for` is the only place that reads the record for a summary, and it is where personal data
stops: messages are redacted (services.redact) and scrubbed of the client's names, and the matter
facts carry no name, phone, date of birth, e-mail, receipt number, A-number or matter id.
Whatever a summariser sends anywhere is built from HandoffFacts alone.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.checklists import item_name, items_by_status
from services.firm import get_firm
from services.i18n import N_, Translator
from services.invoices import open_invoices, owed
from services.matters import upcoming_deadlines
from services.models import Client, ContactPoint, Conversation, Handoff, Matter, Message
from services.redact import redact
from services.text import strip_accents

RECENT_MESSAGES = 12
NAME = "[NAME]"
ATTACHMENT = "[attachment]"


class SummaryUnavailable(Exception):
    """A summariser could not produce a summary (timeout, HTTP error, invalid output).

    The message names the kind of failure only, never content from the conversation or the reply.
    """


@dataclass(frozen=True)
class FactMessage:
    """One message of the conversation, redacted: who wrote it (client | assistant | staff) and what."""

    role: Literal["client", "assistant", "staff"]
    text: str


@dataclass(frozen=True)
class HandoffFacts:
    """Everything a summariser may know about a handoff; nothing in it identifies the client."""

    language: str                       # the conversation's language: "es" | "en"
    reason: str                         # services.handoffs.REASONS
    channel: str                        # sms | whatsapp | telegram
    messages: tuple[FactMessage, ...]   # the last RECENT_MESSAGES, oldest first, redacted
    matter_type: str | None = None      # I-130, I-485, …
    stage: str | None = None            # services.models.STAGES
    missing_items: tuple[str, ...] = ()  # checklist items still needed, English names
    balances: tuple[dict[str, str], ...] = ()  # {"account": "operating", "currency": "USD", "amount": "1020.00"}
    disputed_invoices: tuple[str, ...] = ()    # invoice numbers under dispute
    deadlines: tuple[dict[str, str], ...] = ()  # {"name": "RFE response due", "date": "2027-01-20"}
    today: str = ""                     # ISO date the facts were read (firm's time zone)

    def to_dict(self) -> dict:
        """A JSON-ready dict (what a remote summariser receives)."""
        return asdict(self)

    @property
    def last_client_message(self) -> str | None:
        for message in reversed(self.messages):
            if message.role == "client" and message.text.strip():
                return message.text
        return None


@dataclass(frozen=True)
class Summary:
    """A staff-facing handoff summary. `draft_reply` is in the client's language, for staff to edit; never sent as is."""

    why_reached_out: str
    what_they_asked: str
    outstanding: list[str] = field(default_factory=list)
    suggested_next_step: str = ""
    draft_reply: str = ""
    language: str = "es"
    source: Literal["ai", "record"] = "record"
    model: str | None = None
    facts: dict | None = None  # a record summary's facts, to word it again in the reader's language

    def to_dict(self) -> dict:
        return asdict(self)


class Summariser(Protocol):
    """Makes a Summary from HandoffFacts; raises SummaryUnavailable when it cannot."""

    def summarise(self, facts: HandoffFacts) -> Summary: ...


# -- reading the record ---------------------------------------------------------------------------

NEEDS_NEW_COPY = N_("%(item)s (rejected, needs a new copy)")


def missing_item_names(session: Session, matter: Matter, t: Translator) -> list[str]:
    """The matter's checklist items still needed, named in `t`'s language (rejected ones say so)."""
    groups = items_by_status(session, matter)
    names = [item_name(t, matter, i) for i in groups.get("required", [])]
    return names + [t.gettext(NEEDS_NEW_COPY, item=item_name(t, matter, i)) for i in groups.get("rejected", [])]


# Name particles that are also everyday words ("de", "la"): never scrubbed on their own.
_PARTICLES = frozenset({"de", "del", "la", "las", "los", "el", "y", "e", "da", "das", "do", "dos", "di", "du",
                        "le", "van", "von", "der", "den", "san", "santa", "st", "mc", "mac"})


def _fold(text: str) -> str:
    """Lower-case without accents, one character per character (so match offsets map back)."""
    return "".join((strip_accents(c)[:1] or c).lower()[:1] or c for c in text)


def _name_scrubber(names: set[str]):
    """Replaces each of `names` (whole words, any case, with or without accents) by [NAME]."""
    words = sorted({_fold(w) for name in names for w in re.split(r"[\s\-]+", name or "")
                    if len(w) >= 2 and _fold(w) not in _PARTICLES}, key=len, reverse=True)
    if not words:
        return lambda text: text
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")

    def scrub(text: str) -> str:
        spans = [m.span() for m in pattern.finditer(_fold(text))]
        for start, end in reversed(spans):
            text = text[:start] + NAME + text[end:]
        return text

    return scrub


def involved_clients(session: Session, conv: Conversation | None, matter: Matter | None) -> list[Client]:
    """The conversation's client, the matter's client and whoever shares the contact point (a family phone)."""
    ids: set[int] = set()
    if conv is not None and conv.client_id:
        ids.add(conv.client_id)
    if matter is not None:
        ids.add(matter.client_id)
    if conv is not None:
        ids.update(session.scalars(select(ContactPoint.client_id).where(
            ContactPoint.address == conv.address)).all())
        if conv.contact_point_id:
            point = session.get(ContactPoint, conv.contact_point_id)
            if point is not None:
                ids.add(point.client_id)
    return [session.get(Client, i) for i in sorted(ids)]


def _role(message: Message) -> str:
    if message.direction == "in":
        return "client"
    return "staff" if message.staff_user_id else "assistant"


def _today(session: Session, now: datetime) -> date:
    try:
        zone = ZoneInfo(get_firm(session).timezone)
    except Exception:  # an unknown zone name in the firm's settings; the UTC date is close enough
        zone = timezone.utc
    return now.astimezone(zone).date()


def conversation_and_matter(session: Session, handoff: Handoff) -> tuple[Conversation | None, Matter | None]:
    """The handoff's conversation, and its matter (the handoff's own, else the conversation's)."""
    conv = session.get(Conversation, handoff.conversation_id) if handoff.conversation_id else None
    matter_id = handoff.matter_id or (conv.matter_id if conv else None)
    return conv, (session.get(Matter, matter_id) if matter_id else None)


def facts_for(session: Session, handoff: Handoff, now: datetime | None = None) -> HandoffFacts:
    """Reads the handoff's conversation and matter into HandoffFacts: redacted, no identifiers."""
    conv, matter = conversation_and_matter(session, handoff)
    clients = involved_clients(session, conv, matter)
    scrub = _name_scrubber({n for c in clients for n in (c.first_name, c.last_name)})
    secrets = [c.email for c in clients if c.email] + ([conv.address] if conv else [])
    if matter is not None and matter.receipt_number:
        secrets.append(matter.receipt_number)
    secrets = [s for s in secrets if len(s) >= 6]  # a short Telegram chat id would clobber ordinary numbers

    def clean(text: str) -> str:
        text = scrub(redact(text))
        for secret in secrets:  # exact copies of what the record holds, in case redact() missed a shape
            text = text.replace(secret, "[REDACTED]")
        return text

    rows = list(session.scalars(
        select(Message).where(Message.conversation_id == handoff.conversation_id)
        .order_by(Message.id.desc()).limit(RECENT_MESSAGES)
    )) if conv else []
    messages = tuple(FactMessage(_role(m), clean(m.body) if (m.body or "").strip() else ATTACHMENT)
                     for m in reversed(rows) if (m.body or "").strip() or m.media)

    today = _today(session, now or handoff.created_at or datetime.now(timezone.utc))
    language = (conv.language if conv and conv.language else None) or (clients[0].preferred_language if clients else None)
    facts = dict(language=language if language in ("es", "en") else "es", reason=handoff.reason,
                 channel=conv.channel if conv else "", messages=messages, today=today.isoformat())
    if matter is None:
        return HandoffFacts(**facts)

    missing = missing_item_names(session, matter, Translator.for_language("en"))
    invoices = open_invoices(session, matter.id)
    balances = []
    for account in ("operating", "trust"):
        for currency, amount in sorted(owed(i for i in invoices if i.account == account).items()):
            balances.append({"account": account, "currency": currency, "amount": str(amount)})
    return HandoffFacts(
        **facts,
        matter_type=matter.type,
        stage=matter.stage,
        missing_items=tuple(missing),
        balances=tuple(balances),
        disputed_invoices=tuple(i.number for i in invoices if i.status == "disputed"),
        deadlines=tuple({"name": d.name, "date": d.due.isoformat()} for d in upcoming_deadlines(session, matter, today)),
    )
