"""Delivery receipts: provider status callbacks move an outbound message's state forward only."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services import audit
from services.db import utcnow
from services.models import Message, ProviderReceipt

# How far along each state is; a callback never moves a message backwards ("sent" after "delivered").
RANK = {"pending": 0, "sending": 0, "unknown": 0, "queued": 0, "accepted": 0, "scheduled": 0,
        "sent": 1, "delivered": 2, "read": 3, "undelivered": 2, "failed": 2}
PROVIDER_STATE = {"queued": None, "accepted": None, "scheduled": None, "sending": None, "sent": "sent",
                  "delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed"}


def apply_early_receipts(session: Session, msg: Message) -> None:
    """Applies callbacks that arrived before the send was recorded (a fast carrier failure)."""
    early = session.scalars(select(ProviderReceipt).where(ProviderReceipt.provider_id == msg.provider_id,
                                                         ProviderReceipt.matched.is_(False)).order_by(ProviderReceipt.id)).all()
    for receipt in early:
        receipt.matched = True
        _apply(session, msg, receipt.provider, receipt.status, receipt.error_code)


def record_status(session: Session, provider: str, channels: tuple[str, ...], provider_id: str, status: str,
                  error_code: str | None) -> bool:
    """Keeps the receipt (once) and applies it to our message when we know the id; True when applied."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = session.scalar(
        insert(ProviderReceipt).values(provider=provider, provider_id=provider_id, status=status, error_code=error_code,
                                       matched=False, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["provider", "provider_id", "status"]).returning(ProviderReceipt.id)
    )
    if inserted is None:
        return False  # a replayed callback
    msg = session.scalar(select(Message).where(Message.channel.in_(channels), Message.direction == "out",
                                               Message.provider_id == provider_id).with_for_update())
    if msg is None:
        return False  # kept for reconciliation
    session.get(ProviderReceipt, inserted).matched = True
    _apply(session, msg, provider, status, error_code)
    return True


def _apply(session: Session, msg: Message, provider: str, status: str, error_code: str | None) -> None:
    target = PROVIDER_STATE.get(status)
    if target is None or RANK.get(status, 0) <= RANK.get(msg.state, 0):
        return  # late or out-of-order: nothing moves backwards
    msg.state = target
    if target == "failed":
        msg.error = f"{provider}_{error_code}" if error_code else status
        audit.record(session, "system", "delivery_failed", f"message:{msg.id}", {"error": msg.error})
