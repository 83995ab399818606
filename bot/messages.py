"""Channel-neutral messages: what a channel hands the core, and what the core hands back.

No I/O and no imports from the rest of Puente: channels, dialogs and the engine all speak these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

CHANNELS = ("sms", "whatsapp", "telegram")


@dataclass(frozen=True)
class Media:
    """An attachment: where to fetch it (url) or the bytes already fetched (content)."""

    content_type: str
    url: str | None = None
    filename: str | None = None
    size: int | None = None
    content: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Inbound:
    """One message from a person, as parsed by a channel."""

    channel: str
    address: str
    provider_id: str
    text: str = ""
    choice: str | None = None
    media: tuple[Media, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # An account-link request read from the message itself (never from button data, which a client
    # can forge): "start:<token>" (a deep link) or "contact:+<digits>" / "contact:other" (a shared contact).
    link: str | None = None


@dataclass(frozen=True)
class Choice:
    """A selectable option: `value` comes back as Inbound.choice (or its number is typed)."""

    value: str
    label: str


@dataclass(frozen=True)
class Reply:
    """One message to send. Channels render choices as numbers, buttons or quick replies."""

    text: str
    choices: tuple[Choice, ...] = ()
    # How to answer numbered choices, in the conversation's language ("Responda 1, 2 o 3."),
    # for channels that show choices as text; channels with buttons leave it out.
    hint: str = ""
    # Label of a "share my phone number" button, for channels that can ask for it (Telegram);
    # others leave it out. Empty: no such button.
    contact_button: str = ""
    # An approved provider template to send instead of the text: {"content_sid", "variables"}.
    template: dict | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "choices": [{"value": c.value, "label": c.label} for c in self.choices],
                "hint": self.hint, "contact_button": self.contact_button, "template": self.template}

    @classmethod
    def from_dict(cls, data: dict) -> "Reply":
        return cls(text=data["text"], choices=tuple(Choice(c["value"], c["label"]) for c in data.get("choices", [])),
                   hint=data.get("hint", ""), contact_button=data.get("contact_button", ""),
                   template=data.get("template"))
