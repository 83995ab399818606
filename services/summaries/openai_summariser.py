"""The OpenAI summariser: a handoff summary drafted by a chat-completions model (or a compatible server).

Only HandoffFacts are sent (redacted messages and matter facts, no identifiers). The answer is
constrained by a strict JSON schema, then checked again here; any failure (timeout, HTTP error,
refusal, invalid JSON, a draft in the wrong language) raises SummaryUnavailable and the caller
falls back to the record. No retries: the record summary is already a good answer.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import openai

from services.summaries.base import HandoffFacts, Summary, SummaryUnavailable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_FIELD_CHARS = 2000
MAX_OUTSTANDING = 20

SYSTEM_PROMPT = """You write staff-facing summaries for an immigration law firm. A client's text conversation with the \
firm's assistant was handed to a staff member; you receive the facts as JSON: the conversation language ("es" or \
"en"), the handoff reason, the last messages (role: client, assistant or staff) and the matter facts (type, stage, \
missing documents, balances, disputed invoices, upcoming deadlines).

Rules:
- Be factual and brief. Use only the given facts; do not guess or add anything that is not in them.
- Write why_reached_out, what_they_asked, outstanding and suggested_next_step in English, for staff.
- outstanding: one short item per open point (missing documents, balances, disputes, deadlines); an empty list if none.
- draft_reply: a short, polite reply to the client that staff will review and edit before sending. Write it in the \
client's language: for "es", neutral Latin American Spanish addressing the client as "usted"; for "en", plain English. \
Say that a person is reviewing their message and will answer.
- Never promise an outcome, a timeline or an approval, and never give legal advice.
- Personal identifiers were replaced by placeholders such as [NAME], [PHONE], [DATE], [A-NUMBER], [RECEIPT], \
[PASSPORT], [EMAIL], [SSN], [REDACTED]. Never guess or include their real values, and do not put placeholders in \
the draft reply.
- language: repeat the conversation language you were given ("es" or "en").
Answer with the JSON object only."""

_FIELDS = ("why_reached_out", "what_they_asked", "outstanding", "suggested_next_step", "draft_reply", "language")

RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "handoff_summary",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "why_reached_out": {"type": "string", "description": "Why the client reached out (English)."},
                "what_they_asked": {"type": "string", "description": "What the client asked (English)."},
                "outstanding": {"type": "array", "items": {"type": "string"},
                                "description": "Open points on the matter (English)."},
                "suggested_next_step": {"type": "string", "description": "The next step for staff (English)."},
                "draft_reply": {"type": "string", "description": "A reply to the client, in the client's language."},
                "language": {"type": "string", "enum": ["es", "en"]},
            },
            "required": list(_FIELDS),
            "additionalProperties": False,
        },
    },
}


def api_base_url(url: str | None) -> str:
    """The base URL the openai client needs, which ends in /v1.

    OPENAI_BASE_URL may be either a server root ("https://llm.firm.example", "http://127.0.0.1:8000")
    or an API URL that already ends in /v1 ("https://api.openai.com/v1"): /v1 is appended when missing,
    so a self-hosted OpenAI-compatible server works either way. Unset means OpenAI's own API.
    """
    if not url or not url.strip():
        return DEFAULT_BASE_URL
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise SummaryUnavailable(f"invalid output: {key} is not a string")
    return value.strip()[:MAX_FIELD_CHARS]


def parse_summary(content: str | None, facts: HandoffFacts, model: str) -> Summary:
    """Validates the model's JSON answer against the schema and the facts; raises SummaryUnavailable."""
    if not content:
        raise SummaryUnavailable("invalid output: empty")
    try:
        data = json.loads(content)
    except ValueError:
        raise SummaryUnavailable("invalid output: not JSON") from None
    if not isinstance(data, dict) or set(data) != set(_FIELDS):
        raise SummaryUnavailable("invalid output: wrong fields")
    outstanding = data.get("outstanding")
    if not isinstance(outstanding, list) or not all(isinstance(i, str) for i in outstanding):
        raise SummaryUnavailable("invalid output: outstanding is not a list of strings")
    summary = Summary(
        why_reached_out=_text(data, "why_reached_out"),
        what_they_asked=_text(data, "what_they_asked"),
        outstanding=[i.strip()[:MAX_FIELD_CHARS] for i in outstanding if i.strip()][:MAX_OUTSTANDING],
        suggested_next_step=_text(data, "suggested_next_step"),
        draft_reply=_text(data, "draft_reply"),
        language=_text(data, "language"),
        source="ai",
        model=model,
    )
    if not (summary.why_reached_out and summary.suggested_next_step and summary.draft_reply):
        raise SummaryUnavailable("invalid output: empty field")
    if summary.language != facts.language:
        raise SummaryUnavailable("invalid output: draft not in the client's language")
    return summary


class OpenAISummariser:
    """Summariser over the OpenAI chat-completions API (or an OpenAI-compatible server at `base_url`)."""

    def __init__(self, api_key: str, base_url: str | None = None, model: str = "gpt-4o-mini", timeout: float = 15):
        self.api_key = api_key
        self.base_url = api_base_url(base_url)
        self.model = model
        self.timeout = timeout

    def request_messages(self, facts: HandoffFacts) -> list[dict[str, str]]:
        """The system prompt and the facts as JSON: everything that leaves Puente."""
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(facts.to_dict(), ensure_ascii=False)},
        ]

    def summarise(self, facts: HandoffFacts) -> Summary:
        try:
            with openai.OpenAI(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout,
                               max_retries=0) as client:
                completion = client.chat.completions.create(
                    model=self.model,
                    messages=self.request_messages(facts),
                    response_format=RESPONSE_FORMAT,
                    temperature=0.2,
                )
        except openai.APITimeoutError:
            raise SummaryUnavailable("timeout") from None
        except openai.APIStatusError as exc:
            raise SummaryUnavailable(f"http {exc.status_code}") from None
        except openai.OpenAIError as exc:  # connection refused, bad response body, …
            raise SummaryUnavailable(type(exc).__name__) from None
        try:
            choice = completion.choices[0]
            message = choice.message
        except (AttributeError, IndexError, TypeError):
            raise SummaryUnavailable("invalid output: no choice") from None
        if getattr(message, "refusal", None):
            raise SummaryUnavailable("refused")
        if choice.finish_reason not in (None, "stop"):
            raise SummaryUnavailable(f"invalid output: finish_reason {choice.finish_reason}")
        model = completion.model if isinstance(getattr(completion, "model", None), str) and completion.model else self.model
        return parse_summary(message.content, facts, model)
