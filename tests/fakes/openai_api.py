"""A fake OpenAI API (chat completions) on a real local HTTP server.

Point the official client (or Puente's OPENAI_BASE_URL) at it: ``fake.url`` is the server root and
``fake.api_url`` the ``…/v1`` base the openai package expects. ``POST /v1/chat/completions`` answers
with OpenAI's response shape; every request is recorded, whatever the outcome.

    with FakeOpenAI() as fake:
        client = OpenAI(api_key=fake.api_key, base_url=fake.api_url)
        fake.respond_with({...})          # this JSON (dict, or a raw string) as the message content
        fake.respond_slowly(3)            # hold each answer 3 s (longer than the client timeout)
        fake.fail_with(500)               # answer HTTP 500 with OpenAI's error body
        fake.respond_invalid_json()       # a 200 whose message content is not JSON
        fake.requests                     # [{"method", "path", "headers" (lower-case names), "body", "raw"}]

By default the content is a plausible summary whose draft reply is written in the language the
request's facts declare (the user message is the facts as JSON, with "language": "es" | "en").
Wrong or missing ``Authorization: Bearer <key>`` → 401 ``invalid_api_key``, as OpenAI answers.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

DEFAULT_API_KEY = "sk-test-fake-openai-key-abcdefghijklmnop"

DRAFTS = {
    "es": "Hola, gracias por su mensaje. Una persona de nuestro equipo está revisando su caso y le responderá "
          "por este medio lo antes posible. Atentamente, la oficina.",
    "en": "Hello, thank you for your message. A member of our team is reviewing your case and will reply here "
          "as soon as possible. Kind regards, the office.",
}


def default_summary(language: str) -> dict:
    """A plausible model answer for a conversation in `language`."""
    language = language if language in DRAFTS else "en"
    return {
        "why_reached_out": "The client asked to speak with a person about their case.",
        "what_they_asked": "To talk to a member of staff.",
        "outstanding": ["Missing documents listed in the facts", "Open balance on the operating account"],
        "suggested_next_step": "Reply in the thread and confirm which documents are still needed.",
        "draft_reply": DRAFTS[language],
        "language": language,
    }


def _declared_language(body: dict) -> str:
    """The language the request's facts declare (the last user message is the facts as JSON)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        try:
            language = json.loads(content).get("language")
        except (TypeError, ValueError, AttributeError):
            found = re.search(r'"language"\s*:\s*"(\w+)"', content or "")
            language = found.group(1) if found else None
        if language:
            return language
    return "en"


def _error(message: str, type_: str, code: Optional[str] = None, param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def _go(self):
        self.close_connection = True
        try:
            self.server.fake._dispatch(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client gave up (its timeout); nothing to answer

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _go


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeOpenAI:
    """A fake api.openai.com on 127.0.0.1 (ephemeral port); see the module docstring."""

    def __init__(self, api_key: str = DEFAULT_API_KEY):
        self.api_key = api_key
        self.requests: list[dict] = []
        self.content: Any = None          # None: default_summary(declared language)
        self.delay: float = 0.0
        self.status: int = 200
        self.invalid_json = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.port: Optional[int] = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """The server root (what a user may put in OPENAI_BASE_URL)."""
        if self.port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The /v1 base URL, as the openai package expects it."""
        return self.url + "/v1"

    def start(self) -> "FakeOpenAI":
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.fake = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"FakeOpenAI:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers held by respond_slowly
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------- scripting & inspection
    def respond_with(self, content: Any) -> None:
        """The message content of the next answers: a dict/list (sent as JSON text) or a raw string."""
        self.content = content

    def respond_slowly(self, seconds: float) -> None:
        """Hold every answer `seconds` before sending it (to outlast a client timeout)."""
        self.delay = seconds

    def fail_with(self, status: int = 500) -> None:
        """Answer every request with this HTTP status and OpenAI's error body."""
        self.status = status

    def respond_invalid_json(self) -> None:
        """Answer 200 with message content that is not JSON (a model that ignored the format)."""
        self.invalid_json = True

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
        self.content, self.delay, self.status, self.invalid_json = None, 0.0, 200, False

    @property
    def bodies(self) -> list[dict]:
        """The parsed JSON body of every request received."""
        return [r["body"] for r in self.requests]

    # ----------------------------------------------------------------- HTTP
    def _respond(self, h: _Handler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("x-request-id", "req_" + secrets.token_hex(12))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)

    def _dispatch(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append({"method": h.command, "path": path, "headers": {k.lower(): v for k, v in h.headers.items()},
                                  "body": body, "raw": raw.decode("utf-8", "replace")})
        if h.command != "POST" or path != "/v1/chat/completions":
            return self._respond(h, 404, _error(f"Invalid URL ({h.command} {path})", "invalid_request_error"))
        auth = h.headers.get("Authorization") or ""
        if auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")[-4:]
            return self._respond(h, 401, _error(f"Incorrect API key provided: ****{shown}. You can find your API key "
                                                "at https://platform.openai.com/account/api-keys.",
                                                "invalid_request_error", "invalid_api_key"))
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return self._respond(h, 400, _error("'model' and 'messages' are required properties.",
                                                "invalid_request_error"))
        if self.delay:
            self._stopping.wait(self.delay)
        if self.status != 200:
            return self._respond(h, self.status, _error("The server had an error while processing your request. "
                                                        "Sorry about that!", "server_error"))
        if self.invalid_json:
            content = "Here is the summary you asked for: the client wants to talk to someone."
        elif self.content is None:
            content = json.dumps(default_summary(_declared_language(body)), ensure_ascii=False)
        elif isinstance(self.content, str):
            content = self.content
        else:
            content = json.dumps(self.content, ensure_ascii=False)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
        completion_tokens = len(content) // 4
        self._respond(h, 200, {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_fake",
        })
