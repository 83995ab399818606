"""Messages the firm starts (a review outcome, a payment receipt), written to the outbox.

A notice goes to the client's own thread: the conversation verified for them now, else the most
recent conversation on one of their contact points, never one that opted out. It is written in the
client's language. A thread that is not verified for this client right now (a shared family phone,
an expired check) gets only a teaser naming the firm; the details wait until the client verifies,
so nothing about a matter reaches an unverified sender. The caller commits, then queues the send.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import or_, select, and_
from sqlalchemy.orm import Session

from services import audit, verification
from services.identity import CONTACT_KIND
from services.i18n import N_, Translator
from services.models import Client, ContactPoint, Conversation, FirmSettings, Message

DEFAULT_TEASER = N_("%(firm)s has an update about your case. Reply to this message to see it.")

# WhatsApp template purposes (Meta "utility" templates the firm has approved, one per purpose and
# language). Past WhatsApp's 24-hour window a message goes as its purpose's template, or else as
# the generic "reply" one; each template carries only the firm's name ({{1}}), never case details.
TEMPLATE_PURPOSES = ("reply", "case_update", "documents", "payment")
_NOTICE_PURPOSE = {
    "stage_changed": "case_update", "deadline_approaching": "case_update",
    "documents_missing": "documents", "document_accepted": "documents", "document_rejected": "documents",
    "document_infected": "documents",
    "invoice_overdue": "payment", "payment_receipt": "payment", "payment_refunded": "payment",
}


def template_purpose(payload: dict | None) -> str:
    """The WhatsApp template purpose of an outbound message: its notice's kind, else "reply"."""
    payload = payload or {}
    return payload.get("purpose") or _NOTICE_PURPOSE.get(payload.get("notice") or "", "reply")


def approved_template(templates: dict, purpose: str, language: str) -> tuple[str, str] | None:
    """(purpose, ContentSid) of the approved template for this purpose and language, falling back to
    the generic "reply" template; None when the firm has neither in that language."""
    for name in dict.fromkeys((purpose, "reply")):
        content_sid = (templates.get(name) or {}).get(language)
        if content_sid:
            return name, content_sid
    return None


def client_threads(client_id: int, session: Session):
    """A condition matching the client's conversations: verified for them, or on one of their contact points."""
    points = session.execute(select(ContactPoint.kind, ContactPoint.address).where(ContactPoint.client_id == client_id)).all()
    matches = [Conversation.client_id == client_id]
    for kind, address in points:
        channels = [ch for ch, k in CONTACT_KIND.items() if k == kind]
        if channels:
            matches.append(and_(Conversation.address == address, Conversation.channel.in_(channels)))
    return or_(*matches)


def client_thread(session: Session, client_id: int) -> Conversation | None:
    """The conversation to reach a client on, or None when they have no usable thread."""
    candidates = session.scalars(
        select(Conversation).where(client_threads(client_id, session), Conversation.opted_out_at.is_(None))
    ).all()
    if not candidates:
        return None
    # Prefer the thread verified for this client, then the one they wrote on last.
    return max(candidates, key=lambda c: (c.client_id == client_id, c.last_inbound_at or c.created_at))


def notify(session: Session, client_id: int, compose: Callable[[Translator], str], *, firm: FirmSettings,
           now: datetime, reason: str, teaser: str = DEFAULT_TEASER) -> Message | None:
    """Queues a notice for the client (details only on a thread verified for them); None if unreachable."""
    conv = client_thread(session, client_id)
    if conv is None:
        audit.record(session, "system", "notice_unreachable", f"client:{client_id}", {"reason": reason})
        return None
    client = session.get(Client, client_id)
    t = Translator.for_language(conv.language or (client.preferred_language if client else None) or "es")
    private = conv.client_id == client_id and verification.is_verified(conv, firm, now)
    body = compose(t) if private else t.gettext(teaser, firm=firm.name)
    msg = Message(conversation_id=conv.id, direction="out", channel=conv.channel, body=body,
                  payload={"choices": [], "notice": reason}, media=[], state="pending", attempts=0,
                  language=t.language, received_at=now, client_id=client_id if private else None,
                  matter_id=conv.matter_id if private else None)
    session.add(msg)
    session.flush()
    audit.record(session, "system", "notice_queued", f"conversation:{conv.id}",
                 {"reason": reason, "detailed": private, "message": msg.id})
    return msg
