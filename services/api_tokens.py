"""API tokens for /api/v1: issued by an admin, shown once, kept only as a SHA-256, scoped read or write."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.models import ApiToken

SCOPES = ("read", "write")  # write includes read
PREFIX = "pnt_"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is not rewritten on every request


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, name: str, scope: str, *, created_by: str, now: datetime) -> tuple[ApiToken, str]:
    """Creates a token; returns the row and the token itself (never stored, shown once)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name[:100], token_hash=digest(token), scope=scope, created_by=created_by[:100], created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, created_by, "api_token_issued", f"api_token:{row.id}", {"scope": scope})
    return row, token


def revoke(session: Session, token_id: int, *, actor: str, now: datetime) -> ApiToken | None:
    row = session.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        audit.record(session, actor, "api_token_revoked", f"api_token:{row.id}", {})
    return row


def authenticate(session: Session, token: str, now: datetime) -> ApiToken | None:
    """The live token row for a presented token, or None (unknown or revoked)."""
    if not token or not token.startswith(PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        row.last_used_at = now
    return row


def allows(row: ApiToken, needed: str) -> bool:
    return needed == "read" or row.scope == "write"
