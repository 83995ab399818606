"""Telegram: verify the webhook's secret header, parse updates into Inbound, send replies with
inline buttons, fetch files users sent.

The channel holds plain values (token, secret, server root), never a long-lived client: every
call builds its own Bot on a fresh event loop and shuts it down, so worker threads share nothing.
The token is a password: it is kept out of reprs, of the errors raised here and (through a
logging filter) of the request lines httpx logs at INFO.

How updates become Inbound (anything not listed is acknowledged and ignored, returning []):
- provider_id is f"u{update_id}" (Telegram resends an update until it gets a 2xx); the address
  is the chat id. Only one-to-one chats count: group, supergroup and channel messages are
  ignored, because a group is no place to disclose a client's matter.
- a text message → Inbound(text=...); a caption becomes the text of its photo or document.
- a photo → one Media: only the largest PhotoSize, content_type "image/jpeg",
  url "tg-file:<file_id>" (the runtime's media step hands it to `fetch_media`), size = file_size.
- a document → Media(mime_type, url "tg-file:<file_id>", filename=file_name, size=file_size).
- `/start <token>` (a t.me/<bot>?start=<token> deep link) → Inbound(text="/start",
  choice="start:<token>") when the token is 1–64 chars of [A-Za-z0-9_-]; a bare or malformed
  `/start` is Inbound(text="/start") with no choice (a malformed token is dropped, not stored).
- a shared contact → Inbound(text="", choice="contact:+<digits>") when the person shares their
  own number (contact.user_id is the sender), and choice="contact:other" for somebody else's
  card: the core may trust the first (Telegram vouches for it) and must not treat the second as
  the sender's number. The number stays out of the message text.
- an inline-button press (callback_query) → Inbound(choice=callback_data, text=the button's
  label when the pressed message still carries its keyboard, else ""), address = that message's
  chat. `acknowledgement(update)` gives the webhook answer that stops the button's spinner.
- edited messages, channel posts, stickers, locations, voice notes without a caption, polls,
  inline queries and the like → [].
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup
from telegram.error import (BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter,
                            TelegramError, TimedOut)
from telegram.request import HTTPXRequest

from bot.messages import Inbound, Media, Reply
from channels.base import ChatPacer, MediaTooLarge, SendResult, numbered_text, split_text

TEXT_LIMIT = 4096  # Telegram counts UTF-16 code units
CALLBACK_DATA_LIMIT = 64  # bytes
MAX_DOWNLOAD = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
FILE_PREFIX = "tg-file:"
# A later part of a split reply that hits flood control waits this long at most, then gives up.
MAX_INLINE_WAIT = 5.0
# Telegram asks bots to keep to about one message a second in a chat (short bursts are tolerated).
CHAT_RATE, CHAT_BURST = 1.0, 3
_START = re.compile(r"^/start(?:@\w+)?(?:\s+(\S+))?\s*$")
_DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# httpx exceptions (the SDK's transport) raised before the request left this machine.
_NOT_SENT = {"ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol", "InvalidURL"}


class TooLarge(MediaTooLarge):
    """The file is bigger than the cap (Telegram's 20 MB or the caller's)."""


class FetchError(RuntimeError):
    """A file could not be fetched, for now (the message never names the URL: it carries the token)."""


class FileRefused(FetchError, PermissionError):
    """Not a Telegram file of ours, or a file id Telegram refuses (invalid, expired): retrying won't help."""


class _TokenRedactor(logging.Filter):
    """Replaces bot tokens (and webhook secrets) in log records: httpx logs each request URL,
    `/bot<token>/…`, at INFO."""

    _pattern = re.compile(r"bot\d+:[A-Za-z0-9_-]+")

    def __init__(self):
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._pattern.sub("bot<token>", message)
        for token in self.tokens:
            clean = clean.replace(token, "<token>")
        # Always freeze the text: PTB logs dicts it mutates afterwards (getFile's file_path
        # becomes a URL with the token), so formatting the record later could leak it.
        record.msg, record.args = clean, None
        return True


_REDACTOR = _TokenRedactor()
_REDACTED_LOGGERS = ("httpx", "httpcore", "telegram.Bot", "telegram.request.BaseRequest",
                     "telegram.request.HTTPXRequest")


