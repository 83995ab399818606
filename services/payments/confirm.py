"""Applies verified payment events: ledger entry, invoice status, links, notices, event, stage.

Everything happens in the caller's transaction. A replayed event (same provider event id) is a
no-op, and so is a second event for the same payment (Stripe sends checkout.session.completed and
payment_intent.succeeded for one payment: both carry the payment intent as `source_ref`).

A dispute's entries are keyed on the dispute id: the chargeback on the id itself, the funds coming
back on `<id>:reinstated`, so no replay or second event ever books either twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import audit, events, outreach, payment_reminders
from services.i18n import N_, Translator
from services.invoices import balance, leave_disputed, money
from services.matters import release_waiting_stage
from services.models import FirmSettings, Invoice, Matter, Payment, PaymentLink, ProviderReceipt
from services.payments.base import NotMatched, PaymentEvent
from services.payments.ledger import find_entry, record_payment
from services.payments.links import supersede

log = logging.getLogger(__name__)
RECEIPT = N_("We received your payment of %(amount)s for invoice %(number)s. Remaining balance on this invoice: "
             "%(balance)s. Thank you!")
RECEIPT_PAID = N_("We received your payment of %(amount)s for invoice %(number)s. This invoice is now paid in full. "
                  "Thank you!")
RECEIPT_TEASER = N_("%(firm)s received a payment from you. Reply to this message to see the receipt.")
REFUND_NOTICE = N_("We refunded %(amount)s on invoice %(number)s. It can take 5–10 business days to show on your "
                   "statement.")
DISPUTE_CLOSED = "dispute_closed"  # a ProviderReceipt status: this dispute is over (outcome in the audit)


@dataclass
class Applied:
    """What applying one webhook's events did: notices to send after commit, and whether it was all a replay."""

    notices: list[int] = field(default_factory=list)
    entries: int = 0
    replays: int = 0


def _first_time(session: Session, event: PaymentEvent, now: datetime) -> bool:
    """Stores the provider's event id; False when it was stored before (a replay)."""
    return _mark(session, event.provider, event.event_id, "payment_event", now)


