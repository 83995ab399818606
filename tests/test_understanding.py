"""Tests for bot.language and bot.intents (language detection + intent classification)."""

import json
from collections import Counter
from pathlib import Path

import pytest

from bot.intents import INTENTS, classify_intent
from bot.language import SUPPORTED, detect_language, explicit_switch

DATASET = Path(__file__).parent / "data" / "messages.jsonl"


def _load():
    with DATASET.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ROWS = _load()


def _words(text):
    return sum(1 for w in text.split() if any(c.isalpha() for c in w))


# ---------------------------------------------------------------------------
# Dataset sanity
# ---------------------------------------------------------------------------


def test_dataset_shape():
    assert len(ROWS) >= 300
    for row in ROWS:
        assert row["language"] in SUPPORTED
        assert row["intent"] in INTENTS
        assert row["text"].strip()
    counts = Counter(r["intent"] for r in ROWS)
    for intent in INTENTS:
        assert counts[intent] >= 20, (intent, counts[intent])
    assert counts["unknown"] >= 25
    es_share = sum(r["language"] == "es" for r in ROWS) / len(ROWS)
    assert 0.5 <= es_share <= 0.7


def test_dataset_has_no_duplicates():
    texts = [r["text"] for r in ROWS]
    assert len(texts) == len(set(texts))


# ---------------------------------------------------------------------------
# Accuracy on the dataset
# ---------------------------------------------------------------------------


def test_intent_accuracy_on_dataset():
    ok = sum(classify_intent(r["text"], detect_language(r["text"])) == r["intent"] for r in ROWS)
    assert ok / len(ROWS) >= 0.95


def test_language_accuracy_on_three_plus_words():
    rows = [r for r in ROWS if _words(r["text"]) >= 3]
    ok = sum(detect_language(r["text"]) == r["language"] for r in rows)
    assert ok / len(rows) >= 0.98


def test_language_accuracy_overall():
    ok = sum(detect_language(r["text"]) == r["language"] for r in ROWS)
    assert ok / len(ROWS) >= 0.95


# ---------------------------------------------------------------------------
# Fresh held-out set (written before looking at the classifier or the dataset)
# ---------------------------------------------------------------------------

FRESH = Path(__file__).parent / "data" / "holdout_fresh.jsonl"


def _load_fresh():
    with FRESH.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_fresh_holdout_shape():
    rows = _load_fresh()
    assert len(rows) >= 200
    assert len({r["text"] for r in rows}) == len(rows)
    for row in rows:
        assert row["split"] == "fresh"
        assert row["language"] in SUPPORTED
        assert row["intent"] in INTENTS
    # switch_matter was added after this file was written (no fresh examples).
    assert {r["intent"] for r in rows} == set(INTENTS) - {"switch_matter"}


def test_intent_accuracy_on_fresh_holdout():
    rows = _load_fresh()
    ok = sum(classify_intent(r["text"], detect_language(r["text"])) == r["intent"] for r in rows)
    assert ok / len(rows) >= 0.90


def test_language_accuracy_on_fresh_holdout_three_plus_words():
    rows = [r for r in _load_fresh() if _words(r["text"]) >= 3]
    ok = sum(detect_language(r["text"]) == r["language"] for r in rows)
    assert ok / len(rows) >= 0.98


# ---------------------------------------------------------------------------
# Realistic phrasings per intent, both languages
# ---------------------------------------------------------------------------

PHRASINGS = [
    # status
    ("¿Hay alguna novedad con mi caso?", "status"),
    ("como va mi tramite", "status"),
    ("ya aprobaron mi permiso?", "status"),
    ("any update on my application?", "status"),
    ("Has my petition been approved yet?", "status"),
    # balance
    ("cuánto debo?", "balance"),
    ("hola, cuánto debo?", "balance"),
    ("cual es mi saldo pendiente", "balance"),
    ("how much do I owe you?", "balance"),
    ("what's my current balance", "balance"),
    # payment
    ("quiero pagar", "payment"),
    ("mándeme el link de pago por favor", "payment"),
    ("ya pagué ayer por zelle", "payment"),
    ("how can I pay?", "payment"),
    ("I already paid, did you get it?", "payment"),
    # checklist
    ("¿Qué documentos me faltan?", "checklist"),
    ("aquí está mi pasaporte", "checklist"),
    ("ya mandé el acta de nacimiento", "checklist"),
    ("what documents do you still need?", "checklist"),
    ("I uploaded my passport photos", "checklist"),
    # appointments
    ("¿Cuándo es mi cita?", "appointments"),
    ("fecha de biometricos", "appointments"),
    ("necesito cambiar mi cita", "appointments"),
    ("when is my interview?", "appointments"),
    ("cancel my appointment", "appointments"),
    # handoff
    ("quiero hablar con mi abogado", "handoff"),
    ("una persona por favor", "handoff"),
    ("llámenme por favor", "handoff"),
    ("I want to talk to a real person", "handoff"),
    ("representative", "handoff"),
    # opt_out
    ("no me manden más mensajes", "opt_out"),
    ("dejen de escribirme", "opt_out"),
    ("please stop texting me", "opt_out"),
    ("don't text me anymore", "opt_out"),
    ("remove me from your list", "opt_out"),
    # opt_in
    ("quiero volver a recibir mensajes", "opt_in"),
    ("ALTA", "opt_in"),
    ("START", "opt_in"),
    ("UNSTOP", "opt_in"),
    # help
    ("AYUDA", "help"),
    ("menú", "help"),
    ("¿qué puedo hacer aquí?", "help"),
    ("what can you do?", "help"),
    ("options", "help"),
    # greeting
    ("Hola buenas", "greeting"),
    ("buenos días", "greeting"),
    ("Good morning!", "greeting"),
    ("hi", "greeting"),
    # switch_matter
    ("quiero preguntar por el otro caso", "switch_matter"),
    ("mi otro caso", "switch_matter"),
    ("cambiar de caso", "switch_matter"),
    ("what about my other case?", "switch_matter"),
    ("switch case", "switch_matter"),
    # thanks
    ("muchas gracias", "thanks"),
    ("ok 👍", "thanks"),
    ("thank you so much!", "thanks"),
    ("sounds good", "thanks"),
    # unknown
    ("asdf", "unknown"),
    ("what's the weather tomorrow?", "unknown"),
    ("¿quién ganó el partido?", "unknown"),
]


