"""Matters: titles, open matters of a client, upcoming dates."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.i18n import N_, Translator
from services.models import Deadline, Matter
from services.templates import load_template

FINISHED_STAGES = ("closed",)

# Names firms commonly give dates; shown translated when a deadline is named exactly so.
COMMON_DEADLINE_NAMES = (
    N_("Biometrics appointment"), N_("Naturalization interview"), N_("Interview"), N_("Green card interview"),
    N_("RFE response due"), N_("Documents due to the firm"), N_("Court hearing"), N_("Medical exam"),
    N_("Oath ceremony"), N_("Consultation"),
)


def deadline_name(t: Translator, name: str) -> str:
    """The deadline's name in the reader's language when it is a common one, else as the firm wrote it."""
    return t.gettext(name) if name in COMMON_DEADLINE_NAMES else name


def matter_title(t: Translator, matter: Matter) -> str:
    """'I-130 — Petition for Alien Relative (spouse)' in the reader's language."""
    try:
        title = load_template(matter.type).title.get(t.language)
    except (KeyError, ValueError):
        title = None
    return f"{matter.type} — {title}" if title else matter.type


def open_matters(session: Session, client_id: int) -> list[Matter]:
    """The client's matters that are not closed, oldest first."""
    return list(session.scalars(
        select(Matter).where(Matter.client_id == client_id, Matter.stage.not_in(FINISHED_STAGES)).order_by(Matter.id)
    )) or list(session.scalars(select(Matter).where(Matter.client_id == client_id).order_by(Matter.id)))


def upcoming_deadlines(session: Session, matter: Matter, today: date) -> list[Deadline]:
    return list(session.scalars(
        select(Deadline).where(Deadline.matter_id == matter.id, Deadline.due >= today).order_by(Deadline.due)
    ))
