"""Consent: one opt-out ledger per address, across channels.

STOP on SMS also stops WhatsApp on that number (and START undoes both): every conversation and
contact point with the address carries the same opt-out time, and a new conversation starts
with it. Each change is an audit event with the channel and the words used.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services import audit, events
from services.identity import CONTACT_KIND
from services.models import ContactPoint, Conversation, Handoff


def opted_out_at(session: Session | Connection, channel: str, address: str) -> datetime | None:
    """When this address opted out (on any channel), or None."""
    kind = CONTACT_KIND.get(channel, channel)
    times = [*session.scalars(select(ContactPoint.opted_out_at).where(ContactPoint.kind == kind, ContactPoint.address == address)),
             *session.scalars(select(Conversation.opted_out_at).where(Conversation.address == address))]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def sms_allowed(session: Session, phone: str) -> bool:
    """Whether a client consented to SMS on this number and has not opted out."""
    points = session.scalars(select(ContactPoint).where(ContactPoint.kind == "phone", ContactPoint.address == phone)).all()
    return any(cp.consent and cp.opted_out_at is None for cp in points) and opted_out_at(session, "sms", phone) is None


def set_opted_out(session: Session, conv: Conversation, when: datetime | None, words: str = "") -> None:
    """Opts the address out (when given a time) or back in (None), on every channel and contact point.

    When the sender is verified, the same goes for every other way we reach that client (their
    linked Telegram chat, say). An unverified sender on a shared family phone speaks for the phone only.
    """
    kind = CONTACT_KIND.get(conv.channel, conv.channel)
    addresses = {conv.address}
    if conv.client_id:
        points = session.scalars(select(ContactPoint).where(ContactPoint.client_id == conv.client_id)).all()
        addresses |= {cp.address for cp in points}
        for cp in points:
            cp.opted_out_at = when
    conv.opted_out_at = when
    session.execute(update(Conversation).where(Conversation.address.in_(addresses)).values(opted_out_at=when))
    session.execute(update(ContactPoint).where(ContactPoint.kind == kind, ContactPoint.address == conv.address)
                    .values(opted_out_at=when))
    action = "contact_opted_out" if when else "contact_opted_in"
    audit.record(session, f"conversation:{conv.id}", action, f"conversation:{conv.id}",
                 {"channel": conv.channel, "words": words[:40]})
    if when:
        events.record(session, "contact_opted_out", client_id=conv.client_id, now=when,
                      data={"channel": conv.channel, "conversation_id": conv.id})
        for handoff in session.scalars(select(Handoff).where(Handoff.conversation_id == conv.id, Handoff.status == "open")):
            handoff.summary = {**(handoff.summary or {}), "opted_out_at": when.isoformat()}
