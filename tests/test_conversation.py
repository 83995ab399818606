"""Conversations through the engine's front door, as a client would have them (demo data)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.i18n import Translator
from services.models import AuditEvent, Conversation, Handoff, Message
from tests.conftest import Chat

ES, EN = Translator.for_language("es"), Translator.for_language("en")
MARIA, EMILY, JOSE, ROSA = "+15555550101", "+15555550103", "+15555550102", "+15555550104"


def verified(demo, address, dob, first="hola", channel="sms") -> Chat:
    chat = Chat(demo, address=address, channel=channel)
    chat.say(first)
    turn = chat.say(dob)
    assert "verif" in turn.text.lower()
    return chat


# -- verification -----------------------------------------------------------------------------

def test_spanish_client_verifies_and_gets_the_question_answered(demo):
    chat = Chat(demo, address=MARIA)
    ask = chat.say("hola, cuánto debo?")
    assert ask.language == "es" and ask.intent == "balance" and ask.dialog == "verify"
    assert "fecha de nacimiento" in ask.text and "$" not in ask.text
    answer = chat.say("21 de marzo de 1988")
    assert "María" in answer.text
    assert "$1,020.00" in answer.text and "$675.00" in answer.text  # operating and trust balances


@pytest.mark.parametrize("dob", ["21/03/1988", "3/21/1988", "21 de marzo de 1988", "March 21 1988", "1988-03-21",
                                 "marzo 21, 1988", "21-3-88"])
def test_dates_written_the_ways_people_write_them(demo, dob):
    chat = Chat(demo, address=MARIA)
    chat.say("hola")
    assert "María" in chat.say(dob).text


def test_ambiguous_date_is_asked_again_with_the_month_name(demo):
    # 02/11/2006 reads as 2 Nov or Feb 11: Daniel's birthday is 2006-11-02, so one reading matches.
    chat = Chat(demo, address=MARIA)
    chat.say("hola")
    assert "Daniel" in chat.say("02/11/2006").text
    other = Chat(demo, address=EMILY)
    other.say("hi")
    turn = other.say("05/06/1990")  # neither reading matches Emily
    assert turn.text == EN.gettext("I'm not sure which date you mean. Please write it with the name of the month, "
                                   "for example: 21 de marzo de 1988 or March 21, 1988.")


def test_shared_family_phone_the_birth_date_selects_the_person(demo):
    mother = Chat(demo, address=MARIA)
    mother.say("hola")
    assert "María" in mother.say("21/03/1988").text
    status = mother.say("cómo va mi caso?")
    assert "I-130" in status.text and "I-765" not in status.text

    son = Chat(demo, address=MARIA, channel="whatsapp")
    son.say("hola")
    turn = son.say("2 de noviembre de 2006")
    assert "Daniel" in turn.text and "María" not in turn.text
    assert "I-765" in son.say("estado de mi caso").text


def test_client_with_two_matters_is_asked_which_one(demo):
    chat = Chat(demo, address=JOSE)
    chat.say("buenas, como va mi caso")
    turn = chat.say("04/07/1975")
    assert turn.choices[-1] and any("I-485" in c for c in turn.choices[-1]) and any("I-765" in c for c in turn.choices[-1])
    answer = chat.say("1")
    assert "IOE0912345678" in answer.text  # the I-485 receipt number, after choosing it


def test_five_failures_lock_the_number_for_thirty_minutes(demo, clock):
    chat = Chat(demo, address=MARIA)
    chat.say("hola")
    for _ in range(4):
        assert "no coincide" in chat.say("01/01/1970").text or chat.turns[-1].text == ES.gettext(
            "That date does not match our records. Please try again.")
    locked = chat.say("01/01/1970")
    assert "30" in locked.text
    assert "María" not in chat.say("21/03/1988").text  # the right date does not help while locked
    with demo.Session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "verification_locked")) == 1
    clock.advance(minutes=31)
    assert "María" in chat.say("21/03/1988").text


def test_verification_expires_after_thirty_idle_minutes(demo, clock):
    chat = verified(demo, MARIA, "21/03/1988")
    clock.advance(minutes=29)
    assert "$1,020.00" in chat.say("cuánto debo").text
    clock.advance(minutes=31)
    again = chat.say("cuánto debo")
    assert "$" not in again.text and "fecha de nacimiento" in again.text


def test_verification_expires_after_twelve_hours_even_when_active(demo, clock):
    chat = verified(demo, MARIA, "21/03/1988")
    for _ in range(26):
        clock.advance(minutes=28)
        chat.say("hola")
    assert "fecha de nacimiento" in chat.turns[-1].text


def test_unknown_and_known_unverified_numbers_get_identical_replies(demo):
    script = ["hola", "cuánto debo?", "01/01/1970", "05/06/1990", "quiero hablar con alguien"]
    known, unknown = Chat(demo, address=MARIA), Chat(demo, address="+15555550999")
    for line in script:
        assert known.say(line).replies == unknown.say(line).replies


@pytest.mark.parametrize("question", ["cuánto debo?", "cómo va mi caso", "qué documentos me faltan", "cuándo es mi cita",
                                      "what's my balance", "case status", "what documents are missing", "how do I pay"])
def test_nothing_about_a_matter_before_verification(demo, question):
    chat = Chat(demo, address=JOSE)
    turn = chat.say(question)
    for secret in ("IOE0912345678", "$", "José", "I-485", "I-765", "Hernández", "biometr"):
        assert secret not in turn.text
    assert turn.dialog == "verify"


# -- answers from the record, both languages ----------------------------------------------------

@pytest.mark.parametrize("lang,address,dob,phrase,intent,expect", [
    ("es", MARIA, "21/03/1988", "cuanto le debo?", "balance", ["$1,020.00", "$675.00", "INV-1001", "INV-1002"]),
    ("es", MARIA, "21/03/1988", "ya hay noticias de mi caso?", "status", ["I-130"]),
    ("es", MARIA, "21/03/1988", "q documentos me faltan", "checklist", ["Acta de nacimiento del beneficiario"]),
    ("es", MARIA, "21/03/1988", "quiero pagar", "payment", ["$1,020.00", "transferencia"]),
    ("es", EMILY, "12/01/1992", "cuando es mi entrevista?", "appointments", ["15 de febrero de 2027"]),
    ("en", EMILY, "December 1, 1992", "what's the status of my case?", "status", ["N-400", "Interview scheduled"]),
    ("en", EMILY, "12/01/1992", "how much do I owe?", "balance", []),
    ("en", EMILY, "12/01/1992", "when is my interview", "appointments", ["February 15, 2027"]),
    ("en", EMILY, "12/01/1992", "what documents do you still need from me?", "checklist", ["Green card"]),
    ("en", EMILY, "12/01/1992", "how can I pay", "payment", []),
])
def test_answers_from_the_record(demo, lang, address, dob, phrase, intent, expect):
    chat = verified(demo, address, dob, first="hola" if lang == "es" else "hi")
    turn = chat.say(phrase)
    assert (turn.intent, turn.language) == (intent, lang)
    for fact in expect:
        assert fact in turn.text


def test_balance_keeps_trust_and_operating_apart_and_marks_disputes(demo):
    chat = verified(demo, ROSA, "30/01/1980")
    turn = chat.say("cuánto debo")
    assert ES.gettext("Client trust funds (USCIS fees and costs)") in turn.text or ES.gettext("Legal fees") in turn.text
    assert "INV-1005" in turn.text
    disputed_line = next(line for line in turn.text.splitlines() if "INV-1005" in line)
    assert ES.gettext("under review (disputed); a person from our team will contact you about it") in disputed_line
    pay = chat.say("quiero pagar la factura")
    assert "INV-1005" in pay.text and pay.choices[-1] == [ES.gettext("Talk to a person")]


def test_english_client_gets_english(demo):
    chat = Chat(demo, address=EMILY)
    turn = chat.say("hi, what's my balance?")
    assert turn.language == "en" and "date of birth" in turn.text
    assert "Emily" in chat.say("12/01/1992").text


def test_explicit_language_switch(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    turn = chat.say("English please")
    assert turn.intent == "language" and turn.language == "en"
    assert turn.replies[0] == "Done, I will write to you in English."
    assert "Total to pay" in chat.say("2").text  # menu number 2: the balance, now in English
    back = chat.say("español")
    assert back.language == "es" and back.replies[0] == ES.gettext("Done, I will write to you in English.")
    assert back.replies[0] != turn.replies[0]


def test_switching_language_while_verifying_keeps_the_question(demo):
    chat = Chat(demo, address=MARIA)
    chat.say("cuánto debo?")
    assert "date of birth" in chat.say("English").text
    answer = chat.say("21/03/1988")
    assert "$1,020.00" in answer.text and "Total to pay" in answer.text


def test_a_bare_date_is_answered_in_the_clients_own_language(demo):
    chat = Chat(demo, address=EMILY)
    chat.say("12/01/1992")  # no words at all: nothing to detect
    turn = chat.say("2")
    assert turn.intent == "balance" and turn.language == "en"


def test_menu_numbers_and_unknown_twice_offers_a_person(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    assert chat.say("2").intent == "balance"
    first = chat.say("asdfgh")
    assert first.intent == "unknown" and len(first.choices[-1]) == 6
    second = chat.say("qwerty zzz")
    assert second.choices[-1] == [ES.gettext("Talk to a person"), ES.gettext("See the menu")]
    chat.say("1")
    with demo.Session() as s:
        assert s.scalar(select(Handoff.reason)) == "not_understood"


# -- consent, help, handoff ----------------------------------------------------------------------

@pytest.mark.parametrize("word", ["STOP", "stop", "Stop.", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                                  "OPTOUT", "BAJA", "no me manden más mensajes", "ya no me manden mensajes",
                                  "please stop texting me"])
def test_opt_out_gets_exactly_one_confirmation_then_silence(demo, word):
    chat = Chat(demo, address=MARIA)
    turn = chat.say(word)
    assert turn.intent == "opt_out" and len(turn.replies) == 1 and "START" in turn.text
    assert chat.say("hola").replies == []
    assert chat.say("cuánto debo").replies == []
    assert chat.say("STOP").replies == []
    back = chat.say("START")
    assert back.intent == "opt_in" and len(back.replies) == 1 and "STOP" in back.text
    assert chat.say("hola").replies  # talking again


def test_help_gives_the_firm_name_and_contact(demo):
    turn = Chat(demo, address="+15555550999").say("HELP")
    assert "Puente Demo Law Office" in turn.text and "555-0100" in turn.text and "STOP" in turn.text


def test_handoff_then_silence_until_staff_hand_back(demo, clock):
    from services import handoffs

    chat = verified(demo, MARIA, "21/03/1988")
    turn = chat.say("quiero hablar con una persona")
    assert turn.intent == "handoff" and len(turn.replies) == 1
    assert chat.say("hola?").replies == []
    assert chat.say("cuánto debo").replies == []
    with demo.Session.begin() as s:
        handoff = s.scalar(select(Handoff))
        assert handoff.reason == "asked_for_person" and handoff.summary["matter"]
        conv = s.get(Conversation, handoff.conversation_id)
        handoffs.resolve(s, conv, "staff:1", clock())
    assert "$1,020.00" in chat.say("cuánto debo").text


def test_replayed_provider_id_is_a_no_op(demo):
    from bot.messages import Inbound

    first = demo.accept(Inbound("sms", MARIA, "SM-replayed", text="hola"))
    demo.queue.join()
    again = demo.accept(Inbound("sms", MARIA, "SM-replayed", text="hola"))
    demo.queue.join()
    assert first is not None and again is None
    with demo.Session() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 1
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "out")) == 1


def test_replies_are_sent_through_the_outbox(demo):
    chat = Chat(demo, address=MARIA)
    chat.say("hola")
    demo.queue.join()
    with demo.Session() as s:
        states = s.scalars(select(Message.state).where(Message.direction == "out")).all()
    assert states == ["sent"]


def test_any_intent_interrupts_an_unfinished_dialog(demo):
    chat = Chat(demo, address=JOSE)
    chat.say("hola")
    which = chat.say("04/07/1975")
    assert which.dialog == "verify" and len(which.choices[-1]) == 2  # asked which of the two matters
    turn = chat.say("mejor quiero hablar con una persona")
    assert turn.intent == "handoff" and turn.dialog == "handoff"


def test_unverified_sender_cannot_pick_someone_elses_matter_or_client(demo):
    chat = Chat(demo, address="+15555550999")
    chat.say("hola")
    for forged in ("matter:1", "client:1", "status", "balance"):
        turn = chat.say(choice=forged)
        assert "$" not in turn.text and "María" not in turn.text and "I-130" not in turn.text


def test_failed_dates_count_for_the_number_across_sms_and_whatsapp(demo):
    sms, whatsapp = Chat(demo, address=MARIA, channel="sms"), Chat(demo, address=MARIA, channel="whatsapp")
    sms.say("hola")
    whatsapp.say("hola")
    for chat in (sms, whatsapp, sms, whatsapp):
        chat.say("01/01/1970")
    locked = whatsapp.say("02/02/1971")  # the fifth wrong date, whatever the channel
    assert "30" in locked.text
    assert "María" not in sms.say("21/03/1988").text


def test_typed_dates_of_birth_are_not_kept_in_the_transcript(demo):
    chat = Chat(demo, address=MARIA)
    chat.say("hola")
    chat.say("01/01/1970")
    chat.say("21 de marzo de 1988")
    with demo.Session() as s:
        bodies = s.scalars(select(Message.body).where(Message.direction == "in")).all()
    assert bodies == ["hola", "[date of birth]", "[date of birth]"]


def test_appointment_names_are_translated(demo):
    chat = verified(demo, JOSE, "04/07/1975")
    chat.say("1")
    turn = chat.say("cuándo es mi cita?")
    assert "Cita de biometría" in turn.text and "12 de enero de 2027" in turn.text
    assert "Biometrics appointment" not in turn.text


def test_client_with_two_matters_can_switch_case_and_answers_say_which(demo):
    chat = verified(demo, JOSE, "04/07/1975")
    chat.say("1")  # the I-485
    owe = chat.say("cuánto debo")
    assert owe.text.startswith("Caso: I-485")
    switch = chat.say(choice="switch_matter")
    assert any("I-765" in c for c in switch.choices[-1])
    chat.say("2")
    assert chat.say("cómo va mi caso").text.count("I-765") >= 1


def test_start_during_handoff_stays_silent_and_stop_still_works(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    chat.say("quiero hablar con una persona")
    assert chat.say("START").replies == []
    stop = chat.say("STOP")
    assert stop.intent == "opt_out" and len(stop.replies) == 1
    with demo.Session() as s:
        assert s.scalar(select(Handoff)).summary.get("opted_out_at")


def test_stop_on_sms_also_stops_whatsapp_and_start_resumes_both(demo):
    sms, whatsapp = Chat(demo, address=MARIA, channel="sms"), Chat(demo, address=MARIA, channel="whatsapp")
    sms.say("hola")
    sms.say("BAJA")
    assert whatsapp.say("hola").replies == []  # even a first WhatsApp message
    assert len(whatsapp.say("START").replies) == 1
    assert sms.say("hola").replies