class TelegramChannel:
    """Sends and receives through the Telegram Bot API (or a server speaking it at `api_url`)."""

    name = "telegram"

    def __init__(self, token: str, webhook_secret: str, api_url: str = "https://api.telegram.org",
                 timeout: float = 10):
        if not token:
            raise ValueError("a Telegram bot token is required")
        self._token = token
        self._secret = webhook_secret or ""
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._pacer = ChatPacer(CHAT_RATE, CHAT_BURST)  # shared by this process's send jobs
        _REDACTOR.tokens.add(token)
        if len(self._secret) >= 8:  # PTB logs setWebhook's parameters at DEBUG
            _REDACTOR.tokens.add(self._secret)
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(_REDACTOR)  # a no-op when already there

    def __repr__(self) -> str:
        return f"TelegramChannel(api_url={self._api_url!r})"

    # -- inbound ------------------------------------------------------------------------------
    def verify(self, header_value: str | None) -> bool:
        """True when X-Telegram-Bot-Api-Secret-Token carries our secret (constant-time)."""
        if not header_value or not self._secret:
            return False
        return hmac.compare_digest(header_value.encode("utf-8"), self._secret.encode("utf-8"))

    def parse(self, update: dict) -> list[Inbound]:
        """One update → zero or one Inbound (see the module docstring for each kind)."""
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return []
        provider_id = f"u{update_id}"
        if isinstance(update.get("message"), dict):
            return self._parse_message(provider_id, update["message"])
        if isinstance(update.get("callback_query"), dict):
            return self._parse_button(provider_id, update["callback_query"])
        return []

    def acknowledgement(self, update: dict) -> dict:
        """The webhook's answer body: for a button press, answerCallbackQuery (Telegram runs a
        method returned in the webhook answer, so the button stops spinning with no extra call)."""
        query = update.get("callback_query") if isinstance(update, dict) else None
        if isinstance(query, dict) and query.get("id"):
            return {"method": "answerCallbackQuery", "callback_query_id": str(query["id"])}
        return {}

    def _parse_message(self, provider_id: str, message: dict) -> list[Inbound]:
        chat = message.get("chat") or {}
        if "id" not in chat or chat.get("type", "private") != "private":
            return []
        received_at = _timestamp(message.get("date"))
        text = message.get("text") or message.get("caption") or ""
        text = text if isinstance(text, str) else ""
        link = None
        media: list[Media] = []
        start = _START.match(text.strip()) if message.get("text") else None
        if start:
            token = start.group(1)
            text, link = "/start", (f"start:{token}" if token and _DEEP_LINK.match(token) else None)
        if isinstance(message.get("photo"), list) and message["photo"]:
            media.append(_largest_photo(message["photo"]))
        document = message.get("document")
        if isinstance(document, dict) and document.get("file_id"):
            media.append(Media(content_type=document.get("mime_type") or "application/octet-stream",
                               url=FILE_PREFIX + document["file_id"], filename=document.get("file_name"),
                               size=document.get("file_size")))
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("phone_number"):
            sender = (message.get("from") or {}).get("id")
            own = sender is not None and contact.get("user_id") == sender
            digits = re.sub(r"\D", "", str(contact["phone_number"]))
            text, link = "", (f"contact:+{digits}" if own and digits else "contact:other")
        if not (text or link or media):
            return []
        return [Inbound(channel=self.name, address=str(chat["id"]), provider_id=provider_id, text=text,
                        media=tuple(media), received_at=received_at, link=link)]

    def _parse_button(self, provider_id: str, query: dict) -> list[Inbound]:
        message = query.get("message") or {}
        chat = message.get("chat") or {}
        data = query.get("data")
        if not isinstance(data, str) or not data or "id" not in chat or chat.get("type", "private") != "private":
            return []  # inline-mode and game buttons carry no chat of ours
        label = None
        for row in (message.get("reply_markup") or {}).get("inline_keyboard") or []:
            for button in row:
                if isinstance(button, dict) and button.get("callback_data") == data:
                    label = str(button.get("text") or "")
        if label is None:
            return []  # data that was never on one of our buttons (a modified client): ignored
        return [Inbound(channel=self.name, address=str(chat["id"]), provider_id=provider_id, text=label,
                        choice=data)]

    # -- outbound -----------------------------------------------------------------------------
    def send(self, address: str, reply: Reply) -> SendResult:
        """Sends the reply as one or more messages (≤ 4096 chars each), its choices as inline buttons
        on the last one. The provider_id is the last message's id."""
        return asyncio.run(self._send(address, reply))

    async def _send(self, address: str, reply: Reply) -> SendResult:
        markup = _keyboard(reply)
        text = reply.text if markup is not None or not reply.choices else numbered_text(reply)
        parts = _split(text) or [text]
        request = self._request()
        bot = self._bot(request)
        try:
            last_id = None
            for i, part in enumerate(parts):
                outcome = await self._send_part(bot, address, part, markup if i == len(parts) - 1 else None,
                                                later=i > 0)
                if isinstance(outcome, SendResult):
                    return outcome
                last_id = outcome
            return SendResult("sent", provider_id=str(last_id))
        finally:
            await request.shutdown()

    async def _send_part(self, bot: Bot, chat_id: str, text: str, markup, *, later: bool) -> int | SendResult:
        """The message id, or the outcome that ends the send. A part after the first was preceded
        by delivered parts, so anything but a clear failure is "unknown" (never resend the start)."""
        for attempt in range(3 if later else 1):
            # Paced to the chat's rate; a first part facing a long wait goes back to the queue instead
            # (nothing was sent), a later part waits its turn (the earlier parts are out).
            wait = self._pacer.reserve(chat_id, max_wait=60.0 if later else MAX_INLINE_WAIT)
            if wait is None:
                return (SendResult("unknown", error="partly_sent") if later
                        else SendResult("retry", error="rate_limited", retry_after=MAX_INLINE_WAIT))
            if wait:
                await asyncio.sleep(wait)
            try:
                message = await bot.send_message(chat_id=chat_id, text=text, reply_markup=markup)
                return message.message_id
            except RetryAfter as exc:
                seconds = _retry_after(exc)
                if later and attempt < 2 and seconds <= MAX_INLINE_WAIT:
                    await asyncio.sleep(seconds)
                    continue
                outcome = SendResult("retry", error="rate_limited", retry_after=seconds)
            except Exception as exc:  # noqa: BLE001 - every outcome is mapped, none escapes with the URL
                outcome = _outcome(exc)
            break
        if later and outcome.state in ("retry", "unknown"):
            return SendResult("unknown", error="partly_sent")
        return outcome

    def set_webhook(self, url: str, allowed_updates: tuple[str, ...] = ("message", "callback_query")) -> bool:
        """Points Telegram at our webhook with the secret header (deployment; not used per message)."""

        async def run() -> bool:
            request = self._request()
            try:
                return await self._bot(request).set_webhook(url=url, secret_token=self._secret,
                                                            allowed_updates=list(allowed_updates))
            finally:
                await request.shutdown()

        try:
            return asyncio.run(run())
        except TelegramError as exc:
            raise FetchError(f"setWebhook failed: {type(exc).__name__}") from None

    # -- files --------------------------------------------------------------------------------
    def fetch_media(self, url: str, max_bytes: int | None = None) -> bytes:
        """The runtime's media step: a Media.url of ours ("tg-file:<file_id>") → bytes.
        Raises FileRefused (a PermissionError) for any other URL, TooLarge, FetchError."""
        if not url.startswith(FILE_PREFIX):
            raise FileRefused("not a Telegram file reference")
        return self.fetch_file(url, max_bytes or MAX_DOWNLOAD)

    def fetch_file(self, file_id: str, max_bytes: int = MAX_DOWNLOAD) -> bytes:
        """The file's bytes (getFile, then a download capped while streaming). Accepts the
        Media.url form "tg-file:<file_id>" too. Raises TooLarge beyond `max_bytes`, FileRefused
        for a file id Telegram refuses, FetchError when Telegram cannot be reached (try again)."""
        if file_id.startswith(FILE_PREFIX):
            file_id = file_id[len(FILE_PREFIX):]
        file_path, size = asyncio.run(self._file_info(file_id))
        if size and size > max_bytes:
            raise TooLarge(max_bytes)
        url = f"{self._api_url}/file/bot{self._token}/{quote(file_path)}"
        chunks, total = [], 0
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - our own setting
                while chunk := response.read(64 * 1024):
                    total += len(chunk)
                    if total > max_bytes:
                        raise TooLarge(max_bytes)
                    chunks.append(chunk)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"download failed: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(f"download failed: {type(exc).__name__}") from None
        return b"".join(chunks)

    async def _file_info(self, file_id: str) -> tuple[str, int | None]:
        request = self._request()
        try:
            file = await self._bot(request).get_file(file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise TooLarge(MAX_DOWNLOAD) from None  # the Bot API serves files up to 20 MB
            raise FileRefused("getFile refused the file id") from None
        except TelegramError as exc:
            raise FetchError(f"getFile failed: {type(exc).__name__}") from None
        finally:
            await request.shutdown()
        if not file.file_path:
            raise FetchError("getFile returned no file path")
        path = file.file_path
        # PTB may already have made file_path an absolute URL on our file server: keep the path.
        prefix = f"{self._api_url}/file/bot{self._token}/"
        return (path[len(prefix):] if path.startswith(prefix) else path), file.file_size

    # -- plumbing -----------------------------------------------------------------------------
    def _request(self) -> HTTPXRequest:
        t = self._timeout
        return HTTPXRequest(connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t)

    def _bot(self, request: HTTPXRequest) -> Bot:
        # One request object serves both slots; the caller shuts it down. Bot.initialize() is not
        # called: it would spend a getMe round trip on every send.
        return Bot(self._token, base_url=f"{self._api_url}/bot", base_file_url=f"{self._api_url}/file/bot",
                   request=request, get_updates_request=request)


def _keyboard(reply: Reply) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """One button per row; None without choices, or when a value is too long for callback_data
    (then the choices go out as a numbered list, which the core also understands). A reply that
    offers to share the phone number gets Telegram's one-time contact button instead."""
    if not reply.choices and reply.contact_button:
        return ReplyKeyboardMarkup([[KeyboardButton(reply.contact_button, request_contact=True)]],
                                   one_time_keyboard=True, resize_keyboard=True)
    if not reply.choices:
        return None
    if any(len(c.value.encode("utf-8")) > CALLBACK_DATA_LIMIT or not c.value or not c.label for c in reply.choices):
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(c.label, callback_data=c.value)] for c in reply.choices])


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _split(text: str) -> list[str]:
    """Parts of at most TEXT_LIMIT UTF-16 units (an emoji counts twice on Telegram's side)."""
    limit = TEXT_LIMIT
    while True:
        parts = split_text(text, limit)
        over = max((_utf16_len(p) - TEXT_LIMIT for p in parts), default=0)
        if over <= 0:
            return parts
        # Cutting k characters removes k to 2k units; half the surplus (rounded up) keeps the
        # limit at or above TEXT_LIMIT // 2, where every part fits whatever its characters.
        limit -= (over + 1) // 2


