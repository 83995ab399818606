"""Explicit language switches ("English", "español", "inglés")."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from dialogs.menu import menu_reply


def switch(ctx: Context) -> Outcome:
    """Confirms the new language (already set by the engine) and keeps it as the client's preference."""
    client = ctx.client if ctx.verified else None
    if client is not None:
        client.preferred_language = ctx.language
    text = ctx._("Done, I will write to you in English.")
    return Outcome([menu_reply(ctx, text) if ctx.verified else reply(text)])