@pytest.mark.parametrize("text,intent", PHRASINGS)
def test_phrasings(text, intent):
    assert classify_intent(text) == intent
    assert classify_intent(text, detect_language(text)) == intent


def test_every_intent_has_phrasings():
    assert {i for _, i in PHRASINGS} == set(INTENTS)


# ---------------------------------------------------------------------------
# Carrier keywords
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "STOP", "stop", "Stop.", "STOP please", "stop!!", "STOPALL", "UNSUBSCRIBE",
    "CANCEL", "cancel", "END", "QUIT", "REVOKE", "OPTOUT", "Opt-out",
    "BAJA", "baja", "PARAR", "Parar.", "STOP por favor",
])
def test_stop_family_is_opt_out(text):
    assert classify_intent(text) == "opt_out"


@pytest.mark.parametrize("text", [
    "cancel my appointment", "cancelar mi cita", "can I cancel my interview?",
    "when does my work permit end?", "ya no quiero la cita del martes",
])
def test_not_opt_out(text):
    assert classify_intent(text) != "opt_out"


def test_stop_inside_question_is_not_opt_out():
    assert classify_intent("can I stop my case?") != "opt_out"


@pytest.mark.parametrize("text", [
    "stop the messages", "stop the messages please", "stop sms", "stop msgs",
    "I want to stop receiving messages", "quit texting me", "STOP ME", "stop it",
    "Stop it!", "stop all these texts", "turn off the reminders", "no me contacten",
    "no me contacten mas", "No me contacten más por favor", "cancelar", "Cancelar.",
    "ya basta de mensajes", "detener mensajes", "DETENER", "para ya de mandarme mensajes",
    "cancelar los mensajes", "quiero dejar de recibir mensajes", "no, stop the messages",
    "why do u text me stop texting me",
])
def test_plain_language_opt_out(text):
    assert classify_intent(text) == "opt_out"


@pytest.mark.parametrize("text", [
    "cancel my appointment", "cancelar mi cita", "can I stop my case?", "stop by the office",
    "can I stop by the office tomorrow?", "para cuando es mi cita", "para",
    "I stopped getting text reminders, why?", "no me contactaron todavia",
    "cancelar la cita del martes", "can you stop the interview reminders for my case",
    "please don't stop the messages", "why did you stop the reminders?",
])
def test_plain_language_not_opt_out(text):
    assert classify_intent(text) != "opt_out"


# ---------------------------------------------------------------------------
# Acknowledgements and matter switching
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "gracias", "muchas gracias", "ok gracias", "thanks", "thank you so much!", "ok",
    "okay", "ok 👍", "👍", "🙏", "perfecto", "entendido", "de acuerdo", "listo gracias",
    "gracias dios le bendiga", "great thanks", "got it", "sounds good", "vale",
    "bueno gracias", "Gracias!!", "grasias", "thx", "ty", "k", "está bien",
    "muchas gracias licenciada, Dios la bendiga", "thank you for your help",
    "gracias por su ayuda", "ok gracias, buenas noches", "gracias Maria", "haha ok",
])
def test_thanks(text):
    assert classify_intent(text) == "thanks"


@pytest.mark.parametrize("text,intent", [
    ("gracias, cuánto debo?", "balance"),
    ("ok gracias, cuando es mi cita", "appointments"),
    ("thanks! can I pay with zelle?", "payment"),
    ("thank you, any update on my case?", "status"),
    ("ok, y qué documentos faltan?", "checklist"),
    ("gracias, puedo hablar con la licenciada?", "handoff"),
    ("ok stop", "opt_out"),
    ("no me manden mas textos gracias", "opt_out"),
    ("thanks, help", "help"),
    ("hola", "greeting"),
    ("listo?", "unknown"),
    ("ya esta listo?", "status"),
    ("sí", "unknown"),
    ("que dios los bendiga", "unknown"),
    ("lol", "unknown"),
    ("😡", "unknown"),
    ("thanks, what's your address?", "unknown"),
    ("ok no", "unknown"),
    ("thanks for nothing", "unknown"),
    ("ok lo mando mañana", "unknown"),
])
def test_thanks_does_not_swallow_requests(text, intent):
    assert classify_intent(text) == intent


