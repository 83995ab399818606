"""What every channel adapter provides, and rendering shared by the text-only ones."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.messages import Reply


@dataclass(frozen=True)
class SendResult:
    """The provider's answer to one send.

    state: "sent" (with the provider's id) · "retry" (nothing was delivered; try again after
    `retry_after` seconds if given) · "failed" (never retried) · "unknown" (the provider may have
    accepted it: reconcile, never resend blindly). `error` is a short code, e.g. "opted_out"
    (the carrier says the person texted STOP) or "whatsapp_window" (outside the 24-hour window).
    """

    state: str
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


class MediaTooLarge(ValueError):
    """An attachment is over the channel's size cap (checked while streaming); `cap` is in bytes."""

    def __init__(self, cap: int):
        super().__init__(cap)
        self.cap = cap

    def __str__(self) -> str:
        return f"file is larger than {self.cap} bytes"


class Channel(Protocol):
    name: str

    def send(self, address: str, reply: Reply) -> SendResult:
        """Delivers one reply to `address`."""


def numbered_text(reply: Reply) -> str:
    """The reply's text with its choices as a numbered list and the hint (for SMS-like channels)."""
    if not reply.choices:
        return reply.text
    lines = [reply.text] + [f"{i}. {c.label}" for i, c in enumerate(reply.choices, 1)]
    if reply.hint:
        lines.append(reply.hint)
    return "\n".join(lines)


def split_text(text: str, limit: int) -> list[str]:
    """Splits long text at line or sentence boundaries so no part exceeds `limit` characters."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n"), window.rfind(". ") + 1, window.rfind("? ") + 1)
        if cut <= limit // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
