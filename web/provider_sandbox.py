"""The demo's provider sandbox: just enough of Twilio's and Telegram's APIs for the app's own channel
code to send through, served by the app itself (demo only, never in production).

- Twilio: POST .../twilio/2010-04-01/Accounts/<sid>/Messages.json (Basic auth with the demo
  credentials) answers 201 with a Message resource ("queued"), then, a moment later, POSTs a signed
  `MessageStatus=delivered` callback to the StatusCallback URL the app gave, as Twilio does.
  Files the simulated phone sent are held at .../Messages/<MM…>/Media/<ME…> (the webhook's
  MediaUrl0): GET needs Basic auth and answers 307 to an unauthenticated "CDN" URL that serves the
  bytes (and, like S3, refuses a request that carries credentials); DELETE removes the file.
- Telegram: POST .../telegram/bot<token>/sendMessage (and getMe) answer like the Bot API; files the
  simulated phone sent come back through getFile and .../telegram/file/bot<token>/<file_path>.

Nothing here leaves this machine: the only outbound request is the status callback to the app's
own public URL (127.0.0.1 in the demo). Received files live in memory only, a bounded number of
them (MEDIA_MAX_FILES, MEDIA_MAX_BYTES), until the app deletes them or newer ones push them out.
"""
from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, abort, current_app, jsonify, request

from bot.settings import Settings
from channels.twilio import sign_request

log = logging.getLogger(__name__)
bp = Blueprint("provider_sandbox", __name__, url_prefix="/simulator/provider")

DEMO_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEMO_TWILIO_AUTH_TOKEN = "demo-auth-token"
DEMO_SENDER = "+15555550100"
DEMO_TELEGRAM_BOT_TOKEN = "123456:DEMO"
DEMO_TELEGRAM_WEBHOOK_SECRET = "demo-secret"
DEMO_TELEGRAM_BOT = {"id": 123456, "is_bot": True, "first_name": "Puente Demo", "username": "puente_demo_bot"}
STATUS_DELAY = 0.5  # seconds between Twilio's 201 and its "delivered" callback
TWILIO_ROOT = "/simulator/provider/twilio"      # TWILIO_API_URL's path when the sandbox stands in
TELEGRAM_ROOT = "/simulator/provider/telegram"  # TELEGRAM_API_URL's path when the sandbox stands in
MEDIA_MAX_FILES = 200
MEDIA_MAX_BYTES = 100 * 1024 * 1024
TELEGRAM_MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API's getFile refuses bigger files
_message_ids = itertools.count(1)


def demo_provider_settings(settings: Settings, base_url: str) -> Settings:
    """`settings` with the demo's Twilio and Telegram credentials pointed at this sandbox, for each
    provider the user has not configured for real."""
    base_url = base_url.rstrip("/")
    changes: dict = {}
    if not settings.twilio_account_sid:
        changes.update(twilio_account_sid=DEMO_TWILIO_ACCOUNT_SID, twilio_auth_token=DEMO_TWILIO_AUTH_TOKEN,
                       twilio_sms_from=DEMO_SENDER, twilio_whatsapp_from="whatsapp:" + DEMO_SENDER,
                       twilio_api_url=f"{base_url}/simulator/provider/twilio", public_base_url=base_url)
    if not settings.telegram_bot_token:
        changes.update(telegram_bot_token=DEMO_TELEGRAM_BOT_TOKEN, telegram_webhook_secret=DEMO_TELEGRAM_WEBHOOK_SECRET,
                       telegram_api_url=f"{base_url}/simulator/provider/telegram")
    return settings.with_(**changes)


def _settings() -> Settings:
    return current_app.extensions["puente"].settings


def is_sandbox_url(api_url: str | None, root: str) -> bool:
    """True when a provider API URL (TWILIO_API_URL, TELEGRAM_API_URL) points at this sandbox."""
    return bool(api_url) and urlsplit(api_url).path.rstrip("/") == root


# -- files the simulated phones sent ----------------------------------------------------------
@dataclass
class _File:
    content: bytes
    content_type: str
    owner: str            # the Twilio account sid, or "telegram"
    parent: str = ""      # Twilio: the message sid the media belongs to
    token: str = ""       # Twilio: the CDN token
    file_path: str = ""   # Telegram: getFile's file_path
    unique_id: str = ""   # Telegram: file_unique_id


