"""The deterministic summariser: a staff summary from the record alone, no AI.

Used when AI summaries are off (firm setting, client consent, no key) and whenever the AI one is
unavailable. Its staff-facing sentences are catalog msgids: the stored summary keeps English text
plus the facts it was made from, and `for_reader` words it again in the reader's language (a
Spanish-speaking paralegal reads it in Spanish). The draft reply is in the client's language and is
for staff to edit (it is never sent automatically), so its few fixed sentences live here rather
than in the gettext catalogs.
"""
from __future__ import annotations

from services.i18n import N_, Translator
from services.matters import deadline_name
from services.summaries.base import HandoffFacts, Summary

WHY = {
    "asked_for_person": N_("The client asked to talk to a person."),
    "not_understood": N_("The assistant could not understand the client's messages."),
    "dispute": N_("The client disputes an invoice or a charge."),
    "verification_lockout": N_("The sender was locked out after failed identity checks."),
    "upload_trouble": N_("The client had trouble sending documents."),
    "processing_error": N_("The assistant hit an error while handling the client's message."),
    "whatsapp_window": N_("A WhatsApp reply could not be sent (the 24-hour window closed)."),
}

NEXT_STEP = {
    "asked_for_person": N_("Read the last messages and reply to the client in this thread."),
    "not_understood": N_("Read the last messages, answer the question in the thread and note what the assistant missed."),
    "dispute": N_("Review the disputed invoice with the billing staff before replying; do not send a payment link until it is settled."),
    "verification_lockout": N_("Confirm the sender's identity by a known channel (call the number on file) before disclosing anything."),
    "upload_trouble": N_("Check the documents received on the matter and tell the client what is still needed or how to send it."),
    "processing_error": N_("Check the message log for the failed message, then reply to the client in this thread."),
    "whatsapp_window": N_("Reply with an approved WhatsApp template or by SMS; free-form WhatsApp messages will fail."),
}

# The draft reply's fixed sentences, per language ("usted" in Spanish).
DRAFT = {
    "es": {
        "greeting": "Hola, gracias por escribirnos.",
        "reviewing": "Una persona de nuestro equipo está revisando su mensaje y le responderá por este medio lo antes posible.",
        "dispute": "Estamos revisando la factura que usted nos señaló.",
        "documents": "Si tiene dificultades para enviar sus documentos, no se preocupe: le indicaremos cómo hacerlo.",
        "identity": "Por su seguridad, antes de compartir información de su caso confirmaremos su identidad.",
        "closing": "Atentamente, el equipo de la oficina.",
    },
    "en": {
        "greeting": "Hello, thank you for your message.",
        "reviewing": "A member of our team is reviewing your message and will reply here as soon as possible.",
        "dispute": "We are reviewing the invoice you pointed out.",
        "documents": "If you are having trouble sending your documents, don't worry: we will tell you how to send them.",
        "identity": "For your security, we will confirm your identity before sharing any information about your case.",
        "closing": "Kind regards, the office team.",
    },
}
_DRAFT_EXTRA = {"dispute": "dispute", "upload_trouble": "documents", "verification_lockout": "identity"}

UNKNOWN_REASON = N_("The conversation was handed to staff (%(reason)s).")
ABOUT_MATTER = N_("%(why)s About their %(matter_type)s matter (stage: %(stage)s).")
NO_MESSAGE = N_("(no message text)")
MISSING = N_("Missing documents: %(items)s")
BALANCE = N_("Balance owed (%(account)s): %(amount)s")
DISPUTED = N_("Disputed invoice(s): %(invoices)s")
UPCOMING = N_("Upcoming: %(deadline)s on %(date)s")
ACCOUNTS = {"trust": N_("trust"), "operating": N_("operating")}
_ENGLISH = Translator.for_language("en")


def _facts(facts: HandoffFacts) -> dict:
    """What the wording is made from, kept with the stored summary (staff-only, like the text)."""
    return {"reason": facts.reason, "matter_type": facts.matter_type, "stage": facts.stage,
            "missing_items": list(facts.missing_items), "balances": [dict(b) for b in facts.balances],
            "disputed_invoices": list(facts.disputed_invoices), "deadlines": [dict(d) for d in facts.deadlines]}


