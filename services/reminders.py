"""Reminder rows written where a change happens (a stage change → the client's update, sent later
by services.proactive). Only rows here: nothing is sent, so any service may call it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Matter, Reminder

STAGE_CHANGED = "stage_changed"


def note_stage_change(session: Session, matter: Matter, now: datetime) -> Reminder:
    """Schedules the client's update about the matter's new stage (one pending row per matter: a
    second change before it goes out updates it, so the client hears only the latest stage)."""
    row = session.scalar(select(Reminder).where(Reminder.purpose == STAGE_CHANGED, Reminder.subject == f"matter:{matter.id}",
                                                Reminder.state == "pending"))
    if row is None:
        row = Reminder(purpose=STAGE_CHANGED, subject=f"matter:{matter.id}", client_id=matter.client_id,
                       matter_id=matter.id, due_at=now, state="pending", attempts=0, payload={}, created_at=now)
        session.add(row)
    row.payload = {"stage": matter.stage}
    return row