class _MediaStore:
    """Received files in memory, bounded by count and total size (the oldest go first)."""

    def __init__(self, max_files: int = MEDIA_MAX_FILES, max_bytes: int = MEDIA_MAX_BYTES):
        self._files: OrderedDict[str, _File] = OrderedDict()
        self._cdn: dict[str, str] = {}     # Twilio CDN token → media sid
        self._paths: dict[str, str] = {}   # Telegram file_path → file_id
        self._bytes = 0
        self.max_files, self.max_bytes = max_files, max_bytes
        self._lock = threading.Lock()

    def put(self, key: str, item: _File) -> None:
        with self._lock:
            self._drop(key)
            self._files[key] = item
            self._bytes += len(item.content)
            if item.token:
                self._cdn[item.token] = key
            if item.file_path:
                self._paths[item.file_path] = key
            while len(self._files) > 1 and (len(self._files) > self.max_files or self._bytes > self.max_bytes):
                self._drop(next(iter(self._files)))

    def get(self, key: str) -> _File | None:
        with self._lock:
            return self._files.get(key)

    def by_token(self, token: str) -> _File | None:
        with self._lock:
            key = self._cdn.get(token)
            return self._files.get(key) if key else None

    def by_path(self, file_path: str) -> _File | None:
        with self._lock:
            key = self._paths.get(file_path)
            return self._files.get(key) if key else None

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._drop(key)

    def _drop(self, key: str) -> bool:
        item = self._files.pop(key, None)
        if item is None:
            return False
        self._bytes -= len(item.content)
        self._cdn.pop(item.token, None)
        self._paths.pop(item.file_path, None)
        return True


media_store = _MediaStore()


def twilio_media_url(api_url: str, account_sid: str, message_sid: str, media_sid: str) -> str:
    return f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}"


def add_twilio_media(api_url: str, account_sid: str, message_sid: str, media_sid: str, content: bytes,
                     content_type: str) -> str:
    """Holds a file a simulated phone sent by MMS or WhatsApp, as Twilio would; returns its
    MediaUrl (the webhook's MediaUrl0). Adding the same media sid again replaces the file."""
    media_store.put(media_sid, _File(content=bytes(content), content_type=content_type, owner=account_sid,
                                     parent=message_sid, token=secrets.token_urlsafe(24)))
    return twilio_media_url(api_url, account_sid, message_sid, media_sid)


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic", "image/heif": "heif",
               "image/webp": "webp", "image/gif": "gif", "application/pdf": "pdf"}


def add_telegram_file(file_id: str, content: bytes, content_type: str, *, photo: bool) -> dict:
    """Holds a file a simulated phone sent by Telegram; returns its {file_id, file_unique_id,
    file_size} for the update (getFile and the file URL serve it)."""
    unique_id = "AQAD" + secrets.token_hex(8)
    folder = "photos" if photo else "documents"
    file_path = f"{folder}/file_{secrets.token_hex(6)}.{_EXTENSIONS.get(content_type, 'bin')}"
    media_store.put(file_id, _File(content=bytes(content), content_type=content_type, owner="telegram",
                                   file_path=file_path, unique_id=unique_id))
    return {"file_id": file_id, "file_unique_id": unique_id, "file_size": len(content)}


# -- Twilio ------------------------------------------------------------------------------------
def _twilio_error(status: int, code: int, message: str):
    return jsonify(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}",
                   status=status), status


def _twilio_authenticated(sid: str) -> bool:
    settings = _settings()
    auth = request.authorization
    return bool(settings.twilio_account_sid and auth is not None and auth.username == settings.twilio_account_sid
                and auth.password == settings.twilio_auth_token and sid == settings.twilio_account_sid)


@bp.post("/twilio/2010-04-01/Accounts/<sid>/Messages.json")
def twilio_create_message(sid: str):
    settings = _settings()
    if not _twilio_authenticated(sid):
        return _twilio_error(401, 20003, "Authenticate")
    form = request.form
    to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
    if not to:
        return _twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender:
        return _twilio_error(400, 21603, "A 'From' phone number is required.")
    message_sid = "SM" + secrets.token_hex(16)
    now = format_datetime(datetime.now(timezone.utc), usegmt=True)
    resource = {
        "account_sid": sid, "api_version": "2010-04-01", "body": body, "date_created": now, "date_sent": None,
        "date_updated": now, "direction": "outbound-api", "error_code": None, "error_message": None,
        "from": sender, "messaging_service_sid": None, "num_media": "0", "num_segments": "1", "price": None,
        "price_unit": "USD", "sid": message_sid, "status": "queued", "to": to,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media.json"},
        "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
    }
    callback = form.get("StatusCallback")
    if callback:
        params = {"MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": "delivered",
                  "SmsStatus": "delivered", "AccountSid": sid, "From": sender, "To": to, "ApiVersion": "2010-04-01"}
        threading.Thread(target=_status_callback, args=(callback, params, settings.twilio_auth_token),
                         name="sandbox-status-callback", daemon=True).start()
    return jsonify(resource), 201


def _status_callback(url: str, params: dict, auth_token: str) -> None:
    """Twilio's delivery receipt: a signed form POST to the StatusCallback URL."""
    time.sleep(STATUS_DELAY)  # after the app has stored the sid it got back
    try:
        requests.post(url, data=params, headers={"X-Twilio-Signature": sign_request(auth_token, url, params)},
                      timeout=10)
    except requests.RequestException as exc:
        log.warning("sandbox status callback failed: %s", type(exc).__name__)


