"""Messages the firm starts on its own: stage updates, approaching deadlines, missing-document nudges.

Each is a Reminder row with its due time (a restart or a Redis flush loses none), sent by
`run_due` as a client notice (services.outreach: the client's language, details only on a thread
verified for them, no A-number, receipt number or date of birth in the text). Nothing goes out in
quiet hours: the row waits until the morning in the client's time zone. Opt-out and the WhatsApp
24-hour window are applied by the send path, which holds or reroutes rather than drops.

- stage_changed: written by services.matters.change_stage (services.reminders), due at once.
- deadline_approaching: for every deadline, N days before it (default 7 and 1) at 10:00 local.
- documents_missing: while checklist items are open and the client is idle, after 3, 7 and 14 idle
  days (capped at that many). Any activity of the client (a message, an upload) restarts the idle
  clock, so an upload stops the nudge that was coming; a complete checklist, an opt-out or staff
  (Matter.nudges_paused) stop them for good.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from services import audit, outreach
from services.documents import UPLOAD_STATUSES, open_items
from services.i18n import N_, Translator
from services.matters import FINISHED_STAGES, deadline_name, matter_title
from services.models import ChecklistItem, Client, Conversation, Deadline, FirmSettings, Matter, Message, OutgoingEvent, Reminder
from services.payment_reminders import TEASER as REMINDER_TEASER
from services.quiet_hours import next_allowed, window, zone
from services.reminders import STAGE_CHANGED
from services.stages import STAGE_TEXT

DEADLINE, NUDGE = "deadline_approaching", "documents_missing"
PURPOSES = (STAGE_CHANGED, DEADLINE, NUDGE)
# No automatic text for these: a new file is welcomed in person, and a denial is explained by the attorney.
SILENT_STAGES = ("intake", "denied")
NO_NUDGE_STAGES = (*FINISHED_STAGES, "denied", "approved")
DEADLINE_AT = time(10, 0)
_LOCK_KEY = 7_461_007  # PostgreSQL advisory lock for scheduling (payment reminders use 7_461_005)

STAGE_UPDATE = N_("Update on your case %(title)s: %(stage)s.")
DEADLINE_SOON = N_("Reminder: %(name)s on %(date)s, in %(days)s days.")
DEADLINE_TOMORROW = N_("Reminder: %(name)s is tomorrow, %(date)s.")
NUDGE_TEXT = N_("We are still waiting for some documents for your case %(title)s.")
NUDGE_HOW = N_("You can send them here as photos or PDF files.")
MISSING_COUNT = N_("Documents still missing: %(count)s. Reply MISSING to see them.")


@dataclass(frozen=True)
class Policy:
    """When the reminders go (from Settings: DEADLINE_REMINDER_DAYS, NUDGE_DAYS)."""

    deadline_days: tuple[int, ...] = (7, 1)
    nudge_days: tuple[int, ...] = (3, 7, 14)


# -- scheduling ---------------------------------------------------------------------------------
def schedule(session: Session, now: datetime, policy: Policy) -> int:
    """Creates the rows of deadlines coming up and of matters waiting for documents; returns how many."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})  # one scheduler at a time
    return _schedule_deadlines(session, now, policy) + _schedule_nudges(session, now, policy)


def _schedule_deadlines(session: Session, now: datetime, policy: Policy) -> int:
    if not policy.deadline_days:
        return 0
    horizon = now.date() + timedelta(days=max(policy.deadline_days) + 1)
    rows = session.execute(
        select(Deadline, Matter, Client).join(Matter, Matter.id == Deadline.matter_id).join(Client, Client.id == Matter.client_id)
        .where(Deadline.due >= now.date() - timedelta(days=1), Deadline.due <= horizon, Matter.stage.not_in(FINISHED_STAGES))
    ).all()
    wanted = {f"deadline:{d.id}:{days}" for d, _, _ in rows for days in policy.deadline_days}
    known = set(session.scalars(select(Reminder.subject).where(Reminder.purpose == DEADLINE, Reminder.subject.in_(wanted)))) if wanted else set()
    created = 0
    for deadline, matter, client in rows:
        tz = zone(client.timezone)
        today = now.astimezone(tz).date()
        for days in policy.deadline_days:
            subject = f"deadline:{deadline.id}:{days}"
            day = deadline.due - timedelta(days=days)
            if subject in known or day < today:
                continue  # already planned, or added too late for this one (a nearer one still comes)
            due = max(datetime.combine(day, DEADLINE_AT, tz).astimezone(now.tzinfo), now)
            session.add(Reminder(purpose=DEADLINE, subject=subject, client_id=client.id, matter_id=matter.id, due_at=due,
                                 state="pending", attempts=0, created_at=now,
                                 payload={"deadline_id": deadline.id, "due": deadline.due.isoformat(), "days": days}))
            created += 1
    return created


def _schedule_nudges(session: Session, now: datetime, policy: Policy) -> int:
    if not policy.nudge_days:
        return 0
    has_open = exists().where(ChecklistItem.matter_id == Matter.id, ChecklistItem.status.in_(UPLOAD_STATUSES))
    candidates = session.scalars(select(Matter).where(Matter.stage.not_in(NO_NUDGE_STAGES), Matter.nudges_paused.is_(False),
                                                      has_open)).all()
    subjects = [f"matter:{m.id}" for m in candidates]
    planned = set(session.scalars(select(Reminder.subject).where(Reminder.purpose == NUDGE, Reminder.subject.in_(subjects)))) if subjects else set()
    matters = [m for m in candidates if f"matter:{m.id}" not in planned]
    for matter in matters:
        session.add(Reminder(purpose=NUDGE, subject=f"matter:{matter.id}", client_id=matter.client_id, matter_id=matter.id,
                             due_at=last_activity(session, matter) + timedelta(days=policy.nudge_days[0]),
                             state="pending", attempts=0, payload={"sent": 0}, created_at=now))
    return len(matters)


