"""Invoices and their payments: totals, balances, status and what a client owes.

Money is Decimal throughout (never float). Payments are an append-only ledger, so a refund or a
chargeback is a negative entry and the balance is always `total - sum(payments)`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.models import Invoice

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
OPEN_STATUSES = ("unpaid", "partial", "disputed")
# Statuses a person sets on purpose; payments never move an invoice out of them.
STICKY_STATUSES = ("void", "disputed")


def money(value: Decimal | int | str) -> Decimal:
    """Returns `value` as a Decimal rounded to cents (floats are refused: they are not money)."""
    if isinstance(value, float):
        raise TypeError("money must be Decimal, int or str, not float")
    return Decimal(value).quantize(CENT)


def invoice_total(lines: Iterable[Mapping[str, object]]) -> Decimal:
    """Sum of the lines' amounts ({"description", "amount": "675.00"})."""
    return sum((money(line["amount"]) for line in lines), ZERO)


def paid_amount(inv: Invoice) -> Decimal:
    """Sum of the invoice's ledger entries (refunds and chargebacks count negative)."""
    return sum((money(p.amount) for p in inv.payments), ZERO)


def balance(inv: Invoice) -> Decimal:
    """What is left to pay: total minus payments, exact (negative when overpaid)."""
    return money(inv.total) - paid_amount(inv)


def status_from_payments(inv: Invoice) -> str:
    """unpaid, partial or paid, from the ledger alone (ignores void and disputed)."""
    if balance(inv) <= 0:
        return "paid"
    if paid_amount(inv) > 0:
        return "partial"
    return "unpaid"


def recompute_status(inv: Invoice) -> str:
    """Sets and returns the invoice's status after a payment; void and disputed stay as they are."""
    if inv.status not in STICKY_STATUSES:
        inv.status = status_from_payments(inv)
    return inv.status


def leave_disputed(inv: Invoice) -> str:
    """Takes a disputed invoice out of `disputed` (its dispute closed): unpaid, partial or paid from the ledger."""
    if inv.status == "disputed":
        inv.status = status_from_payments(inv)
    return inv.status


def open_invoices(session: Session, matter_id: int) -> list[Invoice]:
    """A matter's unpaid, partial and disputed invoices, earliest due first (undated last), then by number."""
    stmt = (
        select(Invoice)
        .options(selectinload(Invoice.payments))
        .where(Invoice.matter_id == matter_id, Invoice.status.in_(OPEN_STATUSES))
        .order_by(Invoice.due.is_(None), Invoice.due, Invoice.number)
    )
    return list(session.scalars(stmt))


def _balances_by_currency(invoices: Iterable[Invoice], statuses: tuple[str, ...]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for inv in invoices:
        if inv.status not in statuses:
            continue
        left = balance(inv)
        if left > 0:
            totals[inv.currency] = totals.get(inv.currency, ZERO) + left
    return totals


def owed(invoices: Iterable[Invoice]) -> dict[str, Decimal]:
    """What the client owes per currency over unpaid and partial invoices (disputed ones excluded)."""
    return _balances_by_currency(invoices, ("unpaid", "partial"))


def disputed(invoices: Iterable[Invoice]) -> dict[str, Decimal]:
    """The balance under dispute per currency; shown apart from what is owed."""
    return _balances_by_currency(invoices, ("disputed",))
