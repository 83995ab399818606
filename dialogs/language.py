"""Explicit language switches ("English", "español", "inglés")."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from dialogs import verify
from dialogs.menu import menu_reply


def switch(ctx: Context) -> Outcome:
    """Confirms the new language (already set by the engine) and keeps it as the client's preference."""
    client = ctx.client if ctx.verified else None
    if client is not None:
        client.preferred_language = ctx.language
    text = ctx._("Done, I will write to you in English.")
    if ctx.conversation.dialog == "verify.ask_dob":  # ask again, in the new language
        asked = verify.ask(ctx, (ctx.conversation.state or {}).get("pending"))
        asked.replies.insert(0, reply(text))
        asked.state["language_chosen"] = True  # verification must not switch it back to the record's
        return asked
    if ctx.conversation.dialog:  # mid-dialog (e.g. choosing a case): carry on from there
        state = {k: v for k, v in (ctx.conversation.state or {}).items() if k != "choices"}
        return Outcome([reply(text)], step=ctx.conversation.dialog, state=state)
    return Outcome([menu_reply(ctx, text) if ctx.verified else reply(text)])
