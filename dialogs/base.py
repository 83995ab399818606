"""What every dialog step gets and gives back.

A step is a plain function `(ctx) -> Outcome`: it reads the turn from `ctx`, may change the
record through services, and returns the replies plus the next step and its small state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

from bot.messages import Choice, Reply
from services.i18n import Translator
from services.matters import open_matters
from services.models import Client, Conversation, FirmSettings, Matter


@dataclass(frozen=True)
class PayOptions:
    """How payment links are made here: the provider's name, the public address, the link lifetime."""

    provider: str
    base_url: str
    link_days: int = 7


@dataclass
class Context:
    """One turn of one conversation, with everything a step may use."""

    session: Session
    conversation: Conversation
    firm: FirmSettings
    t: Translator
    now: datetime
    text: str = ""
    choice: str | None = None
    intent: str = "unknown"
    verified: bool = False
    link: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    pay: PayOptions | None = None  # None: no online payments, instructions only

    def _(self, msgid: str, **params: Any) -> str:
        """Translates a client-facing sentence into the conversation's language."""
        return self.t.gettext(msgid, **params)

    @property
    def language(self) -> str:
        return self.t.language

    @property
    def client(self) -> Client | None:
        cid = self.conversation.client_id
        return self.session.get(Client, cid) if cid else None

    @property
    def matter(self) -> Matter | None:
        mid = self.conversation.matter_id
        return self.session.get(Matter, mid) if mid else None

    def has_several_matters(self) -> bool:
        """Whether the verified client has more than one open matter (asked once per turn)."""
        if "several_matters" not in self.memo:
            cid = self.conversation.client_id
            self.memo["several_matters"] = bool(cid) and len(open_matters(self.session, cid)) > 1
        return self.memo["several_matters"]


@dataclass
class Outcome:
    """Replies to send, and where the conversation goes next (None: back to idle)."""

    replies: list[Reply] = field(default_factory=list)
    step: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    handled: bool = True
    # An answer to run right after this one (e.g. what was asked before verification).
    then: str | None = None


Step = Callable[[Context], Outcome]
NOT_HANDLED = Outcome(handled=False)


def reply(text: str, *choices: Choice) -> Reply:
    return Reply(text=text, choices=tuple(choices))
