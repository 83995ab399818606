"""Reminders about overdue invoices: scheduled as Reminder rows, sent as client notices.

One row per invoice (purpose `invoice_overdue`). The first is due the morning after the due date
in the client's time zone, the next ones every interval, up to a maximum. Nothing goes out
between 20:00 and 8:00 local time: the reminder waits until 8:00, it is never dropped. A row stops
for good once the invoice is paid, disputed or void, or the client cannot be reached (opted out);
after a dispute closes with a balance left, `hold` stops it too (a person follows up).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services import audit, outreach
from services.quiet_hours import next_allowed, window, zone as _zone
from services.i18n import N_, Translator
from services.invoices import balance
from services.models import Client, FirmSettings, Invoice, Matter, Reminder

PURPOSE = "invoice_overdue"
_LOCK_KEY = 7_461_005  # PostgreSQL advisory lock for scheduling (audit uses 7_461_001)
FIRST_AT = time(10, 0)
REMINDER = N_("Reminder: invoice %(number)s has a balance of %(balance)s that was due on %(date)s. "
              "Write \"pay\" to get a secure payment link, or \"person\" to talk with our team.")
TEASER = N_("%(firm)s has a reminder for you. Reply to this message to see it.")


def subject(invoice: Invoice) -> str:
    return f"invoice:{invoice.id}"


def schedule(session: Session, now: datetime) -> int:
    """Creates the reminder row of each overdue unpaid or partial invoice that has none yet."""
    if session.get_bind().dialect.name == "postgresql":
        # Several workers run this loop: one at a time, so an invoice never gets two reminder rows.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    rows = session.execute(
        select(Invoice, Client).join(Matter, Matter.id == Invoice.matter_id).join(Client, Client.id == Matter.client_id)
        .where(Invoice.status.in_(("unpaid", "partial")), Invoice.due.is_not(None), Invoice.due < now.date())
    ).all()
    if not rows:
        return 0
    known = set(session.scalars(select(Reminder.subject).where(Reminder.purpose == PURPOSE)))
    created = 0
    for invoice, client in rows:
        if subject(invoice) in known or balance(invoice) <= 0:
            continue
        zone = _zone(client.timezone)
        first = datetime.combine(invoice.due + timedelta(days=1), FIRST_AT, zone).astimezone(now.tzinfo)
        session.add(Reminder(purpose=PURPOSE, subject=subject(invoice), client_id=client.id, due_at=max(first, now),
                             state="pending", attempts=0, payload={"invoice_id": invoice.id}, created_at=now))
        created += 1
    return created


def hold(session: Session, invoice: Invoice, now: datetime, *, reason: str) -> None:
    """Stops the invoice's overdue reminders for good (a person follows up instead), also future ones."""
    row = session.scalar(select(Reminder).where(Reminder.purpose == PURPOSE, Reminder.subject == subject(invoice)))
    if row is not None and row.state != "pending":
        return
    if row is None:  # a stopped row keeps `schedule` from ever creating one
        matter = session.get(Matter, invoice.matter_id)
        row = Reminder(purpose=PURPOSE, subject=subject(invoice), client_id=matter.client_id, due_at=now,
                       state="pending", attempts=0, payload={"invoice_id": invoice.id}, created_at=now)
        session.add(row)
    row.state, row.payload = "stopped", {**(row.payload or {}), "stopped": reason}
    session.flush()
    audit.record(session, "system", "reminder_stopped", f"reminder:{row.id}", {"reason": reason})


def run_due(session: Session, *, firm: FirmSettings, now: datetime, interval: timedelta, max_count: int) -> list[int]:
    """Sends the reminders that are due (or moves them past quiet hours); returns the notices' message ids."""
    due = session.scalars(select(Reminder).where(Reminder.purpose == PURPOSE, Reminder.state == "pending",
                                                 Reminder.due_at <= now).order_by(Reminder.due_at).with_for_update()).all()
    sent: list[int] = []
    for reminder in due:
        invoice = session.get(Invoice, (reminder.payload or {}).get("invoice_id"))
        client = session.get(Client, reminder.client_id)
        stop = _stop_reason(session, invoice, client, reminder, max_count)
        if stop:
            reminder.state, reminder.payload = "stopped", {**reminder.payload, "stopped": stop}
            audit.record(session, "system", "reminder_stopped", f"reminder:{reminder.id}", {"reason": stop})
            continue
        later = next_allowed(now, _zone(client.timezone), window(firm))
        if later is not None:
            reminder.due_at = later  # quiet hours: it waits, it is not dropped
            continue
        notice = outreach.notify(session, client.id, _compose(invoice), firm=firm, now=now, reason=PURPOSE, teaser=TEASER)
        if notice is None:
            reminder.state = "stopped"
            continue
        sent.append(notice.id)
        reminder.attempts += 1
        if reminder.attempts >= max_count:
            reminder.state = "done"
        else:
            reminder.due_at = now + interval
    return sent


def _stop_reason(session: Session, invoice: Invoice | None, client: Client | None, reminder: Reminder,
                 max_count: int) -> str | None:
    if invoice is None or client is None:
        return "gone"
    if invoice.status not in ("unpaid", "partial") or balance(invoice) <= 0:
        return invoice.status if invoice.status != "partial" else "paid"
    if reminder.attempts >= max_count:
        return "max_reached"
    if outreach.client_thread(session, client.id) is None:
        return "unreachable"  # every thread opted out (or none exists)
    return None


def _compose(invoice: Invoice):
    def compose(t: Translator) -> str:
        return t.gettext(REMINDER, number=invoice.number, balance=t.money(balance(invoice), invoice.currency),
                         date=t.date(invoice.due))
    return compose
