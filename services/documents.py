"""Documents on a matter's checklist: filing a checked upload to an item, duplicates, progress.

A Document row is one file as received (the evidence) or a staff copy derived from an item's
originals. Filing never alters the original; it links it to the item, marks the item received
and records `document_uploaded` for the firm's other systems, in the caller's transaction.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services import audit, events
from services.models import ChecklistItem, Document, Matter, Message
from services.templates import load_template

UPLOAD_STATUSES = ("required", "rejected")  # items that still need something from the client
AVAILABLE = ("valid",)
HOLD_UNVERIFIED = timedelta(minutes=30)  # how long a file sent before verifying waits for its sender  # documents staff may open (checked, and clean when a scanner is configured)


def documents_of_message(session: Session, message: Message) -> list[Document]:
    """The original files that came with one inbound message, in the order they were sent."""
    ids = [m["document_id"] for m in message.media or [] if m.get("document_id")]
    if not ids:
        return []
    by_id = {d.id: d for d in session.scalars(select(Document).where(Document.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def unfiled_documents(session: Session, conversation_id: int, client_id: int | None, now: datetime) -> list[Document]:
    """Checked files on this conversation, not filed yet, that this verified client may file: those sent
    while verified as them, and those sent unverified just before (HOLD_UNVERIFIED). An older unverified
    file on a shared family phone is left for staff to place, never filed to whoever verifies next."""
    mine = Message.client_id == client_id
    handling_now = Message.processed_at.is_(None)  # the message this turn is answering
    just_before = Message.client_id.is_(None) & (Message.processed_at >= now - HOLD_UNVERIFIED)
    return list(session.scalars(
        select(Document).join(Message, Document.message_id == Message.id)
        .where(Message.conversation_id == conversation_id, Document.item_id.is_(None), Document.role == "original",
               Document.status == "valid", Document.matter_id.is_(None), mine | handling_now | just_before)
        .order_by(Document.id)
    ))


def open_items(session: Session, matter: Matter) -> list[ChecklistItem]:
    """Items the client still has to send (required, or rejected and needed again), in order."""
    return list(session.scalars(
        select(ChecklistItem).where(ChecklistItem.matter_id == matter.id, ChecklistItem.status.in_(UPLOAD_STATUSES))
        .order_by(ChecklistItem.position, ChecklistItem.id)
    ))


def accepted_kinds(matter: Matter, item: ChecklistItem) -> tuple[str, ...]:
    """What the item accepts ("image", "pdf", "in_person"); firm-specific items accept photos and PDFs."""
    try:
        template_item = load_template(matter.type).item(item.key)
    except (KeyError, ValueError):
        template_item = None
    return template_item.accepted_kinds if template_item else ("image", "pdf")


def sides(matter: Matter, item: ChecklistItem) -> int:
    try:
        template_item = load_template(matter.type).item(item.key)
    except (KeyError, ValueError):
        template_item = None
    return template_item.sides if template_item else 1


def can_upload(matter: Matter, item: ChecklistItem) -> bool:
    """False for items handed in person (a sealed medical exam, say)."""
    return any(kind in ("image", "pdf") for kind in accepted_kinds(matter, item))


def item_documents(session: Session, item: ChecklistItem, role: str = "original") -> list[Document]:
    return list(session.scalars(select(Document).where(Document.item_id == item.id, Document.role == role)
                                .order_by(Document.id)))


def is_duplicate(session: Session, item: ChecklistItem, doc: Document) -> bool:
    """The same bytes (SHA-256) are already filed to this item."""
    return session.scalar(select(func.count()).select_from(Document).where(
        Document.item_id == item.id, Document.sha256 == doc.sha256, Document.id != doc.id,
        Document.role == "original")) > 0


def file_to_item(session: Session, doc: Document, item: ChecklistItem, *, client_id: int | None, now: datetime) -> None:
    """Files a checked original to an item: the item becomes `received` and the upload is recorded."""
    matter = session.get(Matter, item.matter_id)
    doc.item_id, doc.matter_id, doc.uploader_client_id = item.id, item.matter_id, client_id
    if item.status in UPLOAD_STATUSES:
        item.status, item.reason, item.reason_code = "received", None, None
        item.reviewed_by = item.reviewed_at = None
    item.updated_at = now
    audit.record(session, f"client:{client_id}", "document_filed", f"document:{doc.id}",
                 {"item": item.key, "matter": matter.external_id, "sha256": doc.sha256, "channel": doc.channel})
    events.record(session, "document_uploaded", matter=matter, now=now,
                  data={"document_id": doc.id, "item": item.key, "sha256": doc.sha256, "mime": doc.mime,
                        "size": doc.size, "channel": doc.channel, "status": item.status})


def progress(session: Session, matter: Matter) -> tuple[int, int]:
    """(items accepted, items on the checklist)."""
    rows = session.execute(select(ChecklistItem.status, func.count()).where(ChecklistItem.matter_id == matter.id)
                           .group_by(ChecklistItem.status)).all()
    counts = dict(rows)
    return counts.get("accepted", 0), sum(counts.values())
