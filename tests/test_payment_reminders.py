"""Overdue-invoice reminders through the runtime's door (the relay loop and `puente reminders run`
call the same method), with the clock under the test's control."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from services.i18n import Translator
from services.models import Conversation, Message, Reminder
from tests.conftest import Chat

ES = Translator.for_language("es")
MARIA = "+15555550101"
# INV-1002 (María, trust, $675.00) was due on 2026-12-11; María lives in America/Chicago (UTC-6 in December).
EVENING_CHICAGO = datetime(2026, 12, 13, 3, 0, tzinfo=timezone.utc)  # 21:00 on 12 December
MORNING_CHICAGO = datetime(2026, 12, 13, 14, 0, tzinfo=timezone.utc)  # 8:00 on 13 December


def _verify(runtime) -> Chat:
    chat = Chat(runtime, address=MARIA)
    if "nacimiento" in chat.say("hola").text:
        chat.say("21/03/1988")
    return chat


def _reminders_to_maria(runtime) -> list[str]:
    with runtime.Session() as session:
        return list(session.scalars(
            select(Message.body).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.address == MARIA, Message.direction == "out", Message.payload["notice"].as_string() == "invoice_overdue")
            .order_by(Message.id)))


def _reminder(runtime, subject_invoice: str) -> Reminder:
    from services.models import Invoice

    with runtime.Session() as session:
        inv = session.scalar(select(Invoice).where(Invoice.number == subject_invoice))
        row = session.scalar(select(Reminder).where(Reminder.subject == f"invoice:{inv.id}"))
        session.expunge_all()
        return row


def test_quiet_hours_hold_the_reminder_until_eight_in_the_morning(demo, clock):
    clock.now = EVENING_CHICAGO
    _verify(demo)
    demo.payments.run_reminders()
    assert _reminders_to_maria(demo) == []
    held = _reminder(demo, "INV-1002")
    assert held.state == "pending" and held.due_at == MORNING_CHICAGO  # waiting, not dropped

    clock.now = MORNING_CHICAGO + timedelta(minutes=1)
    _verify(demo)
    demo.payments.run_reminders()
    sent = [text for text in _reminders_to_maria(demo) if "INV-1002" in text]
    assert sent == [ES.gettext(
        "Reminder: invoice %(number)s has a balance of %(balance)s that was due on %(date)s. Write \"pay\" to get a "
        "secure payment link, or \"person\" to talk with our team.",
        number="INV-1002", balance="$675.00", date="11 de diciembre de 2026")]
    again = _reminder(demo, "INV-1002")
    assert again.attempts == 1 and again.due_at == clock.now + timedelta(days=7)
    demo.payments.run_reminders()  # nothing more until the next interval
    assert len([t for t in _reminders_to_maria(demo) if "INV-1002" in t]) == 1


def test_payment_stops_the_reminders(demo, clock):
    from web import create_app

    clock.now = MORNING_CHICAGO + timedelta(hours=2)
    chat = _verify(demo)
    demo.payments.run_reminders()
    assert any("INV-1002" in t for t in _reminders_to_maria(demo))
    text = chat.say("quiero pagar").text
    web = create_app(demo.settings, demo).test_client()
    from services.models import Invoice, PaymentLink

    with demo.Session() as session:
        inv_id = session.scalar(select(Invoice.id).where(Invoice.number == "INV-1002"))
        token = next(t for t in re.findall(r"/pay/([A-Za-z0-9_-]{20,})", text)
                     if session.scalar(select(PaymentLink.invoice_id).where(PaymentLink.token == t)) == inv_id)
    page = web.get(f"/pay/{token}").data.decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page).group(1)
    assert web.post(f"/pay/{token}", data={"csrf": csrf, "nonce": nonce}).status_code == 303

    clock.advance(days=7, minutes=1)
    demo.payments.run_reminders()
    assert len([t for t in _reminders_to_maria(demo) if "INV-1002" in t]) == 1
    stopped = _reminder(demo, "INV-1002")
    assert stopped.state == "stopped" and stopped.payload["stopped"] == "paid"
    assert _reminder(demo, "INV-1001").state == "pending"  # the other invoice is still owed


def test_opt_out_stops_the_reminders(demo, clock):
    clock.now = MORNING_CHICAGO + timedelta(hours=1)
    chat = _verify(demo)
    chat.say("STOP")
    demo.payments.run_reminders()
    assert _reminders_to_maria(demo) == []
    stopped = _reminder(demo, "INV-1002")
    assert stopped.state == "stopped" and stopped.payload["stopped"] == "unreachable"


def test_reminders_stop_after_the_maximum(demo, clock):
    clock.now = MORNING_CHICAGO + timedelta(hours=3)
    _verify(demo)
    for _ in range(5):
        demo.payments.run_reminders()
        clock.advance(days=7)
        clock.now = clock.now.replace(hour=16)  # 10:00 in Chicago
    done, other = _reminder(demo, "INV-1002"), _reminder(demo, "INV-1001")
    assert (done.state, done.attempts) == ("done", demo.settings.payment_reminder_max) and done.attempts == 3
    # later ones reach a thread no longer verified: a teaser without the invoice's details
    assert len(_reminders_to_maria(demo)) == done.attempts + other.attempts
