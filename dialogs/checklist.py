"""Answers "what's still missing?" from the matter's document checklist."""
from __future__ import annotations

from dialogs.base import Context, Outcome, reply
from services.checklists import item_instructions, item_name, items_by_status


def answer(ctx: Context) -> Outcome:
    """Lists missing items (with how to send the first), then rejected, received and accepted ones."""
    matter = ctx.matter
    groups = items_by_status(ctx.session, matter)
    name = lambda item: item_name(ctx.t, matter, item)  # noqa: E731
    missing, rejected = groups.get("required", []), groups.get("rejected", [])
    received, accepted = groups.get("received", []), groups.get("accepted", [])
    lines: list[str] = []
    if not missing and not rejected:
        lines.append(ctx._("You have sent every document on your list. Thank you!"))
    if missing:
        lines.append(ctx._("Documents still missing (%(count)s):", count=len(missing)))
        lines.extend(f"• {name(item)}" for item in missing)
    if rejected:
        lines.append(ctx._("Documents we need again:"))
        for item in rejected:
            if item.reason:
                lines.append(ctx._("• %(name)s — reason: %(reason)s", name=name(item), reason=item.reason))
            else:
                lines.append(f"• {name(item)}")
    if received:
        lines.append(ctx._("Received, under review: %(items)s", items=", ".join(name(i) for i in received)))
    if accepted:
        lines.append(ctx._("Accepted: %(items)s", items=", ".join(name(i) for i in accepted)))
    replies = [reply("\n".join(lines))]
    first = (rejected or missing or [None])[0]
    if first is not None:
        how = item_instructions(ctx.t, matter, first)
        if how:
            replies.append(reply(ctx._("To start with %(name)s: %(how)s", name=name(first), how=how)))
    return Outcome(replies)
