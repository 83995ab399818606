"""The deterministic summariser: a staff summary from the record alone, no AI.

Used when AI summaries are off (firm setting, client consent, no key) and whenever the AI one is
unavailable. Staff-facing fields are English; the draft reply is in the client's language and is
for staff to edit (it is never sent automatically), so its few fixed sentences live here rather
than in the gettext catalogs.
"""
from __future__ import annotations

from services.summaries.base import HandoffFacts, Summary

WHY = {
    "asked_for_person": "The client asked to talk to a person.",
    "not_understood": "The assistant could not understand the client's messages.",
    "dispute": "The client disputes an invoice or a charge.",
    "verification_lockout": "The sender was locked out after failed identity checks.",
    "upload_trouble": "The client had trouble sending documents.",
    "processing_error": "The assistant hit an error while handling the client's message.",
    "whatsapp_window": "A WhatsApp reply could not be sent (the 24-hour window closed).",
}

NEXT_STEP = {
    "asked_for_person": "Read the last messages and reply to the client in this thread.",
    "not_understood": "Read the last messages, answer the question in the thread and note what the assistant missed.",
    "dispute": "Review the disputed invoice with the billing staff before replying; do not send a payment link until it is settled.",
    "verification_lockout": "Confirm the sender's identity by a known channel (call the number on file) before disclosing anything.",
    "upload_trouble": "Check the documents received on the matter and tell the client what is still needed or how to send it.",
    "processing_error": "Check the message log for the failed message, then reply to the client in this thread.",
    "whatsapp_window": "Reply with an approved WhatsApp template or by SMS; free-form WhatsApp messages will fail.",
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

UNKNOWN_REASON = "The conversation was handed to staff ({reason})."
NO_MESSAGE = "(no message text)"


def _outstanding(facts: HandoffFacts) -> list[str]:
    items: list[str] = []
    if facts.missing_items:
        items.append("Missing documents: " + ", ".join(facts.missing_items))
    for balance in facts.balances:
        items.append(f"Balance owed ({balance['account']}): {balance['amount']} {balance['currency']}")
    if facts.disputed_invoices:
        items.append("Disputed invoice(s): " + ", ".join(facts.disputed_invoices))
    for deadline in facts.deadlines:
        items.append(f"Upcoming: {deadline['name']} on {deadline['date']}")
    return items


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
        matter = f" about their {facts.matter_type} matter (stage: {facts.stage.replace('_', ' ')})" \
            if facts.matter_type and facts.stage else ""
        why = WHY.get(facts.reason, UNKNOWN_REASON.format(reason=facts.reason))
        if matter:
            why = why.rstrip(".") + matter + "."
        return Summary(
            why_reached_out=why,
            what_they_asked=facts.last_client_message or NO_MESSAGE,
            outstanding=_outstanding(facts),
            suggested_next_step=NEXT_STEP.get(facts.reason, NEXT_STEP["asked_for_person"]),
            draft_reply=draft_reply(language, facts.reason),
            language=language,
            source="record",
            model=None,
        )
