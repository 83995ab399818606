"""Who is writing: contact points behind a (channel, address), and how addresses are normalised."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Client, ContactPoint
from services.phones import normalize_phone

# Which kind of contact point a channel's address is. SMS and WhatsApp share the phone number.
CONTACT_KIND = {"sms": "phone", "whatsapp": "phone", "telegram": "telegram"}


_E164 = re.compile(r"\+[1-9]\d{7,14}")


def normalize_address(channel: str, address: str) -> str:
    """E.164 for phone channels (so SMS and WhatsApp meet on one number); other addresses as given."""
    address = address.strip()
    if CONTACT_KIND.get(channel) == "phone":
        if _E164.fullmatch(address):
            return address  # providers already send E.164 (the webhook's hot path skips the parser)
        return normalize_phone(address) or address
    return address


def contact_points(session: Session, channel: str, address: str) -> list[ContactPoint]:
    kind = CONTACT_KIND.get(channel, channel)
    return list(session.scalars(select(ContactPoint).where(ContactPoint.kind == kind, ContactPoint.address == address)))


def candidate_clients(session: Session, channel: str, address: str) -> list[Client]:
    """Every client reachable at this address (several for a shared family phone)."""
    return [cp.client for cp in contact_points(session, channel, address)]
