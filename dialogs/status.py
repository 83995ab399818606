"""Answers "what's my status?" from the matter record."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from services.documents import progress
from services.matters import matter_title, next_stage_blockers
from services.stages import STAGE_TEXT


def answer(ctx: Context) -> Outcome:
    """Tells the stage in plain words, the receipt number if any, the next step, and an invoice that holds it."""
    matter = ctx.matter
    stage = STAGE_TEXT[matter.stage]
    lines = [
        ctx._("Your case: %(title)s.", title=matter_title(ctx.t, matter)),
        ctx._("Status: %(label)s. %(explanation)s", label=ctx._(stage.label), explanation=ctx._(stage.explanation)),
    ]
    if matter.receipt_number:
        lines.append(ctx._("USCIS receipt number: %(receipt)s.", receipt=matter.receipt_number))
    lines.append(ctx._("Next step: %(next)s", next=ctx._(stage.next_step)))
    blocked = next_stage_blockers(ctx.session, matter)
    if blocked:
        target, numbers = blocked
        if target in ("ready_to_file", "filed"):
            lines.append(ctx._("Your case is ready to be filed as soon as payment of invoice %(numbers)s is received.",
                               numbers=", ".join(numbers)))
        else:
            lines.append(ctx._("Your case moves on to the next step (%(stage)s) as soon as payment of invoice %(numbers)s "
                               "is received.", stage=ctx._(STAGE_TEXT[target].label), numbers=", ".join(numbers)))
    done, total = progress(ctx.session, matter)
    if total:
        lines.append(ctx._("Documents: %(done)s of %(total)s accepted.", done=done, total=total))
    return Outcome([reply("\n".join(lines))])
