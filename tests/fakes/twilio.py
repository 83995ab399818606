"""A fake Twilio REST API (the 2010-04-01 Messages and Media resources) on a real local HTTP server.

Point the official client at it with ``client.api.base_url = fake.url``; requests then go to
``{fake.url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` and so on, exactly as they would go
to https://api.twilio.com. The wire formats follow Twilio's: form-encoded requests, HTTP Basic
auth (AccountSid:AuthToken, or an API key SID:secret), JSON resources with RFC 2822 dates and
string-typed counts, and the legacy JSON error shape
``{"code", "message", "more_info": "https://www.twilio.com/docs/errors/NNNNN", "status"}``.

    with FakeTwilio() as fake:
        client = Client(fake.account_sid, fake.auth_token)
        client.api.base_url = fake.url
        fake.fail_next("429")            # the next create answers 429 / 20429
        ...
        fake.sent                        # every accepted message, as dicts

Inbound media: ``fake.add_media(message_sid, content, content_type)`` returns the MediaUrl0 Twilio
would send. GET on it needs Basic auth and answers 302 to ``{fake.url}/cdn/{token}``, a stand-in
for the pre-signed S3 URL: it needs no auth and, like S3, rejects a request that carries an
Authorization header (400) -- so a client that forwards its credentials on the redirect fails.
NB: the CDN is on the same origin as the API by default, so ``requests``/``httpx`` following
redirects automatically WILL forward the header; pass ``cdn_host="localhost"`` to make it a
different origin if you want to exercise their built-in stripping instead.

Webhook helpers: ``sign(auth_token, url, params)`` (the X-Twilio-Signature value) and
``inbound_form(from_, to, body, ...)`` (a realistic inbound SMS / WhatsApp webhook form).
"""
from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
from datetime import date, datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional, Sequence, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"

_HELP = "https://www.twilio.com/docs/errors/{}"

# kind -> (HTTP status, Twilio code, message template)
_FAILURES = {
    "429": (429, 20429, "Too Many Requests"),
    "500": (500, 20500, "Internal Server Error"),
    "500_after_accept": (500, 20500, "Internal Server Error"),
    "timeout": None,
    "21610": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "63016": (400, 63016, "Failed to send freeform message because you are outside the allowed "
                          "window. If you are using WhatsApp, please use a Message Template."),
    "21211": (400, 21211, "The 'To' number {to} is not a valid phone number."),
}
FAILURE_KINDS = frozenset(_FAILURES)

# GSM 03.38 basic set and the extension table (extension characters cost two septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")

_COUNTRY_PREFIXES = (("+52", "MX"), ("+34", "ES"), ("+44", "GB"), ("+57", "CO"), ("+54", "AR"),
                     ("+56", "CL"), ("+51", "PE"), ("+58", "VE"), ("+53", "CU"), ("+1", "US"))


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def num_segments(body: str) -> int:
    """How many SMS segments Twilio bills for `body` (GSM-7: 160/153, else UCS-2: 70/67)."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in body):
        n = sum(2 if c in _GSM_EXT else 1 for c in body)
        single, multi = 160, 153
    else:
        n = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if n <= single else math.ceil(n / multi)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc).replace(microsecond=0))


def error_body(status: int, code: int, message: str, **extra: Any) -> dict:
    body = {"code": code, "message": message, "more_info": _HELP.format(code), "status": status}
    body.update(extra)
    return body


# --------------------------------------------------------------------------- webhook helpers

class _Pairs:
    """Adapts a list of (key, value) pairs to what RequestValidator expects of a MultiDict."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._pairs = [(str(k), str(v)) for k, v in pairs]

    def __iter__(self):
        return iter(k for k, _ in self._pairs)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]


