"""Who on the staff may see what: matter-level access by role and assignment.

Admins and partners see every matter. Associates and paralegals see the matters they are assigned
to (and handoffs from senders not yet tied to a matter, which disclose nothing about one). Finance
sees invoices and payments, not documents or conversations. A refusal is audited; the console
answers it with 404 so nobody learns a record exists.
"""
from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from services import audit
from services.models import Matter, StaffUser, matter_staff

ALL_MATTERS = ("admin", "partner")
ASSIGNED = ("associate", "paralegal")
ATTORNEYS = ("admin", "partner", "associate")


def sees_all(user: StaffUser) -> bool:
    return user.role in ALL_MATTERS


def assigned(session: Session, user: StaffUser, matter_id: int) -> bool:
    return bool(session.scalar(select(exists().where(matter_staff.c.matter_id == matter_id,
                                                     matter_staff.c.staff_user_id == user.id))))


def can_see_matter(session: Session, user: StaffUser, matter: Matter | None) -> bool:
    """Whether the matter's record (stage, checklist, invoices) is open to this person."""
    if matter is None:
        return False
    if sees_all(user) or user.role == "finance":
        return True
    return user.role in ASSIGNED and assigned(session, user, matter.id)


def can_see_documents(session: Session, user: StaffUser, matter: Matter | None) -> bool:
    return user.role != "finance" and can_see_matter(session, user, matter)


def can_see_conversation(session: Session, user: StaffUser, matter_id: int | None) -> bool:
    """Transcripts: not finance; others by matter (a thread with no matter yet is open to case staff)."""
    if user.role == "finance":
        return False
    if matter_id is None:
        return True
    return can_see_matter(session, user, session.get(Matter, matter_id))


def can_see_client(session: Session, user: StaffUser, client_id: int) -> bool:
    """Whether any of the client's matters is open to this person (for turns not tied to one matter)."""
    if sees_all(user):
        return True
    if user.role not in ASSIGNED:
        return False
    return bool(session.scalar(select(exists().where(
        matter_staff.c.staff_user_id == user.id,
        matter_staff.c.matter_id.in_(select(Matter.id).where(Matter.client_id == client_id))))))


def visible_matter_ids(session: Session, user: StaffUser):
    """A select of the matter ids this person may see (for lists)."""
    if sees_all(user) or user.role == "finance":
        return select(Matter.id)
    return select(matter_staff.c.matter_id).where(matter_staff.c.staff_user_id == user.id)


def refuse(session: Session, user: StaffUser, subject: str) -> None:
    """Records an attempt to open a record outside one's access."""
    audit.record(session, f"staff:{user.id}", "access_denied", subject, {"role": user.role})