@pytest.mark.parametrize("text", [
    "otro caso", "el otro caso", "mi otro caso", "cambiar de caso",
    "quiero preguntar por el otro caso", "other case", "my other case", "switch case",
    "the other application", "cómo va el otro caso?", "any news on my other case?",
    "cuánto debo del otro caso?", "quiero cambiar al otro caso", "I have another case with you",
    "can we switch to my other case", "hola, es sobre mi otro expediente",
])
def test_switch_matter(text):
    assert classify_intent(text) == "switch_matter"


@pytest.mark.parametrize("text,intent", [
    ("y el de mi permiso de trabajo?", "status"),
    ("como va mi caso", "status"),
    ("quiero hablar con el abogado de mi otro caso", "handoff"),
    ("stop texting me about the other case", "switch_matter"),
    ("STOP", "opt_out"),
])
def test_switch_matter_precedence(text, intent):
    assert classify_intent(text) == intent


@pytest.mark.parametrize("text", ["YES", "yes", "si", "sí"])
def test_yes_is_not_opt_in(text):
    assert classify_intent(text) != "opt_in"


@pytest.mark.parametrize("text", ["HELP", "help", "Help!", "AYUDA", "ayuda"])
def test_help_keyword(text):
    assert classify_intent(text) == "help"


# ---------------------------------------------------------------------------
# Language
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("English", "en"), ("english", "en"), ("in english please", "en"),
    ("inglés", "en"), ("ingles", "en"), ("ENGLISH PLEASE", "en"),
    ("español", "es"), ("espanol", "es"), ("spanish", "es"),
    ("en español por favor", "es"), ("hablo español", "es"), ("Spanish please", "es"),
])
def test_explicit_switch(text, expected):
    assert explicit_switch(text) == expected


@pytest.mark.parametrize("text", [
    "hola", "cuanto debo", "my son speaks english but I need help with my case",
    "I don't speak spanish very well, how much do I owe?", "", "1",
])
def test_not_explicit_switch(text):
    assert explicit_switch(text) is None


@pytest.mark.parametrize("text", [
    "cuanto debo", "ola", "si", "q onda", "nesesito ayuda", "ya pague?", "mi caso",
    "gracias", "hola",
])
@pytest.mark.parametrize("prior", [None, "es"])
def test_short_spanish(text, prior):
    assert detect_language(text, prior) == "es"


@pytest.mark.parametrize("text", ["how much do I owe", "thanks", "hi", "any news?", "when is my interview"])
def test_short_english(text):
    assert detect_language(text) == "en"
    assert detect_language(text, "es") == "en"


def test_spanglish_dominant_language():
    assert detect_language("quiero pagar my invoice") == "es"
    assert detect_language("can you send me la factura") == "en"


@pytest.mark.parametrize("text", ["1", "2", "12/05", "👍", "ok", "...", "  "])
@pytest.mark.parametrize("prior", ["en", "es"])
def test_neutral_returns_prior(text, prior):
    assert detect_language(text, prior) == prior


def test_neutral_without_prior_defaults_to_spanish():
    assert detect_language("1") == "es"
    assert detect_language("👍") == "es"


def test_carrier_keyword_keeps_known_language():
    assert detect_language("STOP", "es") == "es"
    assert detect_language("STOP") == "en"


def test_return_values_are_supported():
    for row in ROWS[:50]:
        assert detect_language(row["text"]) in SUPPORTED
        assert detect_language(row["text"], "en") in SUPPORTED
        assert classify_intent(row["text"]) in INTENTS


# ---------------------------------------------------------------------------
# General rules (typos, precedence, polite context)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,intent", [
    ("documetos que faltan", "checklist"),                    # typo
    ("cuanto me queda por pagar del asilo", "balance"),       # amount question beats "pagar"
    ("cuanto tiempo tarda el pago", "status"),                # ... but not a time question
    ("hasta cuando tengo para mandar los papeles", "appointments"),  # deadline beats documents
    ("is there a deadline to respond to the notice", "appointments"),
    ("ya no me escriban", "opt_out"),
    ("i dont want to text, can the lawyer call me", "handoff"),
    ("ya pueden volver a mandarme los avisos", "opt_in"),
    ("feliz dia de las madres", "unknown"),
    ("mi primo necesita trabajo, saben de alguien", "unknown"),
    ("necesito platicar con alguien de la oficina", "handoff"),
    ("ya llego mi tarjeta verde?", "status"),
    ("buenas noches licenciado disculpe la hora, le escribo porque mi esposo y yo "
     "queremos saber cuanto nos falta pagar del caso para ir juntando", "balance"),
])
def test_general_rules(text, intent):
    assert classify_intent(text) == intent
