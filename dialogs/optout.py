"""Opt-out (STOP and plain-language revocations, either language) and opt back in (START)."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from services.contacts import set_opted_out


def opt_out(ctx: Context) -> Outcome:
    """Records the opt-out and sends the one confirmation allowed; nothing follows until START."""
    set_opted_out(ctx.session, ctx.conversation, ctx.now, words=ctx.text)
    return Outcome([reply(ctx._(
        "You will no longer receive messages from %(firm)s. Reply START to receive them again.", firm=ctx.firm.name,
    ))])


def opt_in(ctx: Context) -> Outcome:
    """Resubscribes and confirms with the firm's name and how to stop."""
    if ctx.conversation.opted_out_at is not None:
        set_opted_out(ctx.session, ctx.conversation, None, words=ctx.text)
    return Outcome([reply(ctx._(
        "You are subscribed to messages from %(firm)s about your case. Msg & data rates may apply. "
        "Reply HELP for help, STOP to stop.", firm=ctx.firm.name,
    ))])
