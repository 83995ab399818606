"""Stripe webhook: verify `Stripe-Signature`, apply the payment events, answer.

Processed inline, in one transaction: it is database work only (no network), so store-then-ack
adds nothing. Forged → 403 and nothing stored; a replayed event id → 200, no second ledger row;
an event that names no invoice we know yet (a refund before its payment) → 409, nothing stored,
and Stripe sends it again later.
"""
from __future__ import annotations

from flask import abort, jsonify, request

from web.webhooks import bp, runtime

MAX_BODY = 512 * 1024


@bp.post("/stripe")
def stripe_event():
    desk = runtime().payments
    if desk.provider is None or desk.provider.name != "stripe":
        abort(404)  # Stripe is not configured here
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    received = desk.receive(desk.provider, request.get_data(cache=False), request.headers)
    return jsonify(received=received.status == 200, replay=received.replay), received.status
