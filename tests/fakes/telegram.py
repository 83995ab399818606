"""A local Telegram Bot API server: the real paths and response shapes, recording what it got.

    with FakeTelegram(token="123456:TEST-token") as fake:
        ... TELEGRAM_API_URL=fake.url ...
        fake.sent  # [{"method": "sendMessage", "chat_id": "42", "text": ..., "reply_markup": {...}}]

Methods are served at `/bot<token>/<method>` (JSON, urlencoded or multipart bodies, or a query
string), files at `/file/bot<token>/<file_path>`. `fail_next(kind)` scripts the next answers:
"429" (flood control with retry_after), "500", "403" (blocked by the user) or "timeout" (the
message is recorded as delivered, then the answer comes too late).
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

FAILURES = ("429", "500", "403", "timeout")
BOT_ID = 123456


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token", *, timeout_sleep: float = 2.0):
        self.token = token
        self.timeout_sleep = timeout_sleep
        self.sent: list[dict] = []  # messages and photos Telegram would have delivered
        self.requests: list[dict] = []  # every call: {"method", "path", "params"}
        self.webhooks: list[dict] = []  # setWebhook calls: {"url", "secret_token", "allowed_updates"}
        self.files: dict[str, dict] = {}  # file_id → {"file_path", "content"}
        self._failures: list[dict] = []  # {"kind", "method" (None: any), "retry_after", "skip"}
        self._lock = threading.Lock()
        self._message_ids = itertools.count(1001)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FakeTelegram":
        fake = self

        class Handler(_Handler):
            owner = fake

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a scripted timeout
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeTelegram":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting ----------------------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, *, method: str | None = None, retry_after: int = 3,
                  after: int = 0) -> None:
        """The next `times` calls (of `method`, or any method) fail as `kind`, once `after` such
        calls have succeeded (e.g. after=1: the second part of a split reply fails)."""
        if kind not in FAILURES:
            raise ValueError(f"kind must be one of {FAILURES}")
        with self._lock:
            self._failures.extend({"kind": kind, "method": method, "retry_after": retry_after,
                                   "skip": after if i == 0 else 0} for i in range(times))

    def add_file(self, content: bytes, file_path: str | None = None, *, report_size: bool = True) -> str:
        """Registers a file users could have sent; returns its file_id. With report_size=False,
        getFile leaves out file_size (Telegram may), so only a streaming cap can stop a big file."""
        file_id = "AgAC" + uuid.uuid4().hex
        self.files[file_id] = {"file_path": file_path or f"documents/file_{len(self.files)}.bin", "content": content,
                               "report_size": report_size}
        return file_id

    def messages_to(self, chat_id) -> list[dict]:
        return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def _take_failure(self, method: str) -> tuple[str, int] | None:
        with self._lock:
            for i, failure in enumerate(self._failures):
                if failure["method"] in (None, method):
                    if failure["skip"]:
                        failure["skip"] -= 1
                        return None
                    del self._failures[i]
                    return failure["kind"], failure["retry_after"]
        return None

    # -- the API ------------------------------------------------------------------------------
    def _call(self, method: str, params: dict) -> tuple[int, dict, bool]:
        """(status, body, sleep_first) for one Bot API call."""
        failure = self._take_failure(method)
        if failure:
            kind, retry_after = failure
            if kind == "429":
                return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                             "parameters": {"retry_after": retry_after}}, False
            if kind == "500":
                return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}, False
            if kind == "403":
                return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, False
            status, body, _ = self._call_ok(method, params)
            return status, body, True  # "timeout": Telegram got it, the answer is late
        return self._call_ok(method, params)

    def _call_ok(self, method: str, params: dict) -> tuple[int, dict, bool]:
        if method == "getMe":
            return 200, _ok({"id": BOT_ID, "is_bot": True, "first_name": "Puente", "username": "puente_test_bot",
                             "can_join_groups": False, "can_read_all_group_messages": False,
                             "supports_inline_queries": False}), False
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            if not params.get("chat_id"):
                return 400, _error(400, "Bad Request: chat_id is empty"), False
            if method == "sendMessage" and not str(params.get("text") or "").strip():
                return 400, _error(400, "Bad Request: message text is empty"), False
            if method == "sendMessage" and len(str(params["text"]).encode("utf-16-le")) // 2 > 4096:
                return 400, _error(400, "Bad Request: message is too long"), False
            message_id = next(self._message_ids)
            record = {"method": method, "message_id": message_id, "chat_id": str(params["chat_id"]),
                      "text": params.get("text"), "caption": params.get("caption"),
                      "reply_markup": _json_field(params.get("reply_markup")), "photo": params.get("photo"),
                      "document": params.get("document"), "at": time.monotonic()}
            with self._lock:
                self.sent.append(record)
            result = {"message_id": message_id, "date": int(time.time()),
                      "chat": {"id": _int_or_str(params["chat_id"]), "type": "private"},
                      "from": {"id": BOT_ID, "is_bot": True, "first_name": "Puente"}}
            if method == "sendMessage":
                result["text"] = params["text"]
            markup = record["reply_markup"]
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                result["reply_markup"] = markup  # Telegram echoes inline keyboards only, never reply keyboards
            return 200, _ok(result), False
        if method == "getFile":
            info = self.files.get(str(params.get("file_id")))
            if info is None:
                return 400, _error(400, "Bad Request: invalid file_id"), False
            if len(info["content"]) > 20 * 1024 * 1024:
                return 400, _error(400, "Bad Request: file is too big"), False
            result = {"file_id": params["file_id"], "file_unique_id": "u" + params["file_id"][-8:],
                      "file_path": info["file_path"]}
            if info["report_size"]:
                result["file_size"] = len(info["content"])
            return 200, _ok(result), False
        if method == "setWebhook":
            allowed = _json_field(params.get("allowed_updates"))
            with self._lock:
                self.webhooks.append({"url": params.get("url"), "secret_token": params.get("secret_token"),
                                      "allowed_updates": allowed})
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}, False
        if method in ("deleteWebhook", "answerCallbackQuery"):
            return 200, _ok(True), False
        return 404, _error(404, "Not Found"), False

    def _download(self, file_path: str) -> bytes | None:
        for info in self.files.values():
            if info["file_path"] == file_path:
                return info["content"]
        return None


def _ok(result) -> dict:
    return {"ok": True, "result": result}


def _error(code: int, description: str) -> dict:
    return {"ok": False, "error_code": code, "description": description}


def _json_field(value):
    """Bot API fields such as reply_markup arrive JSON-encoded inside a form, or as JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int_or_str(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


class _Handler(BaseHTTPRequestHandler):
    owner: FakeTelegram
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: the URLs carry the token
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.owner
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        file_prefix = f"/file/bot{fake.token}/"
        if path.startswith(file_prefix):
            content = fake._download(path[len(file_prefix):])
            if content is None:
                return self._send(404, _error(404, "Not Found"))
            return self._send_bytes(200, content, "application/octet-stream")
        if path.startswith("/file/bot"):
            return self._send(401, _error(401, "Unauthorized"))
        if not path.startswith("/bot"):
            return self._send(404, _error(404, "Not Found"))
        token, _, method = path[len("/bot"):].partition("/")
        if token != fake.token:
            return self._send(401, _error(401, "Unauthorized"))
        params = dict(parse_qsl(parts.query))
        params.update(self._params(body))
        with fake._lock:
            fake.requests.append({"method": method, "path": path, "params": params})
        status, answer, late = fake._call(method, params)
        if late:
            fake._stopping.wait(fake.timeout_sleep)
        try:
            self._send(status, answer)
        except OSError:
            pass  # the client gave up waiting (that is the point of a timeout)

    def _params(self, body: bytes) -> dict:
        kind = self.headers.get("Content-Type", "")
        if not body:
            return {}
        if kind.startswith("application/json"):
            data = json.loads(body)
            return data if isinstance(data, dict) else {}
        if kind.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body)
            params = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename():
                    params[name] = {"filename": part.get_filename(), "size": len(payload)}
                else:
                    params[name] = payload.decode("utf-8")
            return params
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))

    def _send(self, status: int, answer: dict) -> None:
        self._send_bytes(status, json.dumps(answer).encode(), "application/json")

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
