"""The payment ledger: append-only entries, idempotent on (source, source_ref), status recomputed.

Refunds and chargebacks are negative entries; a chargeback reversal (the funds of a closed dispute
coming back) is positive. A chargeback also marks the invoice disputed (a person settles it, or the
dispute's close does); void and disputed are never changed by a payment.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import audit
from services.invoices import money, recompute_status
from services.models import Invoice, Payment

KINDS = ("payment", "refund", "chargeback", "chargeback_reversal")
POSITIVE_KINDS = ("payment", "chargeback_reversal")


def find_entry(session: Session, source: str, source_ref: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.source == source, Payment.source_ref == source_ref))


def record_payment(session: Session, invoice: Invoice, amount: Decimal, *, source: str, source_ref: str,
                   kind: str = "payment", paid_at: datetime, currency: str | None = None) -> Payment | None:
    """Appends one entry (negative for refunds and chargebacks) and recomputes the status.

    Returns None when the entry was recorded before (a replay), also when two copies race.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    amount = money(amount)
    if (kind in POSITIVE_KINDS) != (amount > 0):
        raise ValueError("payments and chargeback reversals are positive, refunds and chargebacks negative")
    if find_entry(session, source, source_ref) is not None:
        return None
    entry = Payment(invoice_id=invoice.id, amount=amount, currency=currency or invoice.currency, kind=kind,
                    source=source, source_ref=source_ref, paid_at=paid_at)
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        return None  # the same entry, recorded by a racing copy of the event
    session.refresh(invoice, ["payments"])
    before = invoice.status
    if kind == "chargeback":
        invoice.status = "disputed"
    recompute_status(invoice)
    audit.record(session, "system", f"ledger_{kind}", f"invoice:{invoice.id}",
                 {"amount": str(amount), "source": source, "status": invoice.status, "was": before})
    return entry
