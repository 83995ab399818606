"""The chat simulator (demo only): a phone-like page that talks to the engine like a webhook would."""
from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from bot.messages import CHANNELS, Inbound
from services.firm import get_firm
from services.identity import normalize_address
from services.models import Client, ContactPoint, Conversation, Message

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


def _runtime():
    return current_app.extensions["puente"]


@bp.get("")
def page():
    """The phone page, with the demo clients' numbers to pick from."""
    with _runtime().Session() as session:
        rows = session.execute(
            select(ContactPoint.address, Client.first_name, Client.last_name, Client.preferred_language)
            .join(Client, Client.id == ContactPoint.client_id).where(ContactPoint.kind == "phone")
            .order_by(ContactPoint.address, Client.id)
        ).all()
        firm_name = get_firm(session).name
    numbers: dict[str, list[str]] = {}
    for address, first, last, lang in rows:
        numbers.setdefault(address, []).append(f"{first} {last} ({lang})")
    return render_template("simulator.html", numbers=numbers, channels=CHANNELS, firm_name=firm_name)


@bp.post("/api/messages")
def send():
    """Accepts one message from the page exactly as a webhook accepts one from a provider."""
    data = request.get_json(silent=True) or {}
    channel, address = data.get("channel"), (data.get("address") or "").strip()
    text, choice = (data.get("text") or "").strip(), data.get("choice")
    if channel not in CHANNELS or not address or not (text or choice):
        abort(400)
    provider_id = data.get("id") or f"sim-{uuid.uuid4().hex}"
    message_id = _runtime().accept(Inbound(channel=channel, address=address, provider_id=str(provider_id)[:100],
                                           text=text, choice=choice))
    return jsonify(accepted=message_id is not None), 202


@bp.get("/api/messages")
def history():
    """The conversation so far (both directions) after message id `after`."""
    channel, address = request.args.get("channel"), request.args.get("address", "")
    after = request.args.get("after", 0, type=int)
    if channel not in CHANNELS or not address:
        abort(400)
    with _runtime().Session() as session:
        conv_id = session.scalar(select(Conversation.id).where(
            Conversation.channel == channel, Conversation.address == normalize_address(channel, address)))
        if conv_id is None:
            return jsonify(messages=[])
        rows = session.scalars(select(Message).where(Message.conversation_id == conv_id, Message.id > after)
                               .order_by(Message.id)).all()
        return jsonify(messages=[{
            "id": m.id, "direction": m.direction, "text": m.body, "state": m.state,
            "provider_id": m.provider_id if m.direction == "in" else None,
            "choices": (m.payload or {}).get("choices", []) if m.direction == "out" else [],
            "at": m.received_at.isoformat(),
        } for m in rows if m.direction == "in" or m.state in ("sent", "delivered")])