@bp.route("/twilio/2010-04-01/Accounts/<sid>/Messages/<message_sid>/Media/<media_sid>", methods=["GET", "DELETE"])
def twilio_media(sid: str, message_sid: str, media_sid: str):
    """A received file: its bytes by way of a redirect to the CDN (GET), its Media resource
    (GET ….json), or its removal (DELETE, with or without .json), all with Basic auth."""
    if not _twilio_authenticated(sid):
        return _twilio_error(401, 20003, "Authenticate")
    as_json = media_sid.endswith(".json")
    media_sid = media_sid.removesuffix(".json")
    item = media_store.get(media_sid)
    path = request.path.removeprefix(bp.url_prefix + "/twilio")
    if item is None or item.owner != sid or item.parent != message_sid:
        return _twilio_error(404, 20404, f"The requested resource {path} was not found")
    if request.method == "DELETE":
        media_store.delete(media_sid)
        return Response(status=204)
    if as_json:
        now = format_datetime(datetime.now(timezone.utc), usegmt=True)
        return jsonify(account_sid=sid, content_type=item.content_type, date_created=now, date_updated=now,
                       parent_sid=message_sid, sid=media_sid, uri=path)
    # Twilio answers with a redirect to a short-lived, unauthenticated URL on its CDN.
    cdn = request.host_url.rstrip("/") + f"{bp.url_prefix}/twilio-cdn/{item.token}"
    return Response(status=307, headers={"Location": cdn})


@bp.get("/twilio-cdn/<token>")
def twilio_cdn(token: str):
    """The "CDN" copy of a received file: no credentials asked, and none accepted (like S3)."""
    xml = "application/xml"
    if "Authorization" in request.headers:
        return Response("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message>"
                        "</Error>", status=400, mimetype=xml)
    item = media_store.by_token(token)
    if item is None:
        return Response("<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                        status=404, mimetype=xml)
    return Response(item.content, mimetype=item.content_type, headers={"Cache-Control": "private, no-store"})


# -- Telegram ----------------------------------------------------------------------------------
def _telegram_params() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else request.form.to_dict()


def _telegram_token_ok(token: str) -> bool:
    return bool(_settings().telegram_bot_token) and token == _settings().telegram_bot_token


@bp.post("/telegram/bot<token>/getMe")
@bp.get("/telegram/bot<token>/getMe")
def telegram_get_me(token: str):
    if not _telegram_token_ok(token):
        return jsonify(ok=False, error_code=401, description="Unauthorized"), 401
    return jsonify(ok=True, result=DEMO_TELEGRAM_BOT)


@bp.post("/telegram/bot<token>/sendMessage")
def telegram_send_message(token: str):
    if not _telegram_token_ok(token):
        return jsonify(ok=False, error_code=401, description="Unauthorized"), 401
    params = _telegram_params()
    chat_id, text = str(params.get("chat_id") or ""), params.get("text") or ""
    if not chat_id.lstrip("-").isdigit():
        return jsonify(ok=False, error_code=400, description="Bad Request: chat not found"), 400
    if not text:
        return jsonify(ok=False, error_code=400, description="Bad Request: message text is empty"), 400
    result = {"message_id": next(_message_ids), "from": DEMO_TELEGRAM_BOT, "date": int(time.time()),
              "chat": {"id": int(chat_id), "type": "private"}, "text": text}
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            abort(400)
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        result["reply_markup"] = markup
    return jsonify(ok=True, result=result)


@bp.route("/telegram/bot<token>/getFile", methods=["GET", "POST"])
def telegram_get_file(token: str):
    if not _telegram_token_ok(token):
        return jsonify(ok=False, error_code=401, description="Unauthorized"), 401
    params = _telegram_params() or request.args.to_dict()
    file_id = str(params.get("file_id") or "")
    item = media_store.get(file_id) if file_id else None
    if item is None or item.owner != "telegram":
        return jsonify(ok=False, error_code=400, description="Bad Request: invalid file_id"), 400
    if len(item.content) > TELEGRAM_MAX_DOWNLOAD:
        return jsonify(ok=False, error_code=400, description="Bad Request: file is too big"), 400
    return jsonify(ok=True, result={"file_id": file_id, "file_unique_id": item.unique_id,
                                    "file_size": len(item.content), "file_path": item.file_path})


@bp.get("/telegram/file/bot<token>/<path:file_path>")
def telegram_file(token: str, file_path: str):
    if not _telegram_token_ok(token):
        return jsonify(ok=False, error_code=401, description="Unauthorized"), 401
    item = media_store.by_path(file_path)
    if item is None or item.owner != "telegram":
        return jsonify(ok=False, error_code=404, description="Not Found"), 404
    return Response(item.content, mimetype="application/octet-stream")
