"""SMS and WhatsApp through Twilio: verify and parse webhooks, send replies, fetch media.

One TwilioChannel per channel name ("sms", "whatsapp"), sharing the account. Only this module
knows Twilio's wire format; the core sees Inbound, Reply and SendResult.
"""
from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.messages import Inbound, Media, Reply
from channels.base import MediaTooLarge, SendResult, numbered_text, split_text

log = logging.getLogger(__name__)
WHATSAPP_PREFIX = "whatsapp:"
TEXT_LIMIT = 1600
RECONCILE_GRACE = timedelta(minutes=2)
MEDIA_CAPS = {"sms": 5 * 1024 * 1024, "whatsapp": 16 * 1024 * 1024}
# Twilio error codes (DOMAIN.md): what each means for a resend.
RETRYABLE_CODES = {20429, 21611}
FAILURE_CODES = {21610: "opted_out", 63016: "whatsapp_window", 21211: "invalid_number", 21614: "not_mobile",
                 30003: "unreachable", 30005: "unknown_destination", 30006: "landline", 30007: "carrier_filtered"}


def _never_reached_twilio(exc: BaseException) -> bool:
    """True when the connection was never made (refused, DNS, connect timeout): safe to retry."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectTimeoutError, NameResolutionError,
                                requests.exceptions.ConnectTimeout)):
            return True
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.args[0] if current.args and isinstance(current.args[0], BaseException) else current.__cause__ or current.__context__)
    return False


def sign_request(auth_token: str, url: str, params) -> str:
    """The X-Twilio-Signature Twilio sends for a POST of `params` to `url` (the demo's sandbox signs
    its webhooks with this, so they pass the same check as Twilio's)."""
    return RequestValidator(auth_token).compute_signature(url, params)


class TwilioChannel:
    def __init__(self, name: str, account_sid: str, auth_token: str, sender: str | None,
                 api_url: str = "https://api.twilio.com", status_callback: str | None = None, timeout: float = 10):
        self.name = name
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.sender = sender
        self.api_url = api_url.rstrip("/")
        self.status_callback = status_callback
        self.timeout = timeout
        self._validator = RequestValidator(auth_token)
        # WhatsApp allows free-form messages only within 24 hours of the person's last message.
        self.session_window = timedelta(hours=24) if name == "whatsapp" else None

    # -- inbound ----------------------------------------------------------------------------
    def verify(self, url: str, form, signature: str | None) -> bool:
        """Checks X-Twilio-Signature over our public URL and the full (multi-valued) form.

        Twilio signs the URL as configured, so one HMAC over exactly that settles the usual
        request; anything else (":443" added or dropped, a bodySHA256 query) gets the validator's
        full check, which tries both forms of the port."""
        if not signature:
            return False
        if "bodySHA256" not in url and hmac.compare_digest(self._validator.compute_signature(url, form).encode(),
                                                                     signature.encode("utf-8", "replace")):
            return True
        return self._validator.validate(url, form, signature)

    @staticmethod
    def parse(form) -> Inbound:
        """One inbound message from Twilio's webhook form (SMS or WhatsApp, with every attachment)."""
        sender = form.get("From", "")
        channel = "whatsapp" if sender.startswith(WHATSAPP_PREFIX) else "sms"
        count = int(form.get("NumMedia") or 0)
        media = tuple(
            Media(content_type=form.get(f"MediaContentType{i}", "application/octet-stream"), url=form.get(f"MediaUrl{i}"))
            for i in range(count) if form.get(f"MediaUrl{i}")
        )
        return Inbound(channel=channel, address=sender.removeprefix(WHATSAPP_PREFIX), provider_id=form.get("MessageSid", ""),
                       text=form.get("Body", ""), choice=form.get("ButtonPayload") or None, media=media)

    # -- outbound ---------------------------------------------------------------------------
    def _client(self) -> Client:
        client = Client(self.account_sid, self._auth_token, http_client=TwilioHttpClient(timeout=self.timeout))
        client.api.base_url = self.api_url
        return client

    def send(self, address: str, reply: Reply) -> SendResult:
        """Sends the reply (numbered choices, split at 1,600 characters) and maps Twilio's answer."""
        to = f"{WHATSAPP_PREFIX}{address}" if self.name == "whatsapp" else address
        client, sids = self._client(), []
        if reply.template:  # an approved template (WhatsApp outside its 24-hour window)
            parts = [{"content_sid": reply.template["content_sid"],
                      "content_variables": json.dumps(reply.template.get("variables") or {})}]
        else:
            parts = [{"body": part} for part in split_text(numbered_text(reply), TEXT_LIMIT)]
        for part in parts:
            try:
                message = client.messages.create(to=to, from_=self.sender, status_callback=self.status_callback, **part)
            except TwilioRestException as exc:
                return self._outcome(exc.status, exc.code, sids)
            except requests.RequestException as exc:
                if _never_reached_twilio(exc) and not sids:
                    return SendResult("retry", error="unreachable")
                return SendResult("unknown", error="timeout")  # the request may have been accepted
            sids.append(message.sid)
        return SendResult("sent", provider_id=sids[0] if sids else None)

    def reconcile(self, address: str, reply: Reply, provider_id: str | None, since: datetime,
                  now: datetime) -> SendResult | None:
        """Finds out whether an `unknown` send reached Twilio: by its sid, else by recipient, sender,
        time and body. "sent" when it did; "retry" when it surely did not (safe to send again);
        None while it cannot tell yet."""
        client = self._client()
        to = f"{WHATSAPP_PREFIX}{address}" if self.name == "whatsapp" else address
        try:
            if provider_id:
                client.messages(provider_id).fetch()
                return SendResult("sent", provider_id=provider_id)
            first_part = split_text(numbered_text(reply), TEXT_LIMIT)[0]
            for message in client.messages.list(to=to, from_=self.sender, date_sent_after=since - timedelta(minutes=1),
                                                limit=50):
                if message.body == first_part:
                    return SendResult("sent", provider_id=message.sid)
        except TwilioRestException as exc:
            if exc.status != 404:
                return None
        except requests.RequestException:
            return None
        # Not at Twilio. Give a slow request time to land before calling it safe to resend.
        return SendResult("retry", error="not_at_provider") if now - since > RECONCILE_GRACE else None

    @staticmethod
    def _outcome(status: int, code: int | None, sids: list[str]) -> SendResult:
        if sids:  # part of a long reply went out: resending would repeat it
            return SendResult("unknown", provider_id=sids[0], error=f"partial_{code or status}")
        if status == 429 or code in RETRYABLE_CODES:
            return SendResult("retry", error="rate_limited")
        if code in FAILURE_CODES:
            return SendResult("failed", error=FAILURE_CODES[code])
        if status >= 500:
            return SendResult("unknown", error=f"http_{status}")  # the request may have been accepted
        return SendResult("failed", error=f"twilio_{code or status}")

    # -- media ------------------------------------------------------------------------------
    def owns_media_url(self, url: str) -> bool:
        """Only our own account's media URLs ever get our credentials."""
        prefix = f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages/"
        return url.startswith(prefix) and "/Media/" in url

    def fetch_media(self, url: str, max_bytes: int | None = None) -> bytes:
        """Downloads an attachment: Basic auth to Twilio only, redirects followed by hand without it,
        size capped while streaming. Raises MediaTooLarge, or requests errors for the job to retry."""
        if not self.owns_media_url(url):
            raise PermissionError("media URL is not this account's")
        cap = max_bytes or MEDIA_CAPS[self.name]
        auth = (self.account_sid, self._auth_token)
        for _hop in range(5):
            same_host = urlsplit(url).netloc == urlsplit(self.api_url).netloc and self.owns_media_url(url)
            with requests.get(url, auth=auth if same_host else None, stream=True, allow_redirects=False,
                              timeout=self.timeout) as resp:
                if resp.is_redirect:
                    url = urljoin(url, resp.headers["Location"])
                    continue
                resp.raise_for_status()
                if int(resp.headers.get("Content-Length") or 0) > cap:
                    raise MediaTooLarge(cap)
                chunks, size = [], 0
                for chunk in resp.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > cap:
                        raise MediaTooLarge(cap)
                    chunks.append(chunk)
                return b"".join(chunks)
        raise requests.TooManyRedirects("media redirected too often")

    def delete_media(self, url: str) -> None:
        """Deletes Twilio's copy once ours is stored (Twilio keeps media until deleted)."""
        if self.owns_media_url(url):
            requests.delete(url + ".json", auth=(self.account_sid, self._auth_token), timeout=self.timeout)
