"""The main menu, greeting, help, and what to say when we did not understand."""
from __future__ import annotations

from bot.messages import Choice, Reply
from dialogs.base import Context, Outcome, reply
from services.matters import matter_title


# The main menu, in order: a number typed with no other choices on screen picks from this list.
MENU_INTENTS = ("status", "balance", "checklist", "appointments", "payment", "handoff", "switch_matter")


def menu_choices(ctx: Context) -> tuple[Choice, ...]:
    """The things a verified client can ask for, as choices ("Other case" when there are several)."""
    choices = (
        Choice("status", ctx._("Case status")),
        Choice("balance", ctx._("What I owe")),
        Choice("checklist", ctx._("Missing documents")),
        Choice("appointments", ctx._("Appointments and deadlines")),
        Choice("payment", ctx._("How to pay")),
        Choice("handoff", ctx._("Talk to a person")),
    )
    if ctx.verified and ctx.has_several_matters():
        choices += (Choice("switch_matter", ctx._("Other case")),)
    return choices


def case_header(ctx: Context) -> str | None:
    """'Case: I-485 — …' for clients with several matters, so each answer says which case it is about."""
    if ctx.conversation.matter_id is None or not ctx.has_several_matters():
        return None
    return ctx._("Case: %(title)s", title=matter_title(ctx.t, ctx.matter))


def thanks(ctx: Context) -> Outcome:
    """Answers a thank-you or an OK briefly, without losing the place in a dialog."""
    state = {k: v for k, v in (ctx.conversation.state or {}).items() if k != "choices"}
    return Outcome([reply(ctx._("You're welcome. If you need anything else, write MENU."))],
                   step=ctx.conversation.dialog, state=state)


def menu_reply(ctx: Context, text: str | None = None) -> Reply:
    return reply(text or ctx._("How can I help you?"), *menu_choices(ctx))


def firm_contact(ctx: Context) -> str:
    """The firm's name and how to reach it, in one line."""
    firm = ctx.firm
    parts = [firm.name]
    if firm.phone:
        parts.append(firm.phone)
    if firm.email:
        parts.append(firm.email)
    return " · ".join(parts)


def greeting(ctx: Context) -> Outcome:
    """Greets a verified client by first name and shows the menu."""
    client = ctx.client
    text = ctx._("Hello, %(name)s. How can I help you?", name=client.first_name) if client else None
    return Outcome([menu_reply(ctx, text)])


def help_(ctx: Context) -> Outcome:
    """Answers HELP: who we are, how to reach the firm, how to stop; the menu when verified."""
    text = ctx._(
        "%(firm)s: automated assistant for your immigration case. Contact: %(contact)s. "
        "Reply STOP to stop receiving messages. Msg & data rates may apply.",
        firm=ctx.firm.name, contact=firm_contact(ctx),
    )
    if ctx.verified:
        return Outcome([reply(text), menu_reply(ctx)])
    return Outcome([reply(text)])


def not_understood(ctx: Context) -> Outcome:
    """Says we did not understand; the second time in a row, offers a person."""
    streak = ctx.conversation.unknown_streak
    if streak >= 2:
        return Outcome([
            reply(
                ctx._("I'm sorry, I'm not understanding. Would you like to talk to a person from our team?"),
                Choice("handoff", ctx._("Talk to a person")),
                Choice("help", ctx._("See the menu")),
            )
        ], step="menu.offer_person", state={"reason": "not_understood"})
    return Outcome([menu_reply(ctx, ctx._("Sorry, I didn't understand. You can choose an option:"))])
