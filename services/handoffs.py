"""Handoff to staff: the conversation status bot → handoff → bot, always audited."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit, events
from services.checklists import items_by_status
from services.invoices import open_invoices, owed
from services.models import Conversation, Handoff, Matter, Message

REASONS = ("asked_for_person", "not_understood", "dispute", "verification_lockout", "upload_trouble", "processing_error",
           "whatsapp_window")


def plain_summary(session: Session, conv: Conversation) -> dict:
    """A deterministic summary from the record for the staff queue (staff-only, never sent)."""
    recent = session.scalars(
        select(Message.body).where(Message.conversation_id == conv.id, Message.direction == "in")
        .order_by(Message.id.desc()).limit(5)
    ).all()
    summary: dict = {
        "language": conv.language,
        "verified": conv.client_id is not None,
        "channel": conv.channel,
        "recent_messages": list(reversed(recent)),
    }
    matter = session.get(Matter, conv.matter_id) if conv.matter_id else None
    if matter:
        groups = items_by_status(session, matter)
        summary.update({
            "matter": matter.external_id,
            "stage": matter.stage,
            "missing_items": [i.key for i in groups.get("required", []) + groups.get("rejected", [])],
            "balance": {cur: str(amount) for cur, amount in owed(open_invoices(session, matter.id)).items()},
            "disputed_invoices": [i.number for i in open_invoices(session, matter.id) if i.status == "disputed"],
        })
    return summary


def start(session: Session, conv: Conversation, reason: str, now: datetime) -> Handoff:
    """Puts the conversation in staff hands with a plain summary; the bot goes silent."""
    handoff = Handoff(conversation_id=conv.id, matter_id=conv.matter_id, reason=reason,
                      summary=plain_summary(session, conv), status="open", created_at=now,
                      ai_summary_status="pending")  # the drafted summary is made by a job after commit
    handoff.assignee_id = _matter_owner(session, conv.matter_id)
    session.add(handoff)
    conv.status = "handoff"
    session.flush()
    audit.record(session, f"conversation:{conv.id}", "handoff_requested", f"handoff:{handoff.id}",
                 {"reason": reason, "assignee": handoff.assignee_id})
    events.record(session, "handoff_requested", matter=_matter(session, conv), client_id=conv.client_id, now=now,
                  data={"handoff_id": handoff.id, "reason": reason, "channel": conv.channel})
    return handoff


def _matter(session: Session, conv: Conversation) -> Matter | None:
    return session.get(Matter, conv.matter_id) if conv.matter_id else None


def _matter_owner(session: Session, matter_id: int | None) -> int | None:
    """Who a matter's handoffs go to first: its assigned paralegal, else its associate (else the queue)."""
    if matter_id is None:
        return None
    matter = session.get(Matter, matter_id)
    for role in ("paralegal", "associate", "partner"):
        for person in matter.staff:
            if person.role == role and person.active:
                return person.id
    return None


def resolve(session: Session, conv: Conversation, actor: str, now: datetime) -> None:
    """Hands the conversation back to the bot and closes its open handoffs."""
    for handoff in session.scalars(select(Handoff).where(Handoff.conversation_id == conv.id, Handoff.status != "resolved")):
        handoff.status, handoff.resolved_at = "resolved", now
        audit.record(session, actor, "handoff_resolved", f"handoff:{handoff.id}", {})
        events.record(session, "handoff_resolved", matter=_matter(session, conv), client_id=conv.client_id, now=now,
                      data={"handoff_id": handoff.id})
    conv.status = "bot"
    conv.dialog, conv.state = None, {}
