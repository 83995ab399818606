"""Stripe Checkout: the real provider (the only module that imports stripe).

Trust (IOLTA) and operating money go to different Stripe accounts: trust through its own API key
(a separate Stripe account) or a connected account id sent as `Stripe-Account`; operating through
STRIPE_API_KEY, optionally a connected account too. Webhooks are verified with the stripe package
(`Stripe-Signature`, 300 s tolerance); amounts arrive in cents and become Decimal exactly.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping

import stripe

from services.invoices import money
from services.models import Invoice, PaymentLink
from services.payments.base import Checkout, InvalidSignature, PaymentEvent

TOLERANCE = 300
CHECKOUT_LIFETIME = timedelta(hours=23)  # Stripe allows 30 minutes to 24 hours


def cents(amount: Decimal) -> int:
    return int((money(amount) * 100).to_integral_exact())


def from_cents(value: int | str) -> Decimal:
    return money(Decimal(int(value)).scaleb(-2))


class StripeProvider:
    name = "stripe"

    def __init__(self, *, api_key: str, webhook_secrets: list[str], api_url: str, public_base_url: str,
                 trust_api_key: str | None = None, trust_account: str | None = None,
                 operating_account: str | None = None, surcharge_percent: Decimal = Decimal("0")):
        base = {"api": api_url}
        self._clients = {
            "operating": stripe.StripeClient(api_key, stripe_account=operating_account, base_addresses=base,
                                             max_network_retries=1),
            "trust": stripe.StripeClient(trust_api_key or api_key, stripe_account=trust_account, base_addresses=base,
                                         max_network_retries=1),
        }
        self._secrets = [s for s in webhook_secrets if s]
        self._base_url = public_base_url.rstrip("/")
        self._surcharge = surcharge_percent

    def surcharge(self, amount: Decimal, account: str) -> Decimal:
        """The card surcharge for an operating payment; trust payments never carry one."""
        if account == "trust" or not self._surcharge:
            return Decimal("0.00")
        return money(money(amount) * self._surcharge / 100)

    def create_checkout(self, link: PaymentLink, invoice: Invoice, amount: Decimal, account: str, *,
                        idempotency_key: str, now: datetime) -> Checkout:
        currency = invoice.currency.lower()
        surcharge = self.surcharge(amount, account)
        metadata = {"invoice_id": str(invoice.id), "invoice_number": invoice.number, "invoice_version": str(invoice.version),
                    "link_id": str(link.id), "account": account, "surcharge_cents": str(cents(surcharge))}
        line_items: list[dict[str, Any]] = [{"quantity": 1, "price_data": {
            "currency": currency, "unit_amount": cents(amount),
            "product_data": {"name": f"Invoice {invoice.number}"}}}]
        if surcharge:
            line_items.append({"quantity": 1, "price_data": {
                "currency": currency, "unit_amount": cents(surcharge),
                "product_data": {"name": "Card processing surcharge"}}})
        expires = now + CHECKOUT_LIFETIME
        session = self._clients[account].v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": line_items,
                "client_reference_id": str(invoice.id),
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata, "description": f"Invoice {invoice.number}"},
                "success_url": f"{self._base_url}/pay/{link.token}?done=1",
                "cancel_url": f"{self._base_url}/pay/{link.token}",
                "expires_at": int(expires.timestamp()),
            },
            options={"idempotency_key": idempotency_key},
        )
        closing = getattr(session, "expires_at", None)
        closes = datetime.fromtimestamp(int(closing), timezone.utc) if closing else expires
        return Checkout(ref=session.id, url=session.url, expires_at=closes)

    def expire(self, ref: str, account: str) -> None:
        """Closes an open checkout; one already completed or expired is left as it is."""
        try:
            self._clients[account].v1.checkout.sessions.expire(ref)
        except stripe.InvalidRequestError:
            pass  # Stripe answers 400 for a session that is no longer open

    def parse_event(self, payload: bytes, headers: Mapping[str, str]) -> list[PaymentEvent]:
        signature = headers.get("Stripe-Signature")
        for secret in self._secrets:
            try:
                stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE)
                break
            except stripe.SignatureVerificationError:
                continue
            except ValueError as exc:
                raise InvalidSignature("not a JSON event") from exc
        else:
            raise InvalidSignature("Stripe-Signature does not verify")
        return events_from(json.loads(payload))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def events_from(event: dict[str, Any]) -> list[PaymentEvent]:
    """The ledger's view of one (verified) Stripe event; other event types are ignored."""
    kind, obj = event.get("type"), (event.get("data") or {}).get("object") or {}
    meta = obj.get("metadata") or {}
    at = datetime.fromtimestamp(int(event.get("created") or 0), timezone.utc)
    common = {"provider": "stripe", "event_id": event["id"], "occurred_at": at,
              "currency": (obj.get("currency") or "usd").upper(), "invoice_id": _int_or_none(meta.get("invoice_id"))}
    surcharge = from_cents(meta.get("surcharge_cents") or 0)
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if obj.get("payment_status") != "paid" or common["invoice_id"] is None:
            return []
        return [PaymentEvent(kind="paid", source_ref=obj.get("payment_intent") or obj["id"],
                             amount=from_cents(obj.get("amount_total") or 0) - surcharge,
                             details={"link_id": meta.get("link_id"), "checkout": obj["id"]}, **common)]
    if kind == "payment_intent.succeeded":
        if common["invoice_id"] is None:
            return []
        return [PaymentEvent(kind="paid", source_ref=obj["id"],
                             amount=from_cents(obj.get("amount_received") or obj.get("amount") or 0) - surcharge,
                             details={"link_id": meta.get("link_id")}, **common)]
    if kind == "charge.refunded":
        refunded = from_cents(obj.get("amount_refunded") or 0)
        paid = from_cents(obj.get("amount_captured") or obj.get("amount") or 0)
        # A refund of the whole charge gives back the surcharge too; only the invoice's part is booked.
        share = refunded if paid == 0 else money(refunded * (paid - surcharge) / paid)
        return [PaymentEvent(kind="refunded", source_ref=f"{obj['id']}:refunded:{cents(refunded)}", amount=share,
                             payment_ref=obj.get("payment_intent"), details={"charge": obj["id"]}, **common)]
    if kind == "charge.dispute.created":
        return [PaymentEvent(kind="disputed", source_ref=obj["id"], amount=from_cents(obj.get("amount") or 0),
                             payment_ref=obj.get("payment_intent"), details={"charge": obj.get("charge")}, **common)]
    if kind in ("charge.dispute.closed", "charge.dispute.funds_reinstated"):
        return [PaymentEvent(kind="dispute_closed" if kind == "charge.dispute.closed" else "dispute_reinstated",
                             source_ref=obj["id"], amount=from_cents(obj.get("amount") or 0),
                             reinstated=from_cents(_reinstated_cents(obj)), payment_ref=obj.get("payment_intent"),
                             details={"charge": obj.get("charge"), "outcome": obj.get("status") or ""}, **common)]
    return []


def _reinstated_cents(dispute: dict[str, Any]) -> int:
    """How much of the disputed amount is back in the account, or never left it, per the Dispute object.

    won: Stripe returns the disputed funds. warning_*: an inquiry, which never withdraws funds. Any
    other status (lost, prevented…): what the dispute's balance transactions show reinstated (Stripe
    reinstates e.g. the already refunded part of a partially refunded payment), else nothing.
    """
    amount = int(dispute.get("amount") or 0)
    status = dispute.get("status") or ""
    if status == "won" or status.startswith("warning_"):
        return amount
    back = sum(int(t.get("amount") or 0) for t in dispute.get("balance_transactions") or []
               if isinstance(t, dict) and int(t.get("amount") or 0) > 0)
    return min(back, amount)
