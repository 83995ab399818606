"""Staff review of a checklist item: accept it, or reject it with a reason the client understands.

The item moves received → accepted | rejected (audited, `document_reviewed` recorded), and the
client is told in their language: what was accepted, or what to send again and why. The notice is
written to the outbox in the same transaction; the caller queues its send after commit.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services import audit, events, outreach
from services.checklists import item_name
from services.documents import open_items
from services.i18n import N_, Translator
from services.models import ChecklistItem, FirmSettings, Matter, Message

# Reason code → (what staff pick, what the client is told to do), both translated for the client.
REASONS = {
    "illegible": (N_("The copy is hard to read."),
                  N_("Please send a new, sharp photo in good light, with all four corners visible.")),
    "expired": (N_("The document has expired."),
                N_("Please send a copy of the current, unexpired document.")),
    "wrong_document": (N_("It is not the document we asked for."),
                       N_("Please check the name of the document and send that one.")),
    "missing_pages": (N_("Some pages or a side are missing."),
                      N_("Please send every page, and the front and back where there is one.")),
    "needs_translation": (N_("The document is not in English and needs a certified English translation."),
                          N_("Please send the certified English translation together with the document.")),
    "other": (N_("Our team needs a new copy."), N_("Please see the note from our team.")),
}
DECISIONS = ("accepted", "rejected")


class ReviewError(ValueError):
    """A review that cannot be applied (no files yet, unknown reason, missing note)."""


def review(session: Session, item: ChecklistItem, decision: str, *, actor: str, now: datetime, firm: FirmSettings,
           reason_code: str | None = None, note: str | None = None) -> Message | None:
    """Accepts or rejects an item and queues the client's notice (None when they cannot be reached)."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}")
    if decision == "rejected" and reason_code not in REASONS:
        raise ReviewError(f"reason must be one of {', '.join(REASONS)}")
    if reason_code == "other" and not (note or "").strip():
        raise ReviewError("reason 'other' needs a note for the client")
    if decision == "accepted" and item.status not in ("received", "rejected"):
        raise ReviewError("nothing was received for this item yet")
    matter = session.get(Matter, item.matter_id)
    item.status, item.reviewed_by, item.reviewed_at, item.updated_at = decision, actor, now, now
    item.reason_code = reason_code if decision == "rejected" else None
    item.reason = (note or "").strip() or None if decision == "rejected" else None
    audit.record(session, actor, "document_reviewed", f"checklist_item:{item.id}",
                 {"matter": matter.external_id, "item": item.key, "decision": decision, "reason": reason_code})
    events.record(session, "document_reviewed", matter=matter, now=now,
                  data={"item": item.key, "status": decision, "reason": reason_code})

    def compose(t: Translator) -> str:
        name = item_name(t, matter, item)
        if decision == "accepted":
            lines = [t.gettext("Good news: our team accepted your document «%(item)s».", item=name)]
        else:
            label, todo = REASONS[reason_code]
            lines = [t.gettext("We need your document «%(item)s» again.", item=name),
                     t.gettext("Reason: %(reason)s", reason=t.gettext(label)), t.gettext(todo)]
            if note:
                lines.append(t.gettext("Note from our team: %(note)s", note=note.strip()))
            lines.append(t.gettext("You can send it here as a photo or PDF."))
        missing = open_items(session, matter)
        if missing:
            lines.append(t.gettext("Documents still missing: %(count)s. Reply MISSING to see them.", count=len(missing)))
        return "\n".join(lines)

    return outreach.notify(session, matter.client_id, compose, firm=firm, now=now, reason=f"document_{decision}",
                           teaser=N_("%(firm)s has an update about your documents. Reply to this message to see it."))


def reason_for_client(t: Translator, item: ChecklistItem) -> str | None:
    """Why a rejected item is needed again, in the client's language (with staff's note, if any)."""
    if item.status != "rejected":
        return None
    label = t.gettext(REASONS[item.reason_code][0]) if item.reason_code in REASONS else ""
    return " ".join(part for part in (label, item.reason or "") if part) or None
