"""Hands the conversation to a person; the bot stays silent until staff hand it back."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from services import handoffs


def start(ctx: Context) -> Outcome:
    """Records a Handoff with a plain summary and tells the client a person will reply."""
    reason = (ctx.conversation.state or {}).get("reason") if ctx.conversation.dialog == "menu.offer_person" else None
    handoffs.start(ctx.session, ctx.conversation, reason or "asked_for_person", ctx.now)
    return Outcome([reply(ctx._(
        "Thank you. A person from our team will reply to you here as soon as possible, during office hours."
    ))])
