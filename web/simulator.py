"""The chat simulator (demo only): a phone-like page that talks to the engine like a webhook would.

The page can attach a photo or PDF (multipart/form-data on the same POST). With the demo's provider
sandbox standing in for Twilio or Telegram, the file travels as the provider would deliver it: the
sandbox holds the bytes, the webhook carries only a reference (Twilio's MediaUrl0, Telegram's
file_id), and the runtime downloads it through the channel's own `fetch_media`.
"""
from __future__ import annotations

import hashlib
import io
import mimetypes
import re
import threading
import time
import uuid
from collections import OrderedDict

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from PIL import Image
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from bot.messages import CHANNELS, Inbound, Media
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel, sign_request
from services.firm import get_firm
from services.identity import normalize_address
from services.models import Client, ContactPoint, Conversation, Message
from web import provider_sandbox

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
MAX_FILE = 20 * 1024 * 1024     # what the page lets through (what a phone's chat app would send at most)
MAX_REQUEST = 21 * 1024 * 1024  # the file plus the form fields around it


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


class _Upload:
    """A file the page attached: its bytes, type and name as the phone would know them."""

    def __init__(self, content: bytes, content_type: str, filename: str):
        self.content, self.content_type, self.filename = content, content_type, filename


def _upload() -> _Upload | None:
    """The form's file, if one was attached (an empty file input sends a nameless part)."""
    storage = request.files.get("file")
    if storage is None or not storage.filename:
        return None
    content = storage.read(MAX_FILE + 1)
    if len(content) > MAX_FILE:
        raise RequestEntityTooLarge()
    name = storage.filename.replace("\\", "/").rsplit("/", 1)[-1]  # a path some browsers send: keep the name
    filename = re.sub(r"[\x00-\x1f\x7f]", "_", name)[:200] or "file"
    content_type = (storage.mimetype or "").lower()
    if not content_type or content_type == "application/octet-stream":
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return _Upload(content, content_type, filename)


def _sandboxed(provider) -> bool:
    """True when the channel's provider API is the demo's sandbox (which can hold the file)."""
    settings = _runtime().settings
    if isinstance(provider, TwilioChannel):
        return provider_sandbox.is_sandbox_url(provider.api_url, provider_sandbox.TWILIO_ROOT)
    return provider_sandbox.is_sandbox_url(settings.telegram_api_url, provider_sandbox.TELEGRAM_ROOT)


def _whatsapp_type(content_type: str) -> str:
    kind = content_type.split("/", 1)[0]
    return kind if kind in ("image", "video", "audio") else "document"


def _twilio_webhook(provider: TwilioChannel, channel: str, address: str, text: str, choice: str | None, page_id: str,
                    upload: _Upload | None = None):
    settings = _runtime().settings
    digest = hashlib.sha256(f"{channel}:{page_id}".encode()).hexdigest()
    sid = ("MM" if upload else "SM") + digest[:32]
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
    if upload:
        # Twilio keeps the file and sends only where to fetch it (with the account's credentials).
        media_sid = "ME" + hashlib.sha256(f"{channel}:{page_id}:0".encode()).hexdigest()[:32]
        url = provider_sandbox.add_twilio_media(provider.api_url, provider.account_sid, sid, media_sid,
                                                upload.content, upload.content_type)
        form.update(NumMedia="1", MediaUrl0=url, MediaContentType0=upload.content_type)
    if channel == "whatsapp":
        kind = "button" if choice else (_whatsapp_type(upload.content_type) if upload else "text")
        form.update(ProfileName="Demo", WaId=re.sub(r"\D", "", address), MessageType=kind)
        if choice:
            form.update(ButtonPayload=choice, ButtonText=body)
    path = "/webhooks/twilio"
    signature = sign_request(settings.twilio_auth_token, settings.public_base_url + path, form)
    response = current_app.test_client().post(path, data=form, headers={"X-Twilio-Signature": signature})
    return sid, response.status_code


def _image_size(content: bytes) -> tuple[int, int]:
    """A photo's width and height as Telegram reports them (read from the header, not decoded)."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - the size is only a detail of the update
        return 0, 0


def _telegram_webhook(channel: str, address: str, text: str, choice: str | None, page_id: str,
                      upload: _Upload | None = None):
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
    elif upload:
        # Telegram keeps the file; the update carries its file_id (getFile tells where to download it).
        # A JPEG goes as a photo, anything else as a document (Telegram re-encodes photos as JPEG).
        photo = upload.content_type == "image/jpeg"
        file_id = "BQAC" + hashlib.sha256(f"{channel}:{page_id}:file".encode()).hexdigest()[:40]
        ref = provider_sandbox.add_telegram_file(file_id, upload.content, upload.content_type, photo=photo)
        message = {"message_id": update_id % 1_000_000, "from": person, "date": now, "chat": chat}
        if photo:
            width, height = _image_size(upload.content)
            message["photo"] = [{**ref, "width": width, "height": height}]
        else:
            message["document"] = {**ref, "file_name": upload.filename, "mime_type": upload.content_type}
        if text:
            message["caption"] = text
        update = {"update_id": update_id, "message": message}
    else:
        update = {"update_id": update_id, "message": {"message_id": update_id % 1_000_000, "from": person,
                                                       "date": now, "chat": chat, "text": text or choice or ""}}
    response = current_app.test_client().post(
        "/webhooks/telegram", json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": settings.telegram_webhook_secret or ""})
    return f"u{update_id}", response.status_code


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc):
    return jsonify(accepted=False, error="too_large", max_bytes=MAX_FILE), 413


@bp.post("/api/messages")
def send():
    """Accepts one message from the page, JSON or (with an attached file) multipart/form-data:
    with a provider configured (the demo's sandbox) as the provider's signed webhook, through the
    same route; without one, straight to the runtime."""
    if request.content_length is not None and request.content_length > MAX_REQUEST:
        raise RequestEntityTooLarge()
    upload = None
    if request.mimetype == "multipart/form-data":
        try:  # also caps a body sent without Content-Length (Flask ≥ 3.1; else the app's cap applies)
            request.max_content_length = MAX_REQUEST
        except AttributeError:
            pass
        data = request.form
        upload = _upload()
    else:
        data = request.get_json(silent=True) or {}
    channel, address = data.get("channel"), (data.get("address") or "").strip()
    text, choice = (data.get("text") or "").strip(), (None if upload else data.get("choice") or None)
    if channel not in CHANNELS or not address or not (text or choice or upload):
        abort(400)
    page_id = str(data.get("id") or f"sim-{uuid.uuid4().hex}")[:100]
    provider = _provider(channel)
    if provider is not None and upload and not _sandboxed(provider):
        provider = None  # a real provider account cannot serve the page's file: hand over the bytes
    if provider is None:
        media = (Media(content_type=upload.content_type, filename=upload.filename, size=len(upload.content),
                       content=upload.content),) if upload else ()
        message_id = _runtime().accept(Inbound(channel=channel, address=_address(channel, address) or address,
                                               provider_id=page_id, text=text, choice=choice, media=media))
        return jsonify(accepted=message_id is not None), 202
    if isinstance(provider, TwilioChannel):
        provider_id, status = _twilio_webhook(provider, channel, address, text, choice, page_id, upload)
    else:
        provider_id, status = _telegram_webhook(channel, address, text, choice, page_id, upload)
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
            "media": [{"content_type": f.get("content_type"), "filename": f.get("filename")}
                      for f in (m.media or []) if isinstance(f, dict)] if m.direction == "in" else [],
            "at": m.received_at.isoformat(),
        } for m in rows if m.direction == "in" or m.state in ("sent", "delivered")])
