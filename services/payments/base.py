"""What a payment provider does for Puente, and the one shape of a verified payment event."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Mapping, Protocol

from services.models import Invoice, PaymentLink

EVENT_KINDS = ("paid", "refunded", "disputed", "dispute_closed", "dispute_reinstated", "ignored")


class InvalidSignature(Exception):
    """A webhook whose signature does not verify (forged, altered or too old)."""


class NotMatched(Exception):
    """A verified event that names no invoice we can find yet (e.g. a refund before its payment)."""


@dataclass(frozen=True)
class Checkout:
    """A provider's checkout for one link: its id, where the client pays, and when it closes."""

    ref: str
    url: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class PaymentEvent:
    """A verified processor event, reduced to what the ledger needs. Amounts are Decimal."""

    provider: str
    event_id: str
    kind: str  # one of EVENT_KINDS
    source_ref: str = ""  # the ledger's idempotency key within the provider (payment intent, refund, dispute)
    amount: Decimal = Decimal("0.00")
    currency: str = "USD"
    invoice_id: int | None = None
    link_token: str | None = None
    payment_ref: str | None = None  # for refunds and disputes: the payment they undo
    # For a closed or reinstated dispute: the part of `amount` (the disputed amount) that is back in the
    # account or never left it; the ledger books it once, keyed on the dispute.
    reinstated: Decimal = Decimal("0.00")
    occurred_at: datetime | None = None
    details: dict = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str

    def create_checkout(self, link: PaymentLink, invoice: Invoice, amount: Decimal, account: str, *,
                        idempotency_key: str, now: datetime) -> Checkout:
        """Opens a checkout for `amount` of the invoice in the invoice's account (trust or operating)."""

    def expire(self, ref: str, account: str) -> None:
        """Closes a checkout so it can no longer be paid."""

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> list[PaymentEvent]:
        """Verifies a webhook and returns its payment events; raises InvalidSignature when forged."""
