"""What every channel adapter provides, and rendering shared by the text-only ones."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

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


class ChatPacer:
    """Keeps the sends to one chat near a provider's per-chat rate: a token bucket per address,
    `burst` messages at once, then `per_second`. It paces one process; the provider's own 429
    (retry_after honoured by the caller) covers several workers writing to one chat."""

    MAX_TRACKED = 10_000

    def __init__(self, per_second: float = 1.0, burst: int = 3, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = per_second, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address → (tokens, when counted)
        self._lock = threading.Lock()

    def reserve(self, address: str, max_wait: float) -> float | None:
        """Takes a slot for one message to `address`: the seconds to wait before sending it, or None
        (and nothing taken) when that would be longer than `max_wait`."""
        with self._lock:
            now = self._clock()
            tokens, counted = self._buckets.get(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - counted) * self.rate)
            wait = max(0.0, (1.0 - tokens) / self.rate)
            if wait > max_wait:
                return None
            self._buckets[address] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_TRACKED:  # forget chats whose bucket has refilled
                idle = self.burst / self.rate
                self._buckets = {a: b for a, b in self._buckets.items() if now - b[1] < idle}
            return wait


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