def _why(t: Translator, facts: dict) -> str:
    reason = facts.get("reason") or ""
    why = t.gettext(WHY[reason]) if reason in WHY else t.gettext(UNKNOWN_REASON, reason=reason)
    if facts.get("matter_type") and facts.get("stage"):
        from services.stages import STAGE_TEXT

        stage = facts["stage"]
        label = t.gettext(STAGE_TEXT[stage].label) if stage in STAGE_TEXT else stage.replace("_", " ")
        why = t.gettext(ABOUT_MATTER, why=why, matter_type=facts["matter_type"], stage=label)
    return why


def _outstanding(t: Translator, facts: dict) -> list[str]:
    from decimal import Decimal, InvalidOperation

    items: list[str] = []
    missing = (facts.get("missing_items_by_language") or {}).get(t.language) or facts.get("missing_items")
    if missing:
        items.append(t.gettext(MISSING, items=", ".join(missing)))
    for balance in facts.get("balances") or ():
        try:
            amount = t.money(Decimal(balance["amount"]), balance.get("currency") or "USD")
        except (InvalidOperation, KeyError, ValueError):
            amount = f"{balance.get('amount')} {balance.get('currency')}"
        account = ACCOUNTS.get(balance.get("account"))
        items.append(t.gettext(BALANCE, account=t.gettext(account) if account else balance.get("account"), amount=amount))
    if facts.get("disputed_invoices"):
        items.append(t.gettext(DISPUTED, invoices=", ".join(facts["disputed_invoices"])))
    for deadline in facts.get("deadlines") or ():
        items.append(t.gettext(UPCOMING, deadline=deadline_name(t, deadline.get("name") or ""),
                               date=_date(t, deadline.get("date"))))
    return items


def _date(t: Translator, value) -> str:
    """An ISO date in the reader's words ("December 18, 2026" / "18 de diciembre de 2026")."""
    from datetime import date

    try:
        return t.date(date.fromisoformat(value))
    except (TypeError, ValueError):
        return str(value)


def for_reader(stored: dict, t: Translator) -> dict:
    """A stored record summary worded in the reader's language (an AI one, or one stored before
    the facts were kept, is returned as it is)."""
    facts = stored.get("facts")
    if stored.get("source") != "record" or not isinstance(facts, dict):
        return stored
    reason = facts.get("reason") or ""
    asked = stored.get("what_they_asked")
    return {**stored, "why_reached_out": _why(t, facts), "outstanding": _outstanding(t, facts),
            "suggested_next_step": t.gettext(NEXT_STEP.get(reason, NEXT_STEP["asked_for_person"])),
            "what_they_asked": t.gettext(NO_MESSAGE) if asked in (None, "", _ENGLISH.gettext(NO_MESSAGE)) else asked}


def draft_reply(language: str, reason: str) -> str:
    """A short, polite holding reply in the client's language (staff edit it before sending)."""
    words = DRAFT.get(language, DRAFT["es"])
    parts = [words["greeting"], words["reviewing"]]
    if reason in _DRAFT_EXTRA:
        parts.append(words[_DRAFT_EXTRA[reason]])
    parts.append(words["closing"])
    return " ".join(parts)


class RecordSummariser:
    """Deterministic Summariser: fills every field from HandoffFacts by rule."""

    def summarise(self, facts: HandoffFacts) -> Summary:
        language = facts.language if facts.language in DRAFT else "es"
        kept = _facts(facts)
        return Summary(
            why_reached_out=_why(_ENGLISH, kept),
            what_they_asked=facts.last_client_message or NO_MESSAGE,
            outstanding=_outstanding(_ENGLISH, kept),
            suggested_next_step=NEXT_STEP.get(facts.reason, NEXT_STEP["asked_for_person"]),
            draft_reply=draft_reply(language, facts.reason),
            language=language,
            source="record",
            model=None,
            facts=kept,
        )
