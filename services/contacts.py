"""Consent: opting a phone or chat out of messages, and back in."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from services import audit
from services.identity import CONTACT_KIND
from services.models import ContactPoint, Conversation


def set_opted_out(session: Session, conv: Conversation, when: datetime | None) -> None:
    """Opts the address out (when given a time) or back in (None), on every contact point that uses it."""
    conv.opted_out_at = when
    kind = CONTACT_KIND.get(conv.channel, conv.channel)
    session.execute(update(ContactPoint).where(ContactPoint.kind == kind, ContactPoint.address == conv.address)
                    .values(opted_out_at=when))
    action = "contact_opted_out" if when else "contact_opted_in"
    audit.record(session, f"conversation:{conv.id}", action, f"conversation:{conv.id}", {"channel": conv.channel})
