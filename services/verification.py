"""Verification before disclosure: date-of-birth checks, expiry, lockout.

The conversation (channel + address) holds the verified client, when it was verified and its
last verified activity; failures and the lock are kept on every conversation of the address,
so switching from SMS to WhatsApp does not buy more guesses.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services import audit
from services.identity import candidate_clients
from services.models import Client, Conversation, FirmSettings


def is_locked(conv: Conversation, now: datetime) -> bool:
    return conv.locked_until is not None and conv.locked_until > now


def is_verified(conv: Conversation, firm: FirmSettings, now: datetime) -> bool:
    """Verified, and neither idle too long nor past the absolute limit."""
    if conv.client_id is None or conv.verified_at is None:
        return False
    idle = timedelta(minutes=firm.verification_idle_minutes)
    absolute = timedelta(hours=firm.verification_absolute_hours)
    last = conv.last_verified_activity_at or conv.verified_at
    return now - last < idle and now - conv.verified_at < absolute


def forget(conv: Conversation) -> None:
    """Drops an expired verification: the next matter fact needs a new check."""
    conv.client_id = None
    conv.matter_id = None
    conv.verified_at = None
    conv.last_verified_activity_at = None
    conv.dialog, conv.state = None, {}


def touch(conv: Conversation, now: datetime) -> None:
    conv.last_verified_activity_at = now


@dataclass(frozen=True)
class Attempt:
    """The result of checking typed date readings against the clients behind the address."""

    matches: list[Client]
    ambiguous: bool


def check_date(session: Session, conv: Conversation, readings: list[date]) -> Attempt:
    clients = candidate_clients(session, conv.channel, conv.address)
    matches = [c for c in clients if c.date_of_birth in readings]
    return Attempt(matches, ambiguous=len(readings) > 1 and not matches)


def mark_verified(session: Session, conv: Conversation, client: Client, now: datetime) -> None:
    conv.client_id = client.id
    conv.matter_id = None
    conv.verified_at = now
    conv.last_verified_activity_at = now
    session.execute(update(Conversation).where(Conversation.address == conv.address).values(failed_verifications=0))
    conv.failed_verifications = 0
    audit.record(session, f"conversation:{conv.id}", "verification_succeeded", f"client:{client.id}", {"channel": conv.channel})


def record_failure(session: Session, conv: Conversation, firm: FirmSettings, now: datetime) -> bool:
    """Counts a failed check for the address (every channel of it); True when this one locks it."""
    others = session.scalars(select(Conversation.failed_verifications).where(Conversation.address == conv.address)).all()
    failures = max([conv.failed_verifications, *others]) + 1
    session.execute(update(Conversation).where(Conversation.address == conv.address).values(failed_verifications=failures))
    conv.failed_verifications = failures
    audit.record(session, f"conversation:{conv.id}", "verification_failed", f"conversation:{conv.id}",
                 {"channel": conv.channel, "failures": conv.failed_verifications})
    if conv.failed_verifications < firm.verification_max_failures:
        return False
    until = now + timedelta(minutes=firm.verification_lock_minutes)
    session.execute(
        update(Conversation).where(Conversation.address == conv.address).values(locked_until=until, failed_verifications=0)
    )
    conv.locked_until, conv.failed_verifications = until, 0
    audit.record(session, f"conversation:{conv.id}", "verification_locked", f"conversation:{conv.id}",
                 {"channel": conv.channel, "minutes": firm.verification_lock_minutes})
    return True
