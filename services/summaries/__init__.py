"""Handoff summaries for staff: drafted by AI when allowed, else from the record.

Only this package imports openai. `summarise_handoff` is the service the summary job calls:

- AI is used only when the firm enabled it (FirmSettings.ai_summaries_enabled), the client gave
  informed consent (Client.ai_consent_at, ABA Formal Opinion 512) and OPENAI_API_KEY is set.
  Otherwise no request is made at all: the record summary is stored, status "off".
- AI success: status "ready"; AI failure of any kind: the record summary, status "fallback".
- What goes out is HandoffFacts only (redacted, no identifiers; see base.facts_for).

`handoff.ai_summary` always holds the chosen summary with `source` ("ai" | "record"), a `label`
staff see with it, `model` and `generated_at`. Nothing here commits and nothing logs message text.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from services import audit
from services.firm import get_firm
from services.i18n import Translator
from services.models import Client, Handoff
from services.summaries.base import (
    FactMessage,
    HandoffFacts,
    Summariser,
    Summary,
    SummaryUnavailable,
    conversation_and_matter,
    facts_for,
    involved_clients,
    missing_item_names,
)
from services.summaries.openai_summariser import OpenAISummariser, api_base_url
from services.summaries.record import RecordSummariser

__all__ = [
    "AI_LABEL", "RECORD_LABEL", "FactMessage", "HandoffFacts", "OpenAISummariser", "RecordSummariser", "Summariser",
    "Summary", "SummaryUnavailable", "ai_allowed", "api_base_url", "build_summariser", "facts_for", "summarise_handoff",
]

log = logging.getLogger(__name__)

AI_LABEL = "AI-generated draft — review before use"
RECORD_LABEL = "Drafted from the record (no AI) — review before use"


def _clients(session: Session, handoff: Handoff) -> list[Client]:
    """Everyone whose words the thread may hold: the conversation's and the matter's client, and
    whoever shares the contact point (a family phone's thread carries all of them)."""
    return involved_clients(session, *conversation_and_matter(session, handoff))


def ai_allowed(session: Session, handoff: Handoff, settings) -> bool:
    """True only when the firm enabled AI summaries, a key is configured and every client whose
    information the handoff holds consented (a handoff with no known client never goes to AI)."""
    if not get_firm(session).ai_summaries_enabled or not settings.openai_api_key:
        return False
    clients = _clients(session, handoff)
    return bool(clients) and all(c is not None and c.ai_consent_at is not None for c in clients)


def build_summariser(settings) -> OpenAISummariser:
    """The AI summariser the settings describe (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL)."""
    return OpenAISummariser(settings.openai_api_key, settings.openai_base_url, settings.openai_model)


def _missing_by_language(session: Session, handoff: Handoff) -> dict[str, list[str]]:
    _, matter = conversation_and_matter(session, handoff)
    if matter is None:
        return {}
    return {language: missing_item_names(session, matter, Translator.for_language(language)) for language in ("en", "es")}


def _stored(summary: Summary, label: str, now: datetime) -> dict:
    return {**summary.to_dict(), "label": label, "generated_at": now.isoformat()}


def summarise_handoff(session: Session, handoff: Handoff, settings, now: datetime, *,
                      summariser: Summariser | None = None) -> Summary:
    """Summarises the handoff into `handoff.ai_summary` and `ai_summary_status`, audited; returns the Summary.

    `summariser` replaces the one built from settings (e.g. a shorter timeout); it is used only when
    AI is allowed at all.
    """
    facts = facts_for(session, handoff, now)
    record = RecordSummariser()
    if not ai_allowed(session, handoff, settings):
        summary, status = record.summarise(facts), "off"
    else:
        try:
            summary, status = (summariser or build_summariser(settings)).summarise(facts), "ready"
        except SummaryUnavailable as exc:
            log.warning("AI summary unavailable for handoff %s (%s); using the record", handoff.id, exc)
            summary, status = record.summarise(facts), "fallback"
    stored = _stored(summary, AI_LABEL if summary.source == "ai" else RECORD_LABEL, now)
    if summary.facts is not None:  # a record summary: its item names in both languages, for staff of either
        stored["facts"] = {**summary.facts, "missing_items_by_language": _missing_by_language(session, handoff)}
    handoff.ai_summary = stored
    handoff.ai_summary_status = status
    audit.record(session, "system", "handoff_summarised", f"handoff:{handoff.id}", {"source": summary.source})
    log.info("handoff %s summarised (source=%s, status=%s)", handoff.id, summary.source, status)
    return summary
