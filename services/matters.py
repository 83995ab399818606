"""Matters: titles, open matters of a client, upcoming dates, and stage changes (held by unpaid invoices)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit, events, reminders
from services.i18n import N_, Translator
from services.models import STAGES, Deadline, Invoice, Matter
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


# -- stage changes ---------------------------------------------------------------------------
# Leaving the filing path this way is always allowed (a case can close with money owed).
UNBLOCKABLE_STAGES = ("denied", "closed")
BLOCKING_STATUSES = ("unpaid", "partial", "disputed")


class StageBlocked(Exception):
    """A stage change refused because invoices that block the stage are not paid."""

    def __init__(self, stage: str, invoice_numbers: list[str]):
        self.stage, self.invoice_numbers = stage, invoice_numbers
        super().__init__(f"stage {stage} is blocked until invoice(s) {', '.join(invoice_numbers)} are paid")


def _reaches(current: str, target: str, blocked: str) -> bool:
    """Whether moving current → target enters or jumps over the blocked stage."""
    if target == blocked:
        return True
    if target in UNBLOCKABLE_STAGES or blocked not in STAGES or target not in STAGES or current not in STAGES:
        return False
    return STAGES.index(current) < STAGES.index(blocked) < STAGES.index(target)


def blocking_invoices(session: Session, matter: Matter, stage: str) -> list[Invoice]:
    """Unpaid, partial or disputed invoices of the matter that keep it from reaching `stage`."""
    rows = session.scalars(select(Invoice).where(
        Invoice.matter_id == matter.id, Invoice.blocks_stage.is_not(None),
        Invoice.status.in_(BLOCKING_STATUSES)).order_by(Invoice.number)).all()
    return [inv for inv in rows if _reaches(matter.stage, stage, inv.blocks_stage)]


def change_stage(session: Session, matter: Matter, stage: str, actor: str, now: datetime) -> Matter:
    """Moves the matter to `stage` (audited, `matter_stage_changed` recorded), or raises StageBlocked
    naming the unpaid invoices; a refused stage is remembered and taken once they are paid."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    blocking = blocking_invoices(session, matter, stage)
    if blocking:
        numbers = [inv.number for inv in blocking]
        matter.waiting_stage = stage
        audit.record(session, actor, "stage_change_refused", f"matter:{matter.id}",
                     {"stage": stage, "invoices": numbers})
        raise StageBlocked(stage, numbers)
    previous = matter.stage
    matter.stage, matter.stage_changed_at = stage, now
    if matter.waiting_stage == stage or stage in UNBLOCKABLE_STAGES:
        matter.waiting_stage = None
    audit.record(session, actor, "stage_changed", f"matter:{matter.id}", {"from": previous, "to": stage})
    events.record(session, "matter_stage_changed", matter=matter, data={"from": previous, "to": stage}, now=now)
    if stage != previous:
        reminders.note_stage_change(session, matter, now)  # the client hears about it (services.proactive)
    return matter


def release_waiting_stage(session: Session, matter: Matter, now: datetime) -> bool:
    """After a payment: takes the stage staff asked for if nothing blocks it any more."""
    if not matter.waiting_stage or blocking_invoices(session, matter, matter.waiting_stage):
        return False
    change_stage(session, matter, matter.waiting_stage, "system:payment", now)
    return True


def next_stage_blockers(session: Session, matter: Matter) -> tuple[str, list[str]] | None:
    """(stage, invoice numbers) when the stage the matter waits for, or its next stage, is blocked."""
    candidates = [matter.waiting_stage] if matter.waiting_stage else []
    if matter.stage in STAGES and STAGES.index(matter.stage) + 1 < len(STAGES):
        candidates.append(STAGES[STAGES.index(matter.stage) + 1])
    for stage in candidates:
        blocking = blocking_invoices(session, matter, stage)
        if blocking:
            return stage, [inv.number for inv in blocking]
    return None
