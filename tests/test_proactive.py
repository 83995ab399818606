"""Proactive messages through the runtime's door (`run_proactive`, which the relay loop and the
rq scheduler's tick call), with the clock under the test's control."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bot.runtime import build_runtime
from services.i18n import Translator
from services.importer import apply
from services.matters import change_stage, matter_title
from services.models import Conversation, Matter, Message, Reminder
from tests.conftest import Chat
from tests.samples import photo

ES, EN = Translator.for_language("es"), Translator.for_language("en")
MARIA, JAMES = "+15555550101", "+15555550103"
# Chicago is UTC-6 in December; New York UTC-5.
DAY_CHICAGO = datetime(2026, 12, 7, 16, 0, tzinfo=timezone.utc)  # 10:00 on 7 December
NIGHT_CHICAGO = datetime(2026, 12, 8, 3, 30, tzinfo=timezone.utc)  # 21:30 on 7 December
MORNING_CHICAGO = datetime(2026, 12, 8, 14, 0, tzinfo=timezone.utc)  # 8:00 on 8 December
SENSITIVE = re.compile(r"[A-Z]{3}\d{10}|\bA\d{8,9}\b|1988|1992-12-01|21/03")


def _verify(runtime, address=MARIA, dob="21/03/1988", first="hola") -> Chat:
    chat = Chat(runtime, address=address)
    if "birth" in (text := chat.say(first).text) or "nacimiento" in text:
        chat.say(dob)
    return chat


def _notices(runtime, address: str, purpose: str) -> list[str]:
    with runtime.Session() as session:
        bodies = list(session.scalars(
            select(Message.body).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.address == address, Message.direction == "out",
                   Message.payload["notice"].as_string() == purpose).order_by(Message.id)))
    assert not any(SENSITIVE.search(b) for b in bodies), bodies
    return bodies


def _stage(runtime, external_id: str, stage: str) -> None:
    with runtime.Session.begin() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == external_id))
        change_stage(session, matter, stage, "test", runtime.engine.clock())


def _reminders(runtime, purpose: str) -> list[Reminder]:
    with runtime.Session() as session:
        rows = list(session.scalars(select(Reminder).where(Reminder.purpose == purpose).order_by(Reminder.id)))
        session.expunge_all()
        return rows


def _stage_text(t: Translator, title: str, label: str, explanation: str, next_step: str) -> str:
    return "\n".join([t.gettext("Update on your case %(title)s: %(stage)s.", title=title, stage=t.gettext(label)),
                      t.gettext(explanation), t.gettext(next_step)])


def test_a_stage_change_sends_one_message_in_the_clients_language(demo, clock):
    clock.now = DAY_CHICAGO
    _verify(demo)
    _stage(demo, "MAT-2001", "attorney_review")
    assert demo.run_proactive() >= 1
    demo.run_proactive()  # a second pass sends nothing more
    sent = _notices(demo, MARIA, "stage_changed")
    assert sent == [_stage_text(ES, matter_title(ES, Matter(type="I-130")), "Attorney review", "Your attorney is reviewing your documents and forms.",
                                "We will contact you if anything else is needed.")]
    assert "Revisión" in sent[0] or "revisión" in sent[0]  # Spanish, not the English msgid

    james = _verify(demo, JAMES, "12/01/1992", first="hello")
    assert james.turns[-1].language == "en"
    _stage(demo, "MAT-2005", "approved")
    demo.run_proactive()
    english = _notices(demo, JAMES, "stage_changed")
    assert len(english) == 1 and english[0].startswith("Update on your case N-400") and "USCIS approved your case." in english[0]


def test_quiet_hours_hold_the_message_and_release_it_in_the_morning(demo, clock):
    clock.now = NIGHT_CHICAGO
    _verify(demo)
    _stage(demo, "MAT-2001", "attorney_review")
    demo.run_proactive()
    assert _notices(demo, MARIA, "stage_changed") == []
    held = _reminders(demo, "stage_changed")
    assert [(r.state, r.due_at) for r in held] == [("pending", MORNING_CHICAGO)]  # waiting, not dropped

    clock.now = MORNING_CHICAGO + timedelta(minutes=1)
    demo.run_proactive()
    sent = _notices(demo, MARIA, "stage_changed")
    # The verified session ran out overnight: the client gets the firm's teaser, in Spanish, and the details after verifying.
    assert len(sent) == 1 and sent[0] == ES.gettext("%(firm)s has an update about your case. Reply to this message to see it.",
                                                    firm=sent[0].split(" tiene")[0])
    assert _reminders(demo, "stage_changed")[0].state == "done"


def test_a_reminder_survives_a_restart(demo, clock, settings):
    clock.now = NIGHT_CHICAGO
    _verify(demo)
    _stage(demo, "MAT-2001", "attorney_review")
    demo.run_proactive()
    demo.queue.join()
    demo.close()  # the process stops with the message still to send

    restarted = build_runtime(settings, in_process=True)
    restarted.engine.clock = clock
    try:
        clock.now = MORNING_CHICAGO + timedelta(minutes=5)
        assert restarted.run_proactive() >= 1
        restarted.queue.join()
        assert len(_notices(restarted, MARIA, "stage_changed")) == 1
    finally:
        restarted.close()


def test_deadline_reminders_seven_days_and_one_day_before(demo, clock):
    # MAT-2001 has "Documents due to the firm" on 18 December 2026.
    clock.now = datetime(2026, 12, 11, 15, 0, tzinfo=timezone.utc)  # 9:00 in Chicago, 7 days before
    _verify(demo)
    demo.run_proactive()
    assert _notices(demo, MARIA, "deadline_approaching") == []  # planned for 10:00 local
    clock.now = datetime(2026, 12, 11, 16, 5, tzinfo=timezone.utc)
    _verify(demo)
    demo.run_proactive()
    week = _notices(demo, MARIA, "deadline_approaching")
    assert week == [ES.gettext("Reminder: %(name)s on %(date)s, in %(days)s days.",
                               name=ES.gettext("Documents due to the firm"), date="18 de diciembre de 2026", days=7)]
    clock.now = datetime(2026, 12, 17, 16, 5, tzinfo=timezone.utc)
    _verify(demo)
    demo.run_proactive()
    both = _notices(demo, MARIA, "deadline_approaching")
    assert both[1:] == [ES.gettext("Reminder: %(name)s is tomorrow, %(date)s.",
                                   name=ES.gettext("Documents due to the firm"), date="18 de diciembre de 2026")]


NEW_CLIENT = {"clients": [{"external_id": "CL-88", "first_name": "Rosa", "last_name": "Díaz", "date_of_birth": "1985-02-03",
                           "phone": "+15555550188", "preferred_language": "es"}],
              "matters": [{"external_id": "MAT-88", "client": "CL-88", "type": "I-130", "stage": "collecting_evidence"}]}
ROSA = "+15555550188"


def _rosa(runtime) -> Chat:
    with runtime.Session.begin() as session:
        apply(session, NEW_CLIENT)
    return _verify(runtime, ROSA, "03/02/1985")


def test_nudges_come_after_idle_days_and_an_upload_stops_the_next_one(demo, clock):
    clock.now = DAY_CHICAGO
    rosa = _rosa(demo)
    demo.run_proactive()
    assert _notices(demo, ROSA, "documents_missing") == []
    clock.advance(days=3, minutes=1)
    demo.run_proactive()
    first = _notices(demo, ROSA, "documents_missing")
    assert len(first) == 1
    assert ES.gettext("You can send them here as photos or PDF files.") in first[0] or "nos tiene una actualización" not in first[0]

    clock.advance(days=1)  # day 4: the client answers the teaser, verifies and sends a document
    rosa = _verify(demo, ROSA, "03/02/1985")
    rosa.say(files=[(photo(seed=3), "image/jpeg")])  # "which document is it?"
    assert "Recibido" in rosa.say("1").text
    clock.advance(days=3)  # day 7: the second nudge was due, but the client is no longer idle
    demo.run_proactive()
    assert len(_notices(demo, ROSA, "documents_missing")) == 1
    row = next(r for r in _reminders(demo, "documents_missing") if r.state == "pending")
    assert row.due_at > clock.now  # the idle clock restarted at the upload

    clock.advance(days=5)  # 7 idle days after the upload: the second nudge
    demo.run_proactive()
    assert len(_notices(demo, ROSA, "documents_missing")) == 2


def test_staff_and_opt_out_stop_the_nudges(demo, clock):
    clock.now = DAY_CHICAGO
    rosa = _rosa(demo)
    _verify(demo)  # María: MAT-2001 also waits for documents
    demo.run_proactive()
    with demo.Session.begin() as session:  # staff stop them for both matters reached on María's phone
        for matter in session.scalars(select(Matter).where(Matter.external_id.in_(("MAT-2001", "MAT-2002")))):
            matter.nudges_paused = True
    rosa.say("STOP")
    clock.advance(days=3, minutes=1)
    demo.run_proactive()
    assert _notices(demo, ROSA, "documents_missing") == [] and _notices(demo, MARIA, "documents_missing") == []
    ended = {r.subject: r.payload.get("ended") for r in _reminders(demo, "documents_missing")}
    with demo.Session() as session:
        ids = {m.external_id: m.id for m in session.scalars(select(Matter))}
    assert ended[f"matter:{ids['MAT-88']}"] == "unreachable" and ended[f"matter:{ids['MAT-2001']}"] == "staff"


def test_nudges_are_capped(demo, clock):
    clock.now = DAY_CHICAGO
    _rosa(demo)
    for _ in range(20):
        demo.run_proactive()
        clock.advance(days=1)
    assert len(_notices(demo, ROSA, "documents_missing")) == 3
    assert _reminders(demo, "documents_missing")[-1].state == "done"
