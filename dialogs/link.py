"""Linking a Telegram chat: a deep-link token from the firm, or sharing one's own phone number.

Replies never say whether a number is on file: a shared contact always leads to the same
date-of-birth question, matched or not.
"""
from __future__ import annotations

from dialogs import verify
from dialogs.base import Context, Outcome, reply
from services import linking
from services.phones import normalize_phone


def start_token(ctx: Context) -> Outcome:
    """Redeems `/start <token>`: links the chat, then asks for the date of birth as usual."""
    token = (ctx.link or "").split(":", 1)[1]
    if not linking.redeem_token(ctx.session, ctx.conversation, token, ctx.now):
        return Outcome([reply(ctx._(
            "This link is no longer valid (links work once, for 15 minutes). Please ask our office for a new one, "
            "or share your phone number in this chat (📎 → Contact)."))])
    asked = verify.ask(ctx, None)
    asked.replies.insert(0, reply(ctx._("Your Telegram account is linked to our office.")))
    return asked


def shared_contact(ctx: Context) -> Outcome:
    """Takes the person's own shared number; someone else's contact card is refused."""
    value = (ctx.link or "").split(":", 1)[1]
    phone = normalize_phone(value) if value != "other" else None
    if phone is None:
        return Outcome([reply(ctx._("Please share your own phone number, not someone else's contact."))])
    linking.link_shared_phone(ctx.session, ctx.conversation, phone, ctx.now)
    return verify.ask(ctx, None)
