"""The embedded provider: a test checkout page inside the app (the demo and offline default).

No money moves. The page at /pay/<token> says so plainly. "Paying" there makes an event signed
with a key derived from PUENTE_SECRET_KEY, and that event is recorded through the same
verification and ledger path as a processor's webhook — never from a redirect or a page view.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Mapping

from services.invoices import money
from services.models import Invoice, PaymentLink
from services.payments.base import Checkout, InvalidSignature, PaymentEvent

SIGNATURE_HEADER = "Puente-Test-Signature"
TOLERANCE = 300  # seconds, as Stripe's


class EmbeddedProvider:
    """Checkouts are rows of our own; events are signed by us for us."""

    name = "embedded"

    def __init__(self, secret_key: str):
        self._key = hmac.new(secret_key.encode(), b"puente-embedded-payments", hashlib.sha256).digest()

    def create_checkout(self, link: PaymentLink, invoice: Invoice, amount: Decimal, account: str, *,
                        idempotency_key: str, now: datetime) -> Checkout:
        return Checkout(ref="emb_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24], url=None,
                        expires_at=link.expires_at)

    def expire(self, ref: str, account: str) -> None:
        """Nothing to close elsewhere: the link's own status governs the page."""

    def _sign(self, payload: bytes, timestamp: int) -> str:
        return hmac.new(self._key, f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()

    def test_payment(self, link: PaymentLink, invoice: Invoice, nonce: str, now: datetime | None = None) -> tuple[bytes, dict]:
        """The signed event for one press of "Pay" on the test page (the nonce makes a double submit a replay)."""
        stamp = int(time.time())  # the signature's freshness is wall-clock time; `paid_at` is the caller's now
        paid_at = int((now or datetime.now(timezone.utc)).timestamp())
        body = {"id": "evt_emb_" + hashlib.sha256(f"{link.provider_ref}:{nonce}".encode()).hexdigest()[:24],
                "type": "test_payment.succeeded", "created": paid_at,
                "data": {"checkout": link.provider_ref, "link_token": link.token, "invoice_id": invoice.id,
                         "amount": str(money(link.amount)), "currency": invoice.currency}}
        payload = json.dumps(body, separators=(",", ":")).encode()
        return payload, {SIGNATURE_HEADER: f"t={stamp},v1={self._sign(payload, stamp)}"}

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> list[PaymentEvent]:
        parts = dict(p.split("=", 1) for p in (headers.get(SIGNATURE_HEADER) or "").split(",") if "=" in p)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidSignature("no timestamp") from None
        if abs(time.time() - stamp) > TOLERANCE or not hmac.compare_digest(parts.get("v1", ""), self._sign(payload, stamp)):
            raise InvalidSignature("signature does not verify")
        body = json.loads(payload)
        data = body["data"]
        return [PaymentEvent(provider=self.name, event_id=body["id"], kind="paid",
                             source_ref=f"{data['checkout']}:{body['id']}", amount=money(data["amount"]),
                             currency=data["currency"], invoice_id=int(data["invoice_id"]), link_token=data["link_token"],
                             occurred_at=datetime.fromtimestamp(int(body["created"]), timezone.utc))]


def new_nonce() -> str:
    return secrets.token_urlsafe(16)
