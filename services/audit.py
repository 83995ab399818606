"""Hash-chained audit trail: append events, verify the chain.

Each event's hash covers the previous hash and the event's canonical JSON, so an edited or
deleted row breaks the chain from that point on (`puente audit verify`). Details hold ids and
outcomes, never personal data.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.db import utcnow
from services.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 7_461_001  # PostgreSQL advisory lock that serialises appends to the chain


def _digest(prev_hash: str, at: str, actor: str, action: str, subject: str, details: dict[str, Any]) -> str:
    body = json.dumps(
        {"at": at, "actor": actor, "action": action, "subject": subject, "details": details},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _stamp(event: AuditEvent) -> str:
    return event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(session: Session, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> AuditEvent:
    """Appends one event to the chain (in the caller's transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    last = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    prev = last.hash if last else GENESIS
    details = json.loads(json.dumps(details or {}, default=str))
    event = AuditEvent(at=utcnow(), actor=actor, action=action, subject=subject, details=details, prev_hash=prev)
    event.hash = _digest(prev, _stamp(event), actor, action, subject, details)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    events: int
    broken_at: int | None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> ChainReport:
    """Walks the chain in order; reports the first event whose hash or link does not hold."""
    prev = GENESIS
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        count += 1
        expected = _digest(prev, _stamp(event), event.actor, event.action, event.subject, event.details)
        if event.prev_hash != prev or event.hash != expected:
            return ChainReport(count, event.id)
        prev = event.hash
    return ChainReport(count, None)
