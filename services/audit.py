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

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from services.db import utcnow
from services.models import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 7_461_001  # PostgreSQL advisory lock that serialises appends to the chain
_PENDING = "puente_audit_pending"


def _digest(prev_hash: str, at: str, actor: str, action: str, subject: str, details: dict[str, Any]) -> str:
    body = json.dumps(
        {"at": at, "actor": actor, "action": action, "subject": subject, "details": details},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _stamp(event: AuditEvent) -> str:
    return event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(session: Session, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
    """Appends one event to the chain when the caller's transaction commits.

    Events wait in the session until commit, where they are chained under a short lock: the
    chain's lock is then held for milliseconds, not for a whole conversation turn.
    """
    details = json.loads(json.dumps(details or {}, default=str))
    session.info.setdefault(_PENDING, []).append((utcnow(), actor, action, subject, details))


_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
_HEAD = select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_INSERT = AuditEvent.__table__.insert()


def seal(session: Session) -> int:
    """Chains and inserts the session's waiting events (called before every commit); returns how many.

    One Core INSERT for all of them (no ORM objects: nothing reads them back in this transaction).
    The head is read in its own statement after the lock is granted, so under READ COMMITTED it
    sees the event a concurrent transaction committed while this one waited for the lock.
    """
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK)
    prev = session.scalar(_HEAD) or GENESIS
    rows = []
    for at, actor, action, subject, details in pending:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = _digest(prev, stamp, actor, action, subject, details)
        rows.append({"at": at, "actor": actor, "action": action, "subject": subject, "details": details,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    session.execute(_INSERT, rows)
    return len(rows)


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    seal(session)


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
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        count += 1
        expected = _digest(prev, _stamp(row), row.actor, row.action, row.subject, row.details)
        if row.prev_hash != prev or row.hash != expected:
            return ChainReport(count, row.id)
        prev = row.hash
    return ChainReport(count, None)
