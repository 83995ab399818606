"""Twilio webhooks: inbound SMS/WhatsApp and delivery status callbacks."""
from __future__ import annotations

from flask import Response, abort, request
from sqlalchemy.exc import DBAPIError

from channels.twilio import TwilioChannel
from services import delivery
from web.webhooks import bp, runtime

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _channel() -> TwilioChannel:
    channel = runtime().channels.get("sms")
    if not isinstance(channel, TwilioChannel):
        abort(404)  # Twilio is not configured here
    return channel


def _public_url() -> str:
    """The URL Twilio signed: our configured public address, never a header a proxy could forge."""
    query = request.query_string.decode()
    return runtime().settings.public_base_url + request.path + (f"?{query}" if query else "")


def _verified(channel: TwilioChannel) -> None:
    if not channel.verify(_public_url(), request.form, request.headers.get("X-Twilio-Signature")):
        abort(403)


@bp.post("/twilio")
def twilio_inbound():
    """Stores the message (a replayed MessageSid is a no-op) and acknowledges with empty TwiML."""
    channel = _channel()
    _verified(channel)
    try:
        runtime().accept(channel.parse(request.form))
    except DBAPIError:
        abort(503)  # Twilio retries
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.post("/twilio/status")
def twilio_status():
    """Moves an outbound message's delivery state forward; unknown sids are kept for reconciliation."""
    channel = _channel()
    _verified(channel)
    form = request.form
    try:
        with runtime().Session.begin() as session:
            delivery.record_status(session, "twilio", ("sms", "whatsapp"), form.get("MessageSid", ""), form.get("MessageStatus", ""),
                                   form.get("ErrorCode") or None)
    except DBAPIError:
        abort(503)
    return Response(status=204)
