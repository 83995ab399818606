"""Payment links: one per invoice version and amount, reused while live, replaced when either changes.

The chat hands out `PUBLIC_BASE_URL/pay/<token>` (our own short link: no public shortener, which
carriers block). The provider's checkout is opened only when the client follows the link, so a
conversation turn never waits on the network; a superseded link is closed at the provider too.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.invoices import balance, money
from services.models import Invoice, PaymentLink
from services.payments.base import PaymentProvider

DEFAULT_LIFETIME = timedelta(days=7)
MIN_AMOUNT = Decimal("1.00")
PAYABLE_STATUSES = ("unpaid", "partial")
# A checkout closing this soon is replaced rather than handed to the client.
CHECKOUT_MARGIN = timedelta(minutes=10)


class NotPayable(Exception):
    """The invoice cannot be paid online now (paid, void, disputed) or the amount is out of range."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def link_url(base_url: str, link: PaymentLink) -> str:
    return f"{base_url.rstrip('/')}/pay/{link.token}"


def check_amount(invoice: Invoice, amount: Decimal) -> Decimal:
    """The amount as money, refused when below $1 or above what is left to pay."""
    amount = money(amount)
    if invoice.status not in PAYABLE_STATUSES or balance(invoice) <= 0:
        raise NotPayable(f"invoice {invoice.number} is {invoice.status}")
    if amount < MIN_AMOUNT or amount > balance(invoice):
        raise NotPayable(f"amount must be between {MIN_AMOUNT} and {balance(invoice)}")
    return amount


def payment_link(session: Session, invoice: Invoice, amount: Decimal, provider_name: str, *, now: datetime,
                 lifetime: timedelta = DEFAULT_LIFETIME) -> PaymentLink:
    """The live link for this invoice version and amount: reused, or made (other live links of the
    invoice are superseded: `expiring` until their checkout is closed at the provider)."""
    amount = check_amount(invoice, amount)
    current = session.scalar(select(PaymentLink).where(
        PaymentLink.invoice_id == invoice.id, PaymentLink.invoice_version == invoice.version,
        PaymentLink.amount == amount).with_for_update())
    supersede(session, invoice, keep=current if current and _usable(current, provider_name, now) else None)
    if current is not None and _usable(current, provider_name, now):
        return current
    if current is None:
        current = PaymentLink(invoice_id=invoice.id, invoice_version=invoice.version, amount=amount)
        session.add(current)
    else:
        # The same version and amount again (after a refund, or the old link ran out): a fresh token,
        # so the old address keeps saying "expired".
        audit.record(session, "system", "payment_link_renewed", f"invoice:{invoice.id}", {"link": current.id})
    current.token, current.provider, current.status = new_token(), provider_name, "live"
    current.provider_ref = current.url = current.provider_expires_at = None
    current.expires_at, current.created_at = now + lifetime, now
    session.flush()
    audit.record(session, "system", "payment_link_issued", f"invoice:{invoice.id}",
                 {"link": current.id, "version": invoice.version, "amount": str(amount)})
    return current


def _usable(link: PaymentLink, provider_name: str, now: datetime) -> bool:
    return link.status == "live" and link.provider == provider_name and link.expires_at > now


def supersede(session: Session, invoice: Invoice, keep: PaymentLink | None = None) -> int:
    """Retires the invoice's live links (but `keep`); those with a provider checkout wait to be closed there."""
    count = 0
    for link in session.scalars(select(PaymentLink).where(PaymentLink.invoice_id == invoice.id,
                                                          PaymentLink.status == "live")):
        if keep is None or link.id != keep.id:
            _retire(link)
            count += 1
    return count


def _retire(link: PaymentLink) -> None:
    link.status = "expiring" if link.provider_ref else "expired"


def idempotency_key(invoice: Invoice, link: PaymentLink, now: datetime) -> str:
    """Invoice id and version (+ amount when partial), the link and the day: a retried create returns
    the same checkout; a next-day reopen gets a new one (Stripe checkouts last at most 24 hours)."""
    key = f"{invoice.id}:{invoice.version}"
    if money(link.amount) != money(invoice.total):
        key += f":{money(link.amount)}"
    return f"{key}:{link.token[:8]}:{int(now.timestamp()) // 82_800}"


@dataclass(frozen=True)
class Opened:
    """What /pay/<token> shows: a redirect to the provider, the embedded page, or why it cannot be paid."""

    state: str  # "redirect" | "page" | "expired" | "used" | "void" | "unknown"
    link: PaymentLink | None = None
    invoice: Invoice | None = None
    url: str | None = None


def open_link(session: Session, token: str, provider: PaymentProvider, *, now: datetime) -> Opened:
    """Resolves a link for the client: opens (or reuses) the provider's checkout while it is payable."""
    link = session.scalar(select(PaymentLink).where(PaymentLink.token == token).with_for_update())
    if link is None:
        return Opened("unknown")
    invoice = session.get(Invoice, link.invoice_id)
    if invoice.status not in PAYABLE_STATUSES or balance(invoice) <= 0:
        if link.status == "live":
            _retire(link)
        return Opened("used" if invoice.status == "paid" or balance(invoice) <= 0 else "void", link, invoice)
    if link.status == "live" and (link.expires_at <= now or invoice.version != link.invoice_version
                                  or money(link.amount) > balance(invoice) or link.provider != provider.name):
        _retire(link)  # ran out, the invoice changed, part was paid meanwhile, or the firm changed provider
    if link.status != "live":
        return Opened("used" if link.status == "used" else "expired", link, invoice)
    close_superseded(session, provider, invoice.id)  # never two payable checkouts for one invoice
    if link.provider_ref is None or (link.provider_expires_at and link.provider_expires_at <= now + CHECKOUT_MARGIN):
        if link.provider_ref:
            provider.expire(link.provider_ref, invoice.account)
        checkout = provider.create_checkout(link, invoice, money(link.amount), invoice.account,
                                            idempotency_key=idempotency_key(invoice, link, now), now=now)
        link.provider_ref, link.url, link.provider_expires_at = checkout.ref, checkout.url, checkout.expires_at
        audit.record(session, "system", "checkout_opened", f"invoice:{invoice.id}", {"link": link.id, "provider": provider.name})
    return Opened("redirect" if link.url else "page", link, invoice, link.url)


def close_superseded(session: Session, provider: PaymentProvider, invoice_id: int | None = None) -> int:
    """Closes at the provider the checkouts of superseded links (`expiring` → `expired`)."""
    stmt = select(PaymentLink).where(PaymentLink.status == "expiring")
    if invoice_id is not None:
        stmt = stmt.where(PaymentLink.invoice_id == invoice_id)
    closed = 0
    for link in session.scalars(stmt.with_for_update()).all():
        if link.provider_ref and link.provider == provider.name:
            provider.expire(link.provider_ref, session.get(Invoice, link.invoice_id).account)
        link.status = "expired"
        closed += 1
    return closed
