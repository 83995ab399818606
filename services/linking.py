"""Linking a chat account (Telegram) to a client: a one-time deep-link token, or a shared phone contact.

Linking only says who may be behind the chat; the date-of-birth check still comes before any
matter fact, exactly as on SMS.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services import audit
from services.identity import CONTACT_KIND
from services.models import Client, ContactPoint, Conversation, LinkToken

TOKEN_LIFETIME = timedelta(minutes=15)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, client: Client, channel: str, actor: str, now: datetime) -> str:
    """A new single-use token (192 bits, URL-safe, fits Telegram's 64-character start parameter)."""
    token = secrets.token_urlsafe(24)
    session.add(LinkToken(token_hash=_hash(token), client_id=client.id, channel=channel, created_by=actor,
                          expires_at=now + TOKEN_LIFETIME, created_at=now))
    audit.record(session, actor, "link_token_issued", f"client:{client.id}", {"channel": channel})
    return token


def _link(session: Session, conv: Conversation, client_ids: list[int], now: datetime, how: str) -> None:
    kind = CONTACT_KIND.get(conv.channel, conv.channel)
    for client_id in client_ids:
        exists = session.scalar(select(ContactPoint.id).where(
            ContactPoint.client_id == client_id, ContactPoint.kind == kind, ContactPoint.address == conv.address))
        if exists is None:
            session.add(ContactPoint(client_id=client_id, kind=kind, address=conv.address, consent=True, consent_at=now))
        audit.record(session, f"conversation:{conv.id}", "chat_linked", f"client:{client_id}", {"channel": conv.channel, "how": how})
    session.flush()


def redeem_token(session: Session, conv: Conversation, token: str, now: datetime) -> bool:
    """Links the chat to the token's client when the token is known, unused and not expired (atomically)."""
    used = session.execute(
        update(LinkToken).where(LinkToken.token_hash == _hash(token), LinkToken.used_at.is_(None),
                                LinkToken.expires_at > now, LinkToken.channel == conv.channel)
        .values(used_at=now, used_by=f"conversation:{conv.id}").returning(LinkToken.client_id)
    ).first()
    if used is None:
        audit.record(session, f"conversation:{conv.id}", "link_token_refused", f"conversation:{conv.id}", {})
        return False
    _link(session, conv, [used.client_id], now, "token")
    return True


def link_shared_phone(session: Session, conv: Conversation, phone: str, now: datetime) -> None:
    """Links the chat to every client with this phone (a family phone: the date of birth picks one)."""
    client_ids = list(session.scalars(select(ContactPoint.client_id).where(
        ContactPoint.kind == "phone", ContactPoint.address == phone)))
    if client_ids:
        _link(session, conv, client_ids, now, "shared_contact")