def last_activity(session: Session, matter: Matter) -> datetime:
    """When the client last did something: wrote to us (on a thread verified for them) or uploaded a document."""
    wrote = session.scalar(select(func.max(Message.processed_at)).join(Conversation, Conversation.id == Message.conversation_id)
                           .where(Conversation.client_id == matter.client_id, Message.direction == "in"))
    uploaded = session.scalar(select(func.max(OutgoingEvent.created_at)).where(
        OutgoingEvent.matter_id == matter.id, OutgoingEvent.event == "document_uploaded"))
    return max(t for t in (matter.created_at, wrote, uploaded) if t is not None)


# -- sending ------------------------------------------------------------------------------------
def run_due(session: Session, *, firm: FirmSettings, now: datetime, policy: Policy) -> list[int]:
    """Sends the due rows (or moves them past quiet hours or the client's activity); returns notice ids."""
    due = session.scalars(select(Reminder).where(Reminder.purpose.in_(PURPOSES), Reminder.state == "pending",
                                                 Reminder.due_at <= now).order_by(Reminder.due_at, Reminder.id)
                          .with_for_update()).all()
    sent: list[int] = []
    for row in due:
        client = session.get(Client, row.client_id) if row.client_id else None
        matter = session.get(Matter, row.matter_id) if row.matter_id else None
        verdict = _check(session, row, client, matter, now, policy)
        if verdict in ("wait",):
            continue
        if verdict:
            _finish(session, row, "done" if verdict in ("complete", "silent") else "stopped", verdict)
            continue
        later = next_allowed(now, zone(client.timezone), window(firm))
        if later is not None:
            row.due_at = later  # quiet hours: it waits, it is not dropped
            continue
        compose, teaser = _message(session, row, matter)
        notice = outreach.notify(session, client.id, compose, firm=firm, now=now, reason=row.purpose, teaser=teaser)
        if notice is None:
            _finish(session, row, "stopped", "unreachable")
            continue
        sent.append(notice.id)
        row.attempts += 1
        if row.purpose == NUDGE:
            count = int((row.payload or {}).get("sent", 0)) + 1
            row.payload = {**(row.payload or {}), "sent": count}
            if count >= len(policy.nudge_days):
                row.state = "done"
            else:
                row.due_at = last_activity(session, matter) + timedelta(days=policy.nudge_days[count])
        else:
            row.state = "done"
    return sent


def _check(session: Session, row: Reminder, client: Client | None, matter: Matter | None, now: datetime,
           policy: Policy) -> str | None:
    """None to send now; "wait" (due_at moved); else why the row ends (complete, silent, or a stop reason)."""
    if client is None or matter is None:
        return "gone"
    if row.purpose == STAGE_CHANGED and (row.payload or {}).get("stage") in SILENT_STAGES:
        return "silent"
    if row.purpose == DEADLINE:
        deadline = session.get(Deadline, (row.payload or {}).get("deadline_id"))
        if deadline is None or deadline.due.isoformat() != (row.payload or {}).get("due"):
            return "changed"
        if matter.stage in FINISHED_STAGES:
            return "closed"
    if row.purpose == NUDGE:
        if matter.nudges_paused:
            return "staff"
        if not open_items(session, matter) or matter.stage in NO_NUDGE_STAGES:
            return "complete"
        count = int((row.payload or {}).get("sent", 0))
        if count >= len(policy.nudge_days):
            return "complete"
        expected = last_activity(session, matter) + timedelta(days=policy.nudge_days[count])
        if expected > now:
            row.due_at = expected  # the client was active since: the idle clock restarted
            return "wait"
    if outreach.client_thread(session, client.id) is None:
        return "unreachable"  # every thread opted out (or none exists)
    return None


def _finish(session: Session, row: Reminder, state: str, reason: str) -> None:
    row.state, row.payload = state, {**(row.payload or {}), "ended": reason}
    if state == "stopped":
        audit.record(session, "system", "reminder_stopped", f"reminder:{row.id}", {"reason": reason, "purpose": row.purpose})


def _message(session: Session, row: Reminder, matter: Matter):
    """The notice's text (composed in the client's language when it is sent) and its teaser."""
    payload = row.payload or {}
    if row.purpose == STAGE_CHANGED:
        stage = STAGE_TEXT[matter.stage]

        def compose(t: Translator) -> str:
            return "\n".join([t.gettext(STAGE_UPDATE, title=matter_title(t, matter), stage=t.gettext(stage.label)),
                              t.gettext(stage.explanation), t.gettext(stage.next_step)])
        return compose, outreach.DEFAULT_TEASER
    if row.purpose == DEADLINE:
        deadline = session.get(Deadline, payload["deadline_id"])
        days = int(payload["days"])

        def compose(t: Translator) -> str:
            name, day = deadline_name(t, deadline.name), t.date(deadline.due)
            if days == 1:
                return t.gettext(DEADLINE_TOMORROW, name=name, date=day)
            return t.gettext(DEADLINE_SOON, name=name, date=day, days=days)
        return compose, REMINDER_TEASER
    missing = len(open_items(session, matter))

    def compose(t: Translator) -> str:
        return "\n".join([t.gettext(NUDGE_TEXT, title=matter_title(t, matter)), t.gettext(MISSING_COUNT, count=missing),
                          t.gettext(NUDGE_HOW)])
    return compose, REMINDER_TEASER
