"""The chat simulator (demo only): a phone-like page that talks to the engine like a webhook would."""
from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections import OrderedDict

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from sqlalchemy import select

from bot.messages import CHANNELS, Inbound
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel, sign_request
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


class _PageIds:
    """The page's own id for each provider id the simulator made up (the page confirms its pending
    bubbles by that id). Bounded: only a live page's recent messages need it."""

    def __init__(self, size: int = 2000):
        self._ids: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def remember(self, channel: str, provider_id: str, page_id: str) -> None:
        with self._lock:
            self._ids[(channel, provider_id)] = page_id
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def get(self, channel: str, provider_id: str | None) -> str | None:
        with self._lock:
            return self._ids.get((channel, provider_id or ""), provider_id)


_page_ids = _PageIds()


def _provider(channel: str):
    """The channel's provider (Twilio or Telegram, the demo's sandbox or real), else None."""
    found = _runtime().channels.get(channel)
    return found if isinstance(found, (TwilioChannel, TelegramChannel)) else None


def _chat_id(address: str) -> str | None:
    """A Telegram chat id is a number: a phone number picked on the page becomes its digits."""
    digits = re.sub(r"\D", "", address)
    return digits or None


def _address(channel: str, address: str) -> str | None:
    """The conversation's address as the provider's webhook gives it."""
    return _chat_id(address) if channel == "telegram" and _provider(channel) else address


def _offered(channel: str, address: str) -> list[dict]:
    """The choices of the newest reply in this conversation (what the page's buttons came from)."""
    with _runtime().Session() as session:
        conv_id = session.scalar(select(Conversation.id).where(
            Conversation.channel == channel, Conversation.address == normalize_address(channel, address)))
        if conv_id is None:
            return []
        payload = session.scalar(select(Message.payload).where(
            Message.conversation_id == conv_id, Message.direction == "out").order_by(Message.id.desc()).limit(1))
    return list((payload or {}).get("choices") or [])


def _twilio_webhook(provider: TwilioChannel, channel: str, address: str, text: str, choice: str | None, page_id: str):
    settings = _runtime().settings
    sid = "SM" + hashlib.sha256(f"{channel}:{page_id}".encode()).hexdigest()[:32]
    body = text
    if choice:
        offered = _offered(channel, address)
        labels = {c.get("value"): c.get("label") for c in offered}
        if channel == "sms":
            # SMS has no buttons: the person types the choice's number, as the numbered list asks.
            values = [c.get("value") for c in offered]
            body = str(values.index(choice) + 1) if choice in values else (text or labels.get(choice) or choice)
        else:
            body = text or labels.get(choice) or choice
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    form = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": provider.account_sid,
            "From": prefix + address, "To": provider.sender or "", "Body": body, "NumMedia": "0",
            "NumSegments": "1", "ApiVersion": "2010-04-01", "SmsStatus": "received"}
    if channel == "whatsapp":
        form.update(ProfileName="Demo", WaId=re.sub(r"\D", "", address), MessageType="button" if choice else "text")
        if choice:
            form.update(ButtonPayload=choice, ButtonText=body)
    path = "/webhooks/twilio"
    signature = sign_request(settings.twilio_auth_token, settings.public_base_url + path, form)
    response = current_app.test_client().post(path, data=form, headers={"X-Twilio-Signature": signature})
    return sid, response.status_code


def _telegram_webhook(channel: str, address: str, text: str, choice: str | None, page_id: str):
    settings = _runtime().settings
    chat_id = _chat_id(address)
    if chat_id is None:
        abort(400)
    update_id = int(hashlib.sha256(f"{channel}:{page_id}".encode()).hexdigest()[:12], 16)
    now = int(time.time())
    person = {"id": int(chat_id), "is_bot": False, "first_name": "Demo", "language_code": "es"}
    chat = {"id": int(chat_id), "type": "private", "first_name": "Demo"}
    offered = _offered(channel, chat_id) if choice else []
    labels = {c.get("value"): c.get("label") for c in offered}
    if choice and choice in labels:
        # A button press: Telegram sends the pressed message, keyboard and all, with the callback data.
        keyboard = [[{"text": c.get("label") or "", "callback_data": c.get("value")}] for c in offered]
        update = {"update_id": update_id, "callback_query": {
            "id": str(update_id), "from": person, "chat_instance": str(chat_id), "data": choice,
            "message": {"message_id": update_id % 1_000_000, "date": now, "chat": chat, "text": "",
                        "reply_markup": {"inline_keyboard": keyboard}}}}
    else:
        update = {"update_id": update_id, "message": {"message_id": update_id % 1_000_000, "from": person,
                                                       "date": now, "chat": chat, "text": text or choice or ""}}
    response = current_app.test_client().post(
        "/webhooks/telegram", json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": settings.telegram_webhook_secret or ""})
    return f"u{update_id}", response.status_code


@bp.post("/api/messages")
def send():
    """Accepts one message from the page: with a provider configured (the demo's sandbox) as the
    provider's signed webhook, through the same route; without one, straight to the runtime."""
    data = request.get_json(silent=True) or {}
    channel, address = data.get("channel"), (data.get("address") or "").strip()
    text, choice = (data.get("text") or "").strip(), data.get("choice")
    if channel not in CHANNELS or not address or not (text or choice):
        abort(400)
    page_id = str(data.get("id") or f"sim-{uuid.uuid4().hex}")[:100]
    provider = _provider(channel)
    if provider is None:
        message_id = _runtime().accept(Inbound(channel=channel, address=address, provider_id=page_id,
                                               text=text, choice=choice))
        return jsonify(accepted=message_id is not None), 202
    if isinstance(provider, TwilioChannel):
        provider_id, status = _twilio_webhook(provider, channel, address, text, choice, page_id)
    else:
        provider_id, status = _telegram_webhook(channel, address, text, choice, page_id)
    if not 200 <= status < 300:
        return jsonify(accepted=False), status
    _page_ids.remember(channel, provider_id, page_id)
    return jsonify(accepted=True), 202


@bp.get("/api/messages")
def history():
    """The conversation so far (both directions) after message id `after`."""
    channel, address = request.args.get("channel"), request.args.get("address", "")
    after = request.args.get("after", 0, type=int)
    if channel not in CHANNELS or not address:
        abort(400)
    address = _address(channel, address)
    if not address:
        return jsonify(messages=[])
    with _runtime().Session() as session:
        conv_id = session.scalar(select(Conversation.id).where(
            Conversation.channel == channel, Conversation.address == normalize_address(channel, address)))
        if conv_id is None:
            return jsonify(messages=[])
        rows = session.scalars(select(Message).where(Message.conversation_id == conv_id, Message.id > after)
                               .order_by(Message.id)).all()
        return jsonify(messages=[{
            "id": m.id, "direction": m.direction, "text": m.body, "state": m.state,
            "provider_id": _page_ids.get(channel, m.provider_id) if m.direction == "in" else None,
            "choices": (m.payload or {}).get("choices", []) if m.direction == "out" else [],
            "at": m.received_at.isoformat(),
        } for m in rows if m.direction == "in" or m.state in ("sent", "delivered")])