def sign(auth_token: str, url: str, params: Any = None) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`.

    `params` may be a dict, a list of (key, value) pairs (repeated keys allowed), or a MultiDict /
    QueryDict. Computed by twilio's own ``RequestValidator.compute_signature`` (HMAC-SHA1 over the
    URL followed by key+value for every key in sorted order, each key's values sorted), so it
    agrees with ``RequestValidator.validate`` by construction."""
    from twilio.request_validator import RequestValidator

    if params is None:
        params = {}
    elif not isinstance(params, dict) and not hasattr(params, "getall") \
            and not hasattr(params, "getlist"):
        params = _Pairs(params)
    elif isinstance(params, dict) and not hasattr(params, "getlist") \
            and not hasattr(params, "getall"):
        params = {str(k): str(v) for k, v in params.items()}
    return RequestValidator(auth_token).compute_signature(url, params)


def _country(number: str) -> str:
    number = number.split(":", 1)[-1]
    for prefix, country in _COUNTRY_PREFIXES:
        if number.startswith(prefix):
            return country
    return ""


def _message_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return {"image": "image", "audio": "audio", "video": "video"}.get(major, "document")


_MEDIA_SID_IN_URL = re.compile(r"/Messages/((?:SM|MM)[0-9a-fA-F]{32})/Media/")


def inbound_form(from_: str, to: str, body: str = "", sid: Optional[str] = None,
                 media: Sequence[Union[tuple[str, str], str]] = (), whatsapp: bool = False, *,
                 account_sid: str = DEFAULT_ACCOUNT_SID, **extra: Any) -> list[tuple[str, str]]:
    """The form Twilio POSTs to the incoming-message webhook, as ordered (key, value) pairs.

    `media` items are (url, content_type) (a bare url means image/jpeg). Without `sid`, the
    message SID is taken from the first media URL (as made by FakeTwilio.add_media), else a new
    "MM…" (with media) / "SM…" SID. `whatsapp=True` adds the "whatsapp:" prefixes, ProfileName,
    WaId and MessageType. `extra` keys (Twilio's names) replace or add fields; a value of None
    removes the field."""
    items = [(m, "image/jpeg") if isinstance(m, str) else (m[0], m[1]) for m in media]
    if sid is None:
        found = _MEDIA_SID_IN_URL.search(items[0][0]) if items else None
        sid = found.group(1) if found else new_sid("MM" if items else "SM")
    if whatsapp:
        from_ = from_ if from_.startswith("whatsapp:") else "whatsapp:" + from_
        to = to if to.startswith("whatsapp:") else "whatsapp:" + to
    pairs: list[tuple[str, str]] = []
    if whatsapp:
        pairs += [
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(items))),
            ("ProfileName", "Usuario de Prueba"),
            ("MessageType", _message_type(items[0][1]) if items else "text"),
            ("SmsSid", sid),
            ("WaId", re.sub(r"\D", "", from_)),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", to),
            ("NumSegments", "1"),
            ("ReferralNumMedia", "0"),
            ("MessageSid", sid),
            ("AccountSid", account_sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
    else:
        pairs += [
            ("ToCountry", _country(to)),
            ("ToState", ""),
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(items))),
            ("ToCity", ""),
            ("FromZip", ""),
            ("SmsSid", sid),
            ("FromState", ""),
            ("SmsStatus", "received"),
            ("FromCity", ""),
            ("Body", body),
            ("FromCountry", _country(from_)),
            ("To", to),
            ("ToZip", ""),
            ("NumSegments", str(num_segments(body))),
            ("MessageSid", sid),
            ("AccountSid", account_sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
    for i, (url, content_type) in enumerate(items):
        pairs += [(f"MediaContentType{i}", content_type), (f"MediaUrl{i}", url)]
    for key, value in extra.items():
        index = next((i for i, (k, _) in enumerate(pairs) if k == key), None)
        if value is None:
            if index is not None:
                del pairs[index]
        elif index is None:
            pairs.append((key, str(value)))
        else:
            pairs[index] = (key, str(value))
    return pairs


# --------------------------------------------------------------------------- the server

class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeTwilio/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def _go(self):
        self.close_connection = True
        try:
            self.server.fake._dispatch(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _go


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


_R_LIST = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_R_MESSAGE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json$")
_R_MEDIA_LIST = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)/Media\.json$")
_R_MEDIA_JSON = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)/Media/([^/]+)\.json$")
_R_MEDIA_RAW = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)/Media/([^/.]+)$")
_R_CDN = re.compile(r"^/cdn/([^/]+)$")


class FakeTwilio:
    """A fake api.twilio.com on 127.0.0.1 (ephemeral port); see the module docstring.

    Inspect: ``sent`` (accepted messages), ``requests`` (every HTTP request and its status),
    ``media_requests``, ``deleted_media``. Script: ``fail_next(kind, times)``,
    ``timeout_seconds``, ``retry_after``, ``media_404_first``, ``set_status(sid, ...)``,
    ``now`` (a clock: callable returning an aware datetime)."""

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID,
                 auth_token: str = DEFAULT_AUTH_TOKEN, *,
                 api_keys: Optional[dict[str, str]] = None, cdn_host: str = "127.0.0.1"):
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
            raise ValueError("account_sid must be 'AC' + 32 hex digits")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys = dict(api_keys or {})
        self.cdn_host = cdn_host
        self.timeout_seconds: float = 5.0
        self.retry_after: int = 1
        self.media_404_first: int = 0
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

        self.sent: list[dict] = []
        self.requests: list[dict] = []
        self.media_requests: list[dict] = []
        self.deleted_media: list[dict] = []

        self._lock = threading.RLock()
        self._failures: list[str] = []
        self._messages: dict[str, dict] = {}      # sid -> Message JSON
        self._created: dict[str, datetime] = {}   # sid -> creation moment
        self._media: dict[str, dict] = {}         # media sid -> record
        self._cdn: dict[str, str] = {}            # token -> media sid
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.port: Optional[int] = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeTwilio is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://{self.cdn_host}:{self.port}"

    def start(self) -> "FakeTwilio":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"FakeTwilio:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a scripted "timeout"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting & inspection
    def fail_next(self, kind: str, times: int = 1) -> None:
        """Make the next `times` message creations fail as `kind` (see FAILURE_KINDS):
        "429", "500" (nothing sent), "500_after_accept" (sent, then 500), "timeout" (sent, then
        the answer is held for `timeout_seconds`), "21610", "63016", "21211" (400, not sent)."""
        kind = str(kind)
        if kind not in _FAILURES:
            raise ValueError(f"unknown failure kind {kind!r}; one of {sorted(_FAILURES)}")
        with self._lock:
            self._failures.extend([kind] * times)

    @property
    def pending_failures(self) -> list[str]:
        with self._lock:
            return list(self._failures)

    def message(self, sid: str) -> dict:
        """The stored Message JSON (a copy)."""
        with self._lock:
            return json.loads(json.dumps(self._messages[sid]))

    def set_status(self, sid: str, status: str, error_code: Optional[int] = None,
                   error_message: Optional[str] = None, price: Optional[str] = None) -> None:
        """Move a message on (sent, delivered, undelivered, failed, read ...), as GET shows it."""
        with self._lock:
            m = self._messages[sid]
            now = _rfc2822(self.now())
            m.update(status=status, error_code=error_code, error_message=error_message,
                     date_updated=now)
            if price is not None:
                m["price"] = price
            if status in ("sent", "delivered", "undelivered", "read", "failed") \
                    and m["date_sent"] is None:
                m["date_sent"] = now

    def reset(self) -> None:
        with self._lock:
            for lst in (self.sent, self.requests, self.media_requests, self.deleted_media,
                        self._failures):
                lst.clear()
            self._messages.clear()
            self._created.clear()
            self._media.clear()
            self._cdn.clear()
            self.media_404_first = 0

    def add_media(self, message_sid: str, content: bytes, content_type: str) -> str:
        """Register inbound media for `message_sid`; returns the MediaUrlN Twilio would send."""
        media_sid = new_sid("ME")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._media[media_sid] = {
                "sid": media_sid, "message_sid": message_sid, "content": bytes(content),
                "content_type": content_type, "token": token, "deleted": False,
                "date_created": self.now(),
            }
            self._cdn[token] = media_sid
        return f"{self.url}/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message_sid}" \
               f"/Media/{media_sid}"

    def sign(self, url: str, params: Any = None) -> str:
        return sign(self.auth_token, url, params)

    def inbound_form(self, from_: str, to: str, body: str = "", sid: Optional[str] = None,
                     media: Sequence[Union[tuple[str, str], str]] = (), whatsapp: bool = False,
                     **extra: Any) -> list[tuple[str, str]]:
        return inbound_form(from_, to, body, sid, media, whatsapp,
                            account_sid=self.account_sid, **extra)

    # ----------------------------------------------------------------- HTTP plumbing
    def _respond(self, h: _Handler, status: int, body: Union[bytes, dict, None] = None,
                 headers: Optional[dict] = None, content_type: Optional[str] = None) -> None:
        if isinstance(body, dict):
            data = json.dumps(body).encode("utf-8")
            content_type = content_type or "application/json; charset=utf-8"
        else:
            data = body or b""
        h._status = status
        self._log(h)  # before the answer goes out, so a client that has it sees the record
        h.send_response(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        if status != 204:
            h.send_header("Content-Length", str(len(data)))
        h.send_header("Twilio-Request-Id", new_sid("RQ"))
        h.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        if data and h.command != "HEAD" and status != 204:
            h.wfile.write(data)

    def _log(self, h: _Handler) -> None:
        ctx = h._ctx
        with self._lock:
            self.requests.append({"method": h.command, "path": ctx["path"],
                                  "query": ctx["query"], "form": ctx["form"],
                                  "had_auth": ctx["had_auth"], "status": h._status})
            if ctx.get("media"):
                self.media_requests.append({"path": ctx["path"], "had_auth": ctx["had_auth"],
                                            "status": h._status, "kind": ctx["media"]})

    def _error(self, h: _Handler, status: int, code: int, message: str, headers=None, **extra):
        self._respond(h, status, error_body(status, code, message, **extra), headers)

    def _not_found(self, h: _Handler, path: str) -> None:
        self._error(h, 404, 20404, f"The requested resource {path} was not found")

    def _authorized(self, h: _Handler) -> bool:
        header = h.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except Exception:
            return False
        if user == self.account_sid:
            return secrets.compare_digest(password, self.auth_token)
        return user in self.api_keys and secrets.compare_digest(password, self.api_keys[user])

    def _unauthorized(self, h: _Handler) -> None:
        self._error(h, 401, 20003, "Authenticate",
                    headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
                    detail="Your AccountSid or AuthToken was incorrect.")

    def _dispatch(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, parse_qsl(split.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True) if raw else []
        had_auth = "Authorization" in h.headers
        h._status = None
        h._ctx = {"path": path, "query": query, "form": form, "had_auth": had_auth}
        try:
            self._route(h, h.command, path, query, form, had_auth)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            raise
        except Exception as exc:  # a bug in the fake: answer like Twilio's 500, don't hang
            if h._status is None:
                self._error(h, 500, 20500, f"Internal Server Error ({exc!r})")

    def _route(self, h, method, path, query, form, had_auth) -> None:
        m = _R_CDN.match(path)
        if m:
            h._ctx["media"] = "cdn"
            return self._cdn_get(h, method, path, m.group(1), had_auth)
        routes = ((_R_LIST, {"POST": self._create, "GET": self._list}),
                  (_R_MESSAGE, {"GET": self._fetch, "DELETE": self._delete_message}),
                  (_R_MEDIA_LIST, {"GET": self._media_list}),
                  (_R_MEDIA_JSON, {"GET": self._media_fetch, "DELETE": self._media_delete}),
                  (_R_MEDIA_RAW, {"GET": self._media_raw, "HEAD": self._media_raw}))
        for pattern, handlers in routes:
            m = pattern.match(path)
            if not m:
                continue
            if pattern is _R_MEDIA_RAW:
                h._ctx["media"] = "api"
            if not self._authorized(h):
                self._unauthorized(h)
            elif m.group(1) != self.account_sid:
                self._not_found(h, path)
            elif method not in handlers:
                self._error(h, 405, 20004, "Method not allowed")
            else:
                handlers[method](h, path, query, form, *m.groups()[1:])
            return
        self._not_found(h, path)

    # ----------------------------------------------------------------- Messages
    def _create(self, h, path, query, form) -> None:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        params: dict[str, str] = {}
        for k, v in form:
            params.setdefault(k, v)
        to = params.get("To", "")
        if failure in ("429", "500", "21610", "63016", "21211"):
            status, code, message = _FAILURES[failure]
            headers = {"Retry-After": self.retry_after} if failure == "429" else None
            return self._error(h, status, code, message.format(to=to), headers=headers)

        from_ = params.get("From")
        service = params.get("MessagingServiceSid")
        body = params.get("Body", "")
        media_urls = [v for k, v in form if k == "MediaUrl"]
        content_sid = params.get("ContentSid")
        if not to:
            return self._error(h, 400, 21604, "A 'To' phone number is required.")
        if not from_ and not service:
            return self._error(h, 400, 21603, "A 'From' phone number is required.")
        if not body and not media_urls and not content_sid:
            return self._error(h, 400, 21619, "A text message body or media urls must be "
                                              "specified.")
        if len(body) > 1600:
            return self._error(h, 400, 21617, "The concatenated message body exceeds the 1600 "
                                              "character limit.")

        sid = new_sid("MM" if media_urls else "SM")
        now = self.now()
        stamp = _rfc2822(now)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        whatsapp = to.startswith("whatsapp:") or (from_ or "").startswith("whatsapp:")
        segments = 1 if (whatsapp or media_urls or content_sid) else num_segments(body)
        message = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": str(len(media_urls)),
            "num_segments": "0" if service else str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not from_ else "queued",
            "subresource_uris": {"media": base + "/Media.json",
                                 "feedback": base + "/Feedback.json"},
            "to": to,
            "uri": base + ".json",
        }
        record = {
            "sid": sid, "to": to, "from_": from_, "body": body, "media_urls": media_urls,
            "content_sid": content_sid, "content_variables": params.get("ContentVariables"),
            "status_callback": params.get("StatusCallback"), "messaging_service_sid": service,
            "params": list(form), "outcome": failure or "accepted",
        }
        with self._lock:
            self._messages[sid] = message
            self._created[sid] = now
            self.sent.append(record)
        if failure == "500_after_accept":
            status, code, text = _FAILURES[failure]
            return self._error(h, status, code, text)
        if failure == "timeout":
            self._stopping.wait(self.timeout_seconds)
        self._respond(h, 201, message)

    def _fetch(self, h, path, query, form, sid) -> None:
        with self._lock:
            message = self._messages.get(sid)
        if message is None:
            return self._not_found(h, path)
        self._respond(h, 200, message)

    def _delete_message(self, h, path, query, form, sid) -> None:
        with self._lock:
            found = self._messages.pop(sid, None)
            self._created.pop(sid, None)
        if found is None:
            return self._not_found(h, path)
        self._respond(h, 204)

    @staticmethod
    def _bound(value: str) -> Union[date, datetime]:
        value = value.strip()
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    def _list(self, h, path, query, form) -> None:
        params = dict(query)
        try:
            page = int(params.get("Page", 0))
            size = max(1, min(1000, int(params.get("PageSize", 50))))
            bounds = {op: self._bound(params[key])
                      for op, key in (("=", "DateSent"), ("<", "DateSent<"), (">", "DateSent>"))
                      if params.get(key)}
        except ValueError:
            return self._error(h, 400, 20001, "Invalid query parameter")

        def sent_at(sid: str) -> datetime:
            # A message still queued has no date_sent; filter on its creation instead.
            m = self._messages[sid]
            if m["date_sent"]:
                from email.utils import parsedate_to_datetime
                return parsedate_to_datetime(m["date_sent"])
            return self._created[sid].astimezone(timezone.utc).replace(microsecond=0)

        def keep(sid: str) -> bool:
            m = self._messages[sid]
            if params.get("To") and m["to"] != params["To"]:
                return False
            if params.get("From") and m["from"] != params["From"]:
                return False
            moment = sent_at(sid)
            for op, bound in bounds.items():
                value = moment if isinstance(bound, datetime) else moment.date()
                if (op == "=" and value != bound) or (op == "<" and value > bound) \
                        or (op == ">" and value < bound):
                    return False
            return True

        with self._lock:
            order = list(self._messages)
            chosen = [s for s in order if keep(s)]
            chosen.sort(key=lambda s: (self._created[s], order.index(s)), reverse=True)
            start = page * size
            items = [json.loads(json.dumps(self._messages[s])) for s in chosen[start:start + size]]

        filters = [(k, v) for k, v in query if k not in ("Page", "PageSize", "PageToken")]

        def uri(n: int, token: bool = False) -> str:
            extra = [("PageSize", size), ("Page", n)]
            if token:
                extra.append(("PageToken", "PASM" + secrets.token_hex(16)))
            return path + "?" + urlencode(filters + extra)

        self._respond(h, 200, {
            "end": start + len(items) - 1 if items else start,
            "first_page_uri": uri(0),
            "messages": items,
            "next_page_uri": uri(page + 1, True) if start + size < len(chosen) else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1, True) if page > 0 else None,
            "start": start,
            "uri": uri(page),
        })

    # ----------------------------------------------------------------- Media
    def _media_json(self, rec: dict) -> dict:
        stamp = _rfc2822(rec["date_created"])
        return {
            "account_sid": self.account_sid, "content_type": rec["content_type"],
            "date_created": stamp, "date_updated": stamp, "parent_sid": rec["message_sid"],
            "sid": rec["sid"],
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{rec['message_sid']}"
                   f"/Media/{rec['sid']}.json",
        }

    def _live_media(self, message_sid: str, media_sid: str) -> Optional[dict]:
        with self._lock:
            rec = self._media.get(media_sid)
        if rec is None or rec["deleted"] or rec["message_sid"] != message_sid:
            return None
        return rec

    def _media_list(self, h, path, query, form, message_sid) -> None:
        with self._lock:
            recs = [r for r in self._media.values()
                    if r["message_sid"] == message_sid and not r["deleted"]]
        size = 50
        self._respond(h, 200, {
            "end": max(len(recs) - 1, 0), "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "media_list": [self._media_json(r) for r in recs], "next_page_uri": None,
            "page": 0, "page_size": size, "previous_page_uri": None, "start": 0,
            "uri": f"{path}?PageSize={size}&Page=0",
        })

    def _media_fetch(self, h, path, query, form, message_sid, media_sid) -> None:
        rec = self._live_media(message_sid, media_sid)
        if rec is None:
            return self._not_found(h, path)
        self._respond(h, 200, self._media_json(rec))

    def _media_delete(self, h, path, query, form, message_sid, media_sid) -> None:
        rec = self._live_media(message_sid, media_sid)
        if rec is None:
            return self._not_found(h, path)
        with self._lock:
            rec["deleted"] = True
            self._cdn.pop(rec["token"], None)
            self.deleted_media.append({"message_sid": message_sid, "media_sid": media_sid,
                                       "path": path})
        self._respond(h, 204)

    def _media_raw(self, h, path, query, form, message_sid, media_sid) -> None:
        with self._lock:
            not_ready = self.media_404_first > 0
            if not_ready:
                self.media_404_first -= 1
        rec = self._live_media(message_sid, media_sid)
        if not_ready or rec is None:
            return self._not_found(h, path)
        self._respond(h, 302, headers={"Location": f"{self.cdn_url}/cdn/{rec['token']}"},
                      content_type="text/html; charset=utf-8")

    def _cdn_get(self, h, method, path, token, had_auth) -> None:
        with self._lock:
            media_sid = self._cdn.get(token)
            rec = self._media.get(media_sid) if media_sid else None
        xml = "application/xml"
        if method not in ("GET", "HEAD"):
            self._respond(h, 405, b"<Error><Code>MethodNotAllowed</Code></Error>",
                          content_type=xml)
        elif had_auth:
            self._respond(h, 400, (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
                b"<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                b"parameter, Signature query string parameter or the Authorization header "
                b"should be specified</Message><ArgumentName>Authorization</ArgumentName>"
                b"</Error>"), content_type=xml)
        elif rec is None or rec["deleted"]:
            self._respond(h, 404, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                                  b"NoSuchKey</Code><Message>The specified key does not exist."
                                  b"</Message></Error>", content_type=xml)
        else:
            self._respond(h, 200, rec["content"], content_type=rec["content_type"])
