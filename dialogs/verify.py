"""Verification before disclosure: ask for the date of birth, pick the client and the matter.

Unknown numbers and known-but-unverified numbers get byte-identical replies at every step.
"""
from __future__ import annotations

import re

from bot.messages import Choice, Reply
from dialogs.base import NOT_HANDLED, Context, Outcome, reply
from services import verification
from services.dates import looks_like_date, parse_date_candidates
from services.i18n import Translator
from services.matters import matter_title, open_matters
from services.models import Client


def ask(ctx: Context, pending: str | None) -> Outcome:
    """Asks for the date of birth; remembers what the person wanted to know (and a chosen language)."""
    text = ctx._(
        "Hello, this is the assistant of %(firm)s. To protect your information, please reply with your "
        "date of birth (for example: 21/03/1988).", firm=ctx.firm.name,
    )
    asked = Reply(text, contact_button=ctx._("Share my phone number"))  # shown where a channel can ask for it
    return Outcome([asked], step="verify.ask_dob", state=_keep(ctx, pending))


def _keep(ctx: Context, pending: str | None) -> dict:
    state = {"pending": pending}
    if (ctx.conversation.state or {}).get("language_chosen"):
        state["language_chosen"] = True
    return state


def locked(ctx: Context) -> Outcome:
    """Tells a locked-out sender to wait or call; says nothing about any matter."""
    return Outcome([reply(ctx._(
        "For your security, verification is paused for %(minutes)s minutes after several attempts. "
        "If you need help now, call %(contact)s.",
        minutes=ctx.firm.verification_lock_minutes, contact=ctx.firm.phone or ctx.firm.name,
    ))])


def unverified_turn(ctx: Context) -> Outcome:
    """Treats a date as an attempt; anything else gets the date-of-birth question again."""
    pending = (ctx.conversation.state or {}).get("pending")
    if ctx.intent in ANSWERABLE:
        pending = ctx.intent
    if not looks_like_date(ctx.text):
        return ask(ctx, pending)
    readings = parse_date_candidates(ctx.text, ctx.now.date())
    if not readings:
        return Outcome([reply(ctx._(
            "I could not read that date. Please write it like this: 21/03/1988 or 21 de marzo de 1988."
        ))], step="verify.ask_dob", state=_keep(ctx, pending))
    attempt = verification.check_date(ctx.session, ctx.conversation, readings)
    if len(attempt.matches) == 1:
        return _verified(ctx, attempt.matches[0], pending)
    if len(attempt.matches) > 1:
        # Two people on one phone with the same birthday (twins): they pick their first name.
        return Outcome([reply(ctx._("Thank you. Who is writing?"),
                              *[Choice(f"client:{c.id}", c.first_name) for c in attempt.matches])],
                       step="verify.choose_client",
                       state={"pending": pending, "allowed": [c.id for c in attempt.matches]})
    if verification.record_failure(ctx.session, ctx.conversation, ctx.firm, ctx.now):
        return locked(ctx)
    if attempt.ambiguous:
        text = ctx._("I'm not sure which date you mean. Please write it with the name of the month, "
                     "for example: 21 de marzo de 1988 or March 21, 1988.")
    else:
        text = ctx._("That date does not match our records. Please try again.")
    return Outcome([reply(text)], step="verify.ask_dob", state=_keep(ctx, pending))


def choice_id(choice: str | None, prefix: str) -> int | None:
    """The id in a choice value like 'matter:12' (None for anything else: values can be forged)."""
    if not choice or not choice.startswith(prefix + ":"):
        return None
    value = choice.split(":", 1)[1]
    return int(value) if value.isdigit() else None


def choose_client(ctx: Context) -> Outcome:
    """Takes the pick among people who share a phone and a birthday."""
    client_id = choice_id(ctx.choice, "client")
    if client_id is None or client_id not in (ctx.conversation.state or {}).get("allowed", []):
        return NOT_HANDLED
    return _verified(ctx, ctx.session.get(Client, client_id), (ctx.conversation.state or {}).get("pending"))


def _verified(ctx: Context, client: Client, pending: str | None) -> Outcome:
    verification.mark_verified(ctx.session, ctx.conversation, client, ctx.now)
    chosen = (ctx.conversation.state or {}).get("language_chosen")
    if not chosen and (ctx.conversation.language is None or _only_a_date(ctx.text)):
        # A bare date says nothing about language: from here on, the client's own preference.
        ctx.t = Translator.for_language(client.preferred_language)
    thanks = reply(ctx._("Thank you, %(name)s. You are verified.", name=client.first_name))
    follow = ask_matter(ctx, pending)
    follow.replies.insert(0, thanks)
    return follow


def ask_matter(ctx: Context, pending: str | None) -> Outcome:
    """Selects the client's only matter, or asks which one when there are several."""
    matters = open_matters(ctx.session, ctx.conversation.client_id)
    if len(matters) == 1:
        ctx.conversation.matter_id = matters[0].id
        return Outcome([], then=pending or "menu")
    if not matters:
        return Outcome([reply(ctx._("We don't have an open case for you yet. A person from our team can help you."),
                              Choice("handoff", ctx._("Talk to a person")))])
    choices = [Choice(f"matter:{m.id}", matter_title(ctx.t, m)) for m in matters]
    return Outcome([reply(ctx._("You have more than one case with us. Which one is your question about?"), *choices)],
                   step="verify.choose_matter", state={"pending": pending})


def switch_matter(ctx: Context) -> Outcome:
    """Lets a client with several matters pick another one."""
    ctx.conversation.matter_id = None
    outcome = ask_matter(ctx, None)
    if outcome.then:  # only one matter: nothing to switch to
        return Outcome([reply(ctx._("You have only one open case with us."))], then="menu")
    return outcome


def choose_matter(ctx: Context) -> Outcome:
    """Takes the matter picked from the list; then answers what was asked."""
    matter_id = choice_id(ctx.choice, "matter")
    if matter_id is None or matter_id not in {m.id for m in open_matters(ctx.session, ctx.conversation.client_id)}:
        return NOT_HANDLED
    ctx.conversation.matter_id = matter_id
    return Outcome([], then=(ctx.conversation.state or {}).get("pending") or "menu")


def _only_a_date(text: str) -> bool:
    return not re.sub(r"[\d\s/.,-]", "", text)


# What a sender may ask before verifying; answered right after verification.
ANSWERABLE = ("status", "balance", "payment", "checklist", "appointments", "greeting", "upload")
