"""Answers "when is my appointment?" with the matter's upcoming dates."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from services.matters import deadline_name, upcoming_deadlines


def answer(ctx: Context) -> Outcome:
    """Lists upcoming appointments and deadlines, soonest first."""
    deadlines = upcoming_deadlines(ctx.session, ctx.matter, ctx.now.date())
    if not deadlines:
        return Outcome([reply(ctx._("You have no upcoming appointments or deadlines on file. We will tell you as soon as one is scheduled."))])
    lines = [ctx._("Your upcoming dates:")]
    for d in deadlines:
        lines.append(ctx._("• %(name)s: %(date)s", name=deadline_name(ctx.t, d.name), date=ctx.t.date(d.due)))
    return Outcome([reply("\n".join(lines))])