def _mark(session: Session, provider: str, provider_id: str, status: str, now: datetime) -> bool:
    """Stores (provider, id, status) once; False when it was stored before, also by a racing copy."""
    found = session.scalar(select(ProviderReceipt.id).where(
        ProviderReceipt.provider == provider, ProviderReceipt.provider_id == provider_id,
        ProviderReceipt.status == status))
    if found is not None:
        return False
    try:
        with session.begin_nested():
            session.add(ProviderReceipt(provider=provider, provider_id=provider_id, status=status, matched=True,
                                        received_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def _closed(session: Session, provider: str, dispute_ids: list[str]) -> set[str]:
    """The disputes among `dispute_ids` whose close was applied."""
    if not dispute_ids:
        return set()
    return set(session.scalars(select(ProviderReceipt.provider_id).where(
        ProviderReceipt.provider == provider, ProviderReceipt.status == DISPUTE_CLOSED,
        ProviderReceipt.provider_id.in_(dispute_ids))))


def _invoice_for(session: Session, event: PaymentEvent) -> Invoice:
    invoice_id = event.invoice_id
    if invoice_id is None and event.payment_ref:
        original = find_entry(session, event.provider, event.payment_ref)
        invoice_id = original.invoice_id if original else None
    invoice = session.get(Invoice, invoice_id, with_for_update=True) if invoice_id else None
    if invoice is None:
        raise NotMatched(f"{event.provider} event {event.event_id} names no known invoice")
    return invoice


def apply_events(session: Session, evts: list[PaymentEvent], *, firm: FirmSettings, now: datetime) -> Applied:
    """Applies each event once; raises NotMatched (nothing stored) when one cannot be placed yet."""
    applied = Applied()
    for event in evts:
        if not _first_time(session, event, now):
            applied.replays += 1
            continue
        if event.kind == "ignored":
            continue
        invoice = _invoice_for(session, event)
        handler = {"paid": _paid, "refunded": _refunded, "disputed": _disputed, "dispute_closed": _dispute_closed,
                   "dispute_reinstated": _dispute_reinstated}[event.kind]
        handler(session, invoice, event, firm, now, applied)
    return applied


def _paid(session, invoice: Invoice, event: PaymentEvent, firm, now, applied: Applied) -> None:
    entry = record_payment(session, invoice, event.amount, source=event.provider, source_ref=event.source_ref,
                           kind="payment", paid_at=event.occurred_at or now, currency=event.currency)
    if entry is None:
        return
    applied.entries += 1
    link = _link(session, event)
    if link is not None and link.invoice_id == invoice.id:
        link.status = "used"
    supersede(session, invoice)  # what is left to pay changed: older links no longer fit
    left = balance(invoice)
    matter = session.get(Matter, invoice.matter_id)
    events.record(session, "invoice_paid", matter=matter, now=now,
                  data={"invoice_id": invoice.number, "status": invoice.status, "amount": str(entry.amount),
                        "balance": str(left), "account": invoice.account, "provider": event.provider})

    def compose(t: Translator) -> str:
        msgid = RECEIPT_PAID if left <= 0 else RECEIPT
        return t.gettext(msgid, amount=t.money(entry.amount, invoice.currency), number=invoice.number,
                         balance=t.money(max(left, Decimal("0.00")), invoice.currency))

    notice = outreach.notify(session, matter.client_id, compose, firm=firm, now=now, reason="payment_receipt",
                             teaser=RECEIPT_TEASER)
    if notice is not None:
        applied.notices.append(notice.id)
    _release_stage(session, invoice, now)


def _link(session: Session, event: PaymentEvent) -> PaymentLink | None:
    if event.link_token:
        return session.scalar(select(PaymentLink).where(PaymentLink.token == event.link_token))
    link_id = (event.details or {}).get("link_id")
    return session.get(PaymentLink, int(link_id)) if link_id and str(link_id).isdigit() else None


def _refunded(session, invoice: Invoice, event: PaymentEvent, firm, now, applied: Applied) -> None:
    """Stripe reports the charge's refunded total; the ledger gets the part not booked yet."""
    charge = (event.details or {}).get("charge", "")
    booked = -sum((money(p.amount) for p in session.scalars(select(Payment).where(
        Payment.source == event.provider, Payment.kind == "refund", Payment.source_ref.like(f"{charge}:refunded:%")))),
        Decimal("0.00"))
    delta = money(event.amount) - booked
    if delta <= 0:
        return  # an older refund event arriving after a newer one: already counted
    if record_payment(session, invoice, -delta, source=event.provider, source_ref=event.source_ref, kind="refund",
                      paid_at=event.occurred_at or now, currency=event.currency) is None:
        return
    applied.entries += 1
    matter = session.get(Matter, invoice.matter_id)

    def compose(t: Translator) -> str:
        return t.gettext(REFUND_NOTICE, amount=t.money(delta, invoice.currency), number=invoice.number)

    # The client is told as they are of a payment; an unverified thread gets only the neutral teaser.
    notice = outreach.notify(session, matter.client_id, compose, firm=firm, now=now, reason="payment_refunded")
    if notice is not None:
        applied.notices.append(notice.id)


def _disputed(session, invoice: Invoice, event: PaymentEvent, firm, now, applied: Applied) -> None:
    """A chargeback: the money is withdrawn, the invoice is disputed, finance is alerted."""
    if _closed(session, event.provider, [event.source_ref]):
        return  # created arriving after its close: the close already booked what the dispute moved
    entry = record_payment(session, invoice, -money(event.amount), source=event.provider, source_ref=event.source_ref,
                           kind="chargeback", paid_at=event.occurred_at or now, currency=event.currency)
    if entry is None:
        return
    applied.entries += 1
    supersede(session, invoice)
    audit.record(session, "system", "finance_alert", f"invoice:{invoice.id}",
                 {"reason": "chargeback", "amount": str(event.amount), "account": invoice.account,
                  "invoice": invoice.number, "matter": invoice.matter_id})
    log.warning("chargeback recorded on invoice %s (%s account): finance alerted", invoice.id, invoice.account)


def _dispute_closed(session, invoice: Invoice, event: PaymentEvent, firm, now, applied: Applied) -> None:
    """A dispute's end: funds back as a chargeback reversal, the invoice out of `disputed` (status from the
    ledger), finance alerted unless the firm won, and a waiting stage taken if the invoice ends paid.

    This event carries the reinstatement: it is the only one that says how the dispute ended, and the
    funds and the status then change in one transaction, so the invoice is never paid-but-disputed or
    payable-but-not-reinstated in between. charge.dispute.funds_reinstated books the same entry under
    the same key (see _dispute_reinstated), for funds Stripe gives back without a won outcome.
    """
    outcome = (event.details or {}).get("outcome") or "closed"
    if find_entry(session, event.provider, event.source_ref) is None and not outcome.startswith("warning_"):
        # Closed before created (or created never came): book the withdrawal under created's own key, so
        # a late created adds nothing; an inquiry (warning_*) never withdrew anything.
        if record_payment(session, invoice, -money(event.amount), source=event.provider, source_ref=event.source_ref,
                          kind="chargeback", paid_at=event.occurred_at or now, currency=event.currency) is not None:
            applied.entries += 1
    reinstated = _reinstate(session, invoice, event, now, applied)
    if not _mark(session, event.provider, event.source_ref, DISPUTE_CLOSED, now):
        return  # this dispute's close was applied before (another event id for it)
    others = [ref for ref in session.scalars(select(Payment.source_ref).where(
        Payment.invoice_id == invoice.id, Payment.kind == "chargeback", Payment.source == event.provider,
        Payment.source_ref != event.source_ref))]
    if set(others) <= _closed(session, event.provider, others):
        leave_disputed(invoice)  # no other dispute on this invoice is still open
    supersede(session, invoice)  # what is left to pay changed: older links no longer fit
    left = balance(invoice)
    if left > 0:
        # Payable again when the client asks, but no automatic overdue reminders: finance follows up.
        payment_reminders.hold(session, invoice, now, reason=f"dispute_{outcome}")
    audit.record(session, "system", "dispute_closed", f"invoice:{invoice.id}",
                 {"outcome": outcome, "dispute": event.source_ref, "reinstated": str(reinstated), "status": invoice.status,
                  "balance": str(left), "account": invoice.account, "invoice": invoice.number})
    if outcome != "won":
        audit.record(session, "system", "finance_alert", f"invoice:{invoice.id}",
                     {"reason": f"dispute_{outcome}", "amount": str(event.amount), "reinstated": str(reinstated),
                      "balance": str(left), "account": invoice.account, "invoice": invoice.number,
                      "matter": invoice.matter_id})
        log.warning("dispute on invoice %s (%s account) closed %s: finance alerted", invoice.id, invoice.account, outcome)
    else:
        log.info("dispute on invoice %s (%s account) won: funds reinstated", invoice.id, invoice.account)
    _release_stage(session, invoice, now)


def _dispute_reinstated(session, invoice: Invoice, event: PaymentEvent, firm, now, applied: Applied) -> None:
    """Funds of a dispute back in the account: the same reversal entry as its close books, once."""
    if find_entry(session, event.provider, event.source_ref) is None:
        raise NotMatched(f"{event.provider} event {event.event_id}: reinstatement before its dispute")
    if _reinstate(session, invoice, event, now, applied) > 0:
        supersede(session, invoice)
        _release_stage(session, invoice, now)


def _reinstate(session, invoice: Invoice, event: PaymentEvent, now, applied: Applied) -> Decimal:
    """Books what came back of the dispute's chargeback (never more than it took); returns the amount."""
    chargeback = find_entry(session, event.provider, event.source_ref)
    amount = min(money(event.reinstated), -money(chargeback.amount)) if chargeback is not None else Decimal("0.00")
    if amount <= 0:
        return Decimal("0.00")
    if record_payment(session, invoice, amount, source=event.provider, source_ref=f"{event.source_ref}:reinstated",
                      kind="chargeback_reversal", paid_at=event.occurred_at or now, currency=event.currency) is not None:
        applied.entries += 1
    return amount


def _release_stage(session, invoice: Invoice, now) -> None:
    matter = session.get(Matter, invoice.matter_id)
    if release_waiting_stage(session, matter, now):
        audit.record(session, "system", "stage_released", f"matter:{matter.id}", {"invoice": invoice.id})
