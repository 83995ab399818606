"""The demo's provider sandbox: just enough of Twilio's and Telegram's APIs for the app's own channel
code to send through, served by the app itself (demo only, never in production).

- Twilio: POST .../twilio/2010-04-01/Accounts/<sid>/Messages.json (Basic auth with the demo
  credentials) answers 201 with a Message resource ("queued"), then, a moment later, POSTs a signed
  `MessageStatus=delivered` callback to the StatusCallback URL the app gave, as Twilio does.
- Telegram: POST .../telegram/bot<token>/sendMessage (and getMe) answer like the Bot API.

Nothing here leaves this machine: the only outbound request is the status callback to the app's
own public URL (127.0.0.1 in the demo).
"""
from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import requests
from flask import Blueprint, abort, current_app, jsonify, request

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


# -- Twilio ------------------------------------------------------------------------------------
def _twilio_error(status: int, code: int, message: str):
    return jsonify(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}",
                   status=status), status


@bp.post("/twilio/2010-04-01/Accounts/<sid>/Messages.json")
def twilio_create_message(sid: str):
    settings = _settings()
    auth = request.authorization
    if (not settings.twilio_account_sid or auth is None or auth.username != settings.twilio_account_sid
            or auth.password != settings.twilio_auth_token or sid != settings.twilio_account_sid):
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