def _largest_photo(sizes: list) -> Media:
    """Telegram sends several sizes of one photo; only the largest is worth keeping."""
    valid = [s for s in sizes if isinstance(s, dict) and s.get("file_id")]
    best = max(valid, key=lambda s: ((s.get("width") or 0) * (s.get("height") or 0), s.get("file_size") or 0))
    return Media(content_type="image/jpeg", url=FILE_PREFIX + best["file_id"], size=best.get("file_size"))


def _timestamp(value) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return datetime.now(timezone.utc)


def _retry_after(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is going away
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _cause(exc: BaseException) -> str:
    return type(exc.__cause__).__name__ if exc.__cause__ is not None else ""


def _outcome(exc: Exception) -> SendResult:
    """Maps a failed send onto SendResult's states (the error is a short code, never the message)."""
    if isinstance(exc, RetryAfter):
        return SendResult("retry", error="rate_limited", retry_after=_retry_after(exc))
    if isinstance(exc, TimedOut):
        # A connect or pool timeout never reached Telegram; a read timeout may have been delivered.
        return SendResult("retry", error="timeout") if _cause(exc) in _NOT_SENT else SendResult("unknown", error="timeout")
    if isinstance(exc, Forbidden):
        return SendResult("failed", error="blocked")  # blocked by the user, or the account is gone
    if isinstance(exc, InvalidToken):
        return SendResult("failed", error="unauthorized")  # the token is wrong: staff must fix the setting
    if isinstance(exc, ChatMigrated):
        return SendResult("failed", error="chat_migrated")
    if isinstance(exc, BadRequest):
        return SendResult("failed", error="bad_request")
    if isinstance(exc, NetworkError):
        cause = _cause(exc)
        if cause in _NOT_SENT:
            return SendResult("retry", error="unreachable")
        if exc.__cause__ is None or isinstance(exc.__cause__, TelegramError):
            # A 5xx answer: a front end may fail after the backend already delivered, so resending
            # could repeat the message. Unknown, like Twilio's 5xx: reconciled, never resent blindly.
            return SendResult("unknown", error="server_error")
        return SendResult("unknown", error="network")  # the connection broke after sending
    return SendResult("unknown", error=type(exc).__name__[:40])
