"""Answers "what's still missing?" from the matter's document checklist."""
from __future__ import annotations

from dialogs import upload
from dialogs.base import Context, Outcome, reply
from services.checklists import item_name, items_by_status
from services.documents import can_upload, progress
from services.reviews import reason_for_client


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
            reason = reason_for_client(ctx.t, item)
            if reason:
                lines.append(ctx._("• %(name)s — reason: %(reason)s", name=name(item), reason=reason))
            else:
                lines.append(f"• {name(item)}")
    if received:
        lines.append(ctx._("Received, under review: %(items)s", items=", ".join(name(i) for i in received)))
    if accepted:
        lines.append(ctx._("Accepted: %(items)s", items=", ".join(name(i) for i in accepted)))
    done, total = progress(ctx.session, matter)
    lines.append(ctx._("Progress: %(done)s of %(total)s documents accepted.", done=done, total=total))
    replies = [reply("\n".join(lines))]
    first = next((i for i in rejected + missing if can_upload(matter, i)), None)
    if first is None:
        return Outcome(replies)
    walk = upload.ask_for(ctx, first, [])  # the list becomes the conversation: ask for the first one now
    return Outcome(replies + walk.replies, walk.step, walk.state)
