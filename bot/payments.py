"""The payment desk: builds the configured provider once and runs the payment doors' transactions.

Web routes (/pay/<token>, /webhooks/stripe), the relay loop and the CLI come here; each call is one
transaction, and receipts and reminders are queued for sending only after it commits.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Mapping

from sqlalchemy.exc import DBAPIError

from bot.settings import Settings
from services.firm import get_firm
from services.invoices import balance
from services.payments import links as payment_links
from services import payment_reminders
from services.payments.base import InvalidSignature, NotMatched, PaymentProvider
from services.payments.confirm import apply_events
from services.payments.embedded import EmbeddedProvider
from services.models import Invoice, PaymentLink

log = logging.getLogger(__name__)


def build_provider(settings: Settings) -> PaymentProvider | None:
    """The provider PAYMENTS_PROVIDER names (None: instructions only, no links)."""
    if settings.payments_provider == "stripe":
        from services.payments.stripe_provider import StripeProvider

        return StripeProvider(api_key=settings.stripe_api_key, api_url=settings.stripe_api_url,
                              webhook_secrets=[settings.stripe_webhook_secret, settings.stripe_trust_webhook_secret],
                              public_base_url=settings.public_base_url, trust_api_key=settings.stripe_trust_api_key,
                              trust_account=settings.stripe_trust_account,
                              operating_account=settings.stripe_operating_account,
                              surcharge_percent=settings.surcharge_percent)
    if settings.payments_provider == "embedded":
        return EmbeddedProvider(settings.secret_key)
    return None


@dataclass(frozen=True)
class Received:
    """A webhook's outcome as an HTTP status: 200 applied (or a replay), 403 forged, 409 not placeable yet."""

    status: int
    entries: int = 0
    replay: bool = False


class PaymentDesk:
    def __init__(self, settings: Settings, Session, clock: Callable, queue_sends: Callable):
        self.settings = settings
        self.Session = Session
        self.clock = clock
        self.queue_sends = queue_sends
        self.provider = build_provider(settings)
        self.embedded = EmbeddedProvider(settings.secret_key)

    @property
    def lifetime(self) -> timedelta:
        return timedelta(days=self.settings.payment_link_days)

    def open(self, token: str) -> tuple[payment_links.Opened, dict]:
        """Resolves /pay/<token>; returns what to show and a plain snapshot of the link and invoice."""
        if self.provider is None:
            return payment_links.Opened("unknown"), {}
        with self.Session.begin() as session:
            opened = payment_links.open_link(session, token, self.provider, now=self.clock())
            view = _view(opened.link, opened.invoice) if opened.link else {}
        return opened, view

    def test_payment(self, token: str, nonce: str) -> Received:
        """The embedded page's "Pay": a signed test event through the same path as a processor's webhook."""
        if not isinstance(self.provider, EmbeddedProvider):
            return Received(404)
        with self.Session() as session:
            link = session.scalar(_by_token(token))
            invoice = session.get(Invoice, link.invoice_id) if link else None
            if link is None or link.status != "live" or link.provider_ref is None or link.amount > balance(invoice):
                return Received(409)  # used, superseded, or more than what is left to pay
            payload, headers = self.provider.test_payment(link, invoice, nonce, self.clock())
        return self.receive(self.provider, payload, headers)

    def receive(self, provider: PaymentProvider | None, payload: bytes, headers: Mapping[str, str]) -> Received:
        """Verifies and applies one webhook in one transaction; notices are queued after commit."""
        if provider is None:
            return Received(404)
        try:
            evts = provider.parse_event(payload, headers)
        except InvalidSignature:
            return Received(403)
        except (ValueError, KeyError, TypeError):
            return Received(400)
        try:
            with self.Session.begin() as session:
                firm = get_firm(session)
                applied = apply_events(session, evts, firm=firm, now=self.clock())
        except NotMatched:
            log.warning("%s event not matched to an invoice yet; the provider will resend it", provider.name)
            return Received(409)
        except DBAPIError:
            return Received(503)
        self.queue_sends(applied.notices)
        return Received(200, applied.entries, replay=bool(evts) and applied.replays == len(evts))

    def housekeeping(self) -> int:
        """Closes superseded checkouts at the provider and sends the reminders that are due."""
        closed = 0
        if self.provider is not None:
            with self.Session.begin() as session:
                closed = payment_links.close_superseded(session, self.provider)
        return closed + self.run_reminders()

    def run_reminders(self) -> int:
        """Schedules and sends overdue-invoice reminders (quiet hours respected); returns notices queued."""
        with self.Session.begin() as session:
            firm = get_firm(session)
            now = self.clock()
            payment_reminders.schedule(session, now)
            sent = payment_reminders.run_due(session, firm=firm, now=now,
                                             interval=timedelta(days=self.settings.payment_reminder_interval_days),
                                             max_count=self.settings.payment_reminder_max)
        self.queue_sends(sent)
        return len(sent)


def _by_token(token: str):
    from sqlalchemy import select

    return select(PaymentLink).where(PaymentLink.token == token)


def _view(link: PaymentLink, invoice: Invoice) -> dict:
    return {"token": link.token, "amount": link.amount, "currency": invoice.currency, "number": invoice.number,
            "account": invoice.account, "lines": list(invoice.lines or []), "total": invoice.total,
            "status": link.status, "expires_at": link.expires_at}
