"""Handoff summaries: redaction, consent gating, the AI path against a fake OpenAI server, and fallbacks.

Handoffs are made through the front door (a client texting the engine); the only fake is the
OpenAI server at the HTTP boundary.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from services.firm import get_firm
from services.models import AuditEvent, Client, Conversation, Handoff
from services.redact import redact
from services.summaries import (
    AI_LABEL,
    RECORD_LABEL,
    OpenAISummariser,
    RecordSummariser,
    api_base_url,
    facts_for,
    summarise_handoff,
)
from services.summaries.record import DRAFT
from services.text import strip_accents
from tests.conftest import Chat
from tests.fakes.openai_api import FakeOpenAI

MARIA, EMILY = "+15555550101", "+15555550103"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)  # before MAT-2001's "Documents due to the firm" (2026-12-18)


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


def ai_settings(demo, fake: FakeOpenAI, base_url: str | None = None):
    return demo.settings.with_(openai_api_key=fake.api_key, openai_base_url=base_url or fake.url,
                               openai_model="gpt-4o-mini")


def maria_hands_off(demo) -> Chat:
    """María verifies, writes her identifiers in free text, then asks for a person."""
    chat = Chat(demo, address=MARIA)
    chat.verify("21/03/1988")
    chat.say("Mi número A es A123456789 y el recibo que me llegó es IOE0912345678")
    chat.say("Mi teléfono es (555) 555-0101, nací el 21 de marzo de 1988 y mi correo es maria.lopez@example.com")
    chat.say("quiero hablar con una persona")
    return chat


def emily_hands_off(demo) -> Chat:
    chat = Chat(demo, address=EMILY)
    chat.verify("December 1, 1992", first="hi")
    chat.say("I want to talk to a person please")
    return chat


def allow_ai(demo, *, firm: bool = True, consent: bool = True) -> None:
    with demo.Session.begin() as s:
        get_firm(s).ai_summaries_enabled = firm
        for client in s.scalars(select(Client)):
            client.ai_consent_at = NOW if consent else None


def summarise(demo, settings, **kwargs) -> tuple[dict, str, object]:
    """Runs summarise_handoff on the (one) open handoff in its own transaction; returns what was stored."""
    with demo.Session.begin() as s:
        handoff = s.scalar(select(Handoff).order_by(Handoff.id.desc()))
        summary = summarise_handoff(s, handoff, settings, NOW, **kwargs)
    with demo.Session() as s:
        handoff = s.scalar(select(Handoff).order_by(Handoff.id.desc()))
        return handoff.ai_summary, handoff.ai_summary_status, summary


def record_summary(demo):
    with demo.Session() as s:
        return RecordSummariser().summarise(facts_for(s, s.scalar(select(Handoff).order_by(Handoff.id.desc())), NOW))


def sent_text(fake: FakeOpenAI) -> str:
    """Everything the fake received: raw bodies, the same decoded (so escaped accents count) and headers."""
    return "\n".join(r["raw"] + json.dumps(r["body"], ensure_ascii=False) + json.dumps(r["headers"])
                     for r in fake.requests)


# -- (a) nothing that identifies the client leaves ------------------------------------------------

def test_no_identifier_reaches_the_ai(demo, fake_openai, caplog):
    maria_hands_off(demo)
    allow_ai(demo)
    with caplog.at_level(logging.DEBUG):
        stored, status, _ = summarise(demo, ai_settings(demo, fake_openai))

    assert status == "ready" and len(fake_openai.requests) == 1
    text = sent_text(fake_openai)
    plain = strip_accents(text).lower()
    squeezed = re.sub(r"[\s().\-/]", "", text)
    for secret in ("A123456789", "123456789", "IOE0912345678", "0912345678", "5555550101", "5550101",
                   "21/03/1988", "1988-03-21", "maria.lopez", "example.com", "@"):
        assert secret not in text and secret not in squeezed, secret
    for word in ("maria", "lopez", "daniel", "21 de marzo", "1988"):
        assert word not in plain, word
    # The messages did go out, as placeholders, with the matter facts staff need.
    user = json.loads(fake_openai.bodies[0]["messages"][-1]["content"])
    joined = " ".join(m["text"] for m in user["messages"])
    for placeholder in ("[A-NUMBER]", "[RECEIPT]", "[PHONE]", "[DATE]", "[EMAIL]"):
        assert placeholder in joined, placeholder
    assert "quiero hablar con una persona" in joined
    assert {m["role"] for m in user["messages"]} == {"client", "assistant"}
    assert user["language"] == "es" and user["reason"] == "asked_for_person" and user["matter_type"] == "I-130"
    assert {"account": "operating", "currency": "USD", "amount": "1020.00"} in user["balances"]
    assert {"name": "Documents due to the firm", "date": "2026-12-18"} in user["deadlines"]
    assert user["missing_items"] and all(re.fullmatch(r"[\x20-\x7e]+", item) for item in user["missing_items"])  # English
    assert "receipt_number" not in user and "MAT-2001" not in text and "CL-1001" not in text
    # Message text never reaches the logs.
    assert "A123456789" not in caplog.text and "quiero hablar" not in caplog.text and "[A-NUMBER]" not in caplog.text


def test_the_request_has_openais_shape(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo)
    summarise(demo, ai_settings(demo, fake_openai, base_url=fake_openai.api_url))  # a /v1 URL works too
    request = fake_openai.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {fake_openai.api_key}"
    body = request["body"]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.2
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "usted" in body["messages"][0]["content"] and "legal advice" in body["messages"][0]["content"]
    schema = body["response_format"]["json_schema"]
    assert body["response_format"]["type"] == "json_schema" and schema["strict"] is True
    assert set(schema["schema"]["required"]) == {"why_reached_out", "what_they_asked", "outstanding",
                                                 "suggested_next_step", "draft_reply", "language"}


# -- (b) consent and the firm's switch --------------------------------------------------------------

def test_without_client_consent_no_request_is_made(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo, firm=True, consent=False)
    stored, status, summary = summarise(demo, ai_settings(demo, fake_openai))
    assert fake_openai.requests == []
    assert status == "off" and summary.source == "record" and summary == record_summary(demo)
    assert stored["source"] == "record" and stored["label"] == RECORD_LABEL and stored["model"] is None


def test_firm_disabled_means_no_request(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo, firm=False, consent=True)
    _, status, summary = summarise(demo, ai_settings(demo, fake_openai))
    assert fake_openai.requests == [] and status == "off" and summary.source == "record"


def test_no_api_key_means_no_request(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo)
    _, status, _ = summarise(demo, ai_settings(demo, fake_openai).with_(openai_api_key=None))
    assert fake_openai.requests == [] and status == "off"


def test_record_summary_is_useful_to_staff(demo):
    maria_hands_off(demo)
    summary = record_summary(demo)
    assert "person" in summary.why_reached_out and "I-130" in summary.why_reached_out
    assert summary.what_they_asked == "quiero hablar con una persona"
    assert any(line.startswith("Missing documents:") for line in summary.outstanding)
    assert any("$1,020.00" in line for line in summary.outstanding)
    assert any("Documents due to the firm on December 18, 2026" in line for line in summary.outstanding)
    assert summary.draft_reply.startswith(DRAFT["es"]["greeting"]) and summary.language == "es"


def test_a_record_summary_reads_in_the_staff_members_language(demo):
    from services.i18n import Translator
    from services.summaries.record import for_reader

    maria_hands_off(demo)
    stored = record_summary(demo).to_dict()
    spanish = for_reader(stored, Translator.for_language("es"))
    assert "persona" in spanish["why_reached_out"] and "I-130" in spanish["why_reached_out"]
    assert any(line.startswith("Documentos que faltan:") for line in spanish["outstanding"])
    assert any("Saldo" in line and "$1,020.00" in line for line in spanish["outstanding"])
    assert spanish["suggested_next_step"].startswith("Lea los últimos mensajes")
    assert any(line.startswith("Próximo:") and "18 de diciembre de 2026" in line for line in spanish["outstanding"])
    assert spanish["what_they_asked"] == "quiero hablar con una persona"  # the client's own words, as written
    assert for_reader(stored, Translator.for_language("en"))["outstanding"] == stored["outstanding"]


# -- (c) when the AI is unavailable, the record stands in -------------------------------------------

def test_timeout_falls_back_to_the_record(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo)
    fake_openai.respond_slowly(3)
    settings = ai_settings(demo, fake_openai)
    quick = OpenAISummariser(settings.openai_api_key, settings.openai_base_url, settings.openai_model, timeout=1)
    stored, status, summary = summarise(demo, settings, summariser=quick)
    assert len(fake_openai.requests) == 1  # asked once, no retries
    assert status == "fallback" and summary == record_summary(demo)
    assert stored["source"] == "record" and stored["label"] == RECORD_LABEL


@pytest.mark.parametrize("failure", ["500", "invalid_json", "wrong_fields", "wrong_language"])
def test_server_errors_and_bad_answers_fall_back(demo, fake_openai, failure):
    maria_hands_off(demo)
    allow_ai(demo)
    if failure == "500":
        fake_openai.fail_with(500)
    elif failure == "invalid_json":
        fake_openai.respond_invalid_json()
    elif failure == "wrong_fields":
        fake_openai.respond_with({"summary": "The client wants a person."})
    else:
        fake_openai.respond_with({"why_reached_out": "x", "what_they_asked": "y", "outstanding": [],
                                  "suggested_next_step": "z", "draft_reply": "Hello!", "language": "en"})
    stored, status, summary = summarise(demo, ai_settings(demo, fake_openai))
    assert len(fake_openai.requests) == 1
    assert status == "fallback" and stored["source"] == "record" and summary == record_summary(demo)


# -- (d) the draft is in the client's language; (e) and labelled as AI ------------------------------

def test_spanish_conversation_gets_a_spanish_draft_labelled_ai(demo, fake_openai):
    maria_hands_off(demo)
    allow_ai(demo)
    stored, status, _ = summarise(demo, ai_settings(demo, fake_openai))
    assert status == "ready" and stored["language"] == "es"
    draft = stored["draft_reply"].lower()
    assert "gracias" in draft and "su " in draft and "thank" not in draft
    assert stored["source"] == "ai" and stored["label"] == AI_LABEL == "AI-generated draft — review before use"
    assert stored["model"] == "gpt-4o-mini" and stored["generated_at"] == NOW.isoformat()
    with demo.Session() as s:
        # (the runtime's job already drafted one from the record when the handoff started; this is the newest)
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "handoff_summarised").order_by(AuditEvent.id.desc()))
        handoff = s.scalar(select(Handoff))
        assert event.actor == "system" and event.subject == f"handoff:{handoff.id}" and event.details == {"source": "ai"}
        assert handoff.summary["matter"] == "MAT-2001"  # the plain summary is untouched


def test_english_client_gets_an_english_draft(demo, fake_openai):
    emily_hands_off(demo)
    with demo.Session() as s:
        assert s.scalar(select(Conversation.language).where(Conversation.address == EMILY)) == "en"
    allow_ai(demo)
    stored, status, _ = summarise(demo, ai_settings(demo, fake_openai))
    assert status == "ready" and stored["language"] == "en"
    assert "thank you" in stored["draft_reply"].lower() and "gracias" not in stored["draft_reply"].lower()
    assert "emily" not in sent_text(fake_openai).lower() and "carter" not in sent_text(fake_openai).lower()


def test_english_client_without_consent_gets_an_english_record_draft(demo, fake_openai):
    emily_hands_off(demo)
    allow_ai(demo, consent=False)
    stored, status, _ = summarise(demo, ai_settings(demo, fake_openai))
    assert status == "off" and stored["language"] == "en" and stored["draft_reply"].startswith(DRAFT["en"]["greeting"])


# -- OPENAI_BASE_URL ------------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    (None, "https://api.openai.com/v1"),
    ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
    ("https://llm.firm.example/openai/", "https://llm.firm.example/openai/v1"),
])
def test_base_url_accepts_a_server_root_or_a_v1_url(given, expected):
    assert api_base_url(given) == expected


# -- (f) redaction --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, placeholder, secret", [
    ("mi esposo nació el 02-ago-1985", "[DATE]", "1985"),
    ("born 21/mar/1988", "[DATE]", "1988"),
    ("fecha 21mar1988", "[DATE]", "1988"),
    ("1988-mar-21 es mi cumpleaños", "[DATE]", "1988"),
    ("nací el 21 03 1988", "[DATE]", "1988"),
    ("nací marzo 21 88", "[DATE]", "88"),
    ("su pasaporte no. 12345 6789", "[PASSPORT]", "6789"),
    ("Mi número A es A123456789", "[A-NUMBER]", "123456789"),
    ("my A-number is A-123-456-789", "[A-NUMBER]", "456"),
    ("A 12345678 es mi número", "[A-NUMBER]", "12345678"),
    ("A#123456789", "[A-NUMBER]", "123456789"),
    ("número de extranjero: 123 456 789", "[A-NUMBER]", "456"),
    ("Alien number 12345678", "[A-NUMBER]", "12345678"),
    ("el recibo es IOE0912345678", "[RECEIPT]", "0912345678"),
    ("receipt EAC 22 123 45678 arrived", "[RECEIPT]", "45678"),
    ("recibo ioe-091-234-5678", "[RECEIPT]", "5678"),
    ("mi pasaporte mexicano es G12345678", "[PASSPORT]", "G12345678"),
    ("passport no. 123456789", "[PASSPORT]", "123456789"),
    ("my passport number is AB1234567", "[PASSPORT]", "AB1234567"),
    ("G12345678 es mi número de pasaporte", "[PASSPORT]", "G12345678"),
    ("llámeme al (555) 555-0101", "[PHONE]", "0101"),
    ("call me at 555.555.0101", "[PHONE]", "0101"),
    ("my number: 5555550101", "[PHONE]", "5550101"),
    ("+1 555 555 0101", "[PHONE]", "0101"),
    ("whatsapp:+15555550101", "[PHONE]", "5550101"),
    ("mi cel en México es +52 1 55 1234 5678", "[PHONE]", "5678"),
    ("mi cel es 55 1234 5678", "[PHONE]", "5678"),
    ("(33) 1234-5678", "[PHONE]", "1234"),
    ("044 55 1234 5678", "[PHONE]", "5678"),
    ("llame al 555-0101", "[PHONE]", "0101"),
    ("nací el 21/03/1988", "[DATE]", "1988"),
    ("born 1988-03-21", "[DATE]", "1988"),
    ("fecha 21-3-88", "[DATE]", "88"),
    ("nací el 14 de mayo de 1990", "[DATE]", "1990"),
    ("nací el 14 de mayo del 1990", "[DATE]", "mayo"),
    ("el 1° de mayo", "[DATE]", "mayo"),
    ("mayo 14, 1990", "[DATE]", "1990"),
    ("I was born May 14, 1990", "[DATE]", "1990"),
    ("born on the 14th of May, 1990", "[DATE]", "1990"),
    ("the appointment is Jan. 5, 2027", "[DATE]", "2027"),
    ("desde marzo de 1988", "[DATE]", "1988"),
    ("write to maria.lopez@example.com", "[EMAIL]", "maria.lopez"),
    ("correo: m_lopez+casa@correo.example.mx", "[EMAIL]", "lopez"),
    ("SSN 123-45-6789", "[SSN]", "6789"),
    ("mi seguro social es 123456789", "[SSN]", "123456789"),
    ("mi número es 123-456-789", "[NUMBER]", "456"),
    ("tarjeta 4111 1111 1111 1111", "[NUMBER]", "1111"),
])
def test_redact_replaces_identifiers(text, placeholder, secret):
    out = redact(text)
    assert placeholder in out and secret not in out, out
    assert redact(out) == out  # placeholders hold no digits: a second pass changes nothing


def test_redact_a_whole_spanish_message():
    text = ("Hola, mi A# es A-123-456-789, el recibo IOE 0912345678, mi pasaporte G12345678 vence el 3/4/2030. "
            "Teléfono +1 (555) 555-0101, correo maria.lopez@example.com, nací el 21 de marzo de 1988. "
            "Ya pagué $600.00 de la factura INV-1001 del I-130 y faltan 3 documentos.")
    out = redact(text)
    assert not re.search(r"\d{4,}", out.replace("INV-1001", "").replace("I-130", "").replace("$600.00", ""))
    for kept in ("$600.00", "INV-1001", "I-130", "3 documentos"):
        assert kept in out
    for placeholder in ("[A-NUMBER]", "[RECEIPT]", "[PASSPORT]", "[DATE]", "[PHONE]", "[EMAIL]"):
        assert placeholder in out


@pytest.mark.parametrize("text", [
    "$1,020.00", "Debo $1,020.00 y $675.00", "I owe 1020.00 USD", "3 documentos", "faltan 3 de 11 documentos",
    "I-130", "I-485 and I-765", "Form N-400", "INV-1001", "las facturas INV-1001 y INV-1002", "MAT-2001",
    "G-1450 or G-1650", "le faltan las páginas 2 y 3", "tengo 2 hijos", "llamé a 5 personas",
    "mi caso del I-130 está en la etapa 3", "the passport expires in 2030", "pasaporte vigente", "en 2026",
    "a las 10:30 am", "Section 245(i)", "category (c)(9)", "50%", "pagué 200 dólares", "ya mandé 4 fotos y 2 cartas",
    "quiero hablar con una persona", "I want to talk to a person", "tax years 2025 2026", "el ciclo 2025-2026",
])
def test_redact_leaves_amounts_counts_and_form_names(text):
    assert redact(text) == text


def test_a_handoff_without_a_known_client_never_goes_to_the_ai(demo, fake_openai):
    chat = Chat(demo, address="+15555550999")
    chat.say("quiero hablar con una persona, mi teléfono es 555 555 0999")
    allow_ai(demo)  # every client consented; this sender is none of them
    with demo.Session() as s:
        assert s.scalar(select(Handoff)) is not None, "an unverified sender can still ask for a person"
    stored, status, summary = summarise(demo, ai_settings(demo, fake_openai))
    assert fake_openai.requests == [] and status == "off" and summary.source == "record"
    assert "0999" not in summary.what_they_asked and "[PHONE]" in summary.what_they_asked
