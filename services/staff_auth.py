"""Staff sign-in: Argon2id passwords, TOTP for everyone, recovery codes, sessions, throttling.

A sign-in is two steps: the password (checked the same way, in the same time, whether or not the
account exists), then a TOTP code (each code accepted once) or a single-use recovery code. Each
step starts a new session token (the old one is revoked), so a token seen before sign-in is
worthless after it. Sessions end after an idle limit and an absolute limit. Failed attempts slow
down the next ones per account and per source address, without saying which account exists.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services import audit
from services.models import STAFF_ROLES, LoginFailure, StaffSession, StaffUser

HASHER = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory defaults
_DUMMY_HASH = HASHER.hash("not-a-real-password")
IDLE = timedelta(minutes=15)
ABSOLUTE = timedelta(hours=10)
FREE_FAILURES = 3            # attempts on one account before any delay
FREE_FAILURES_PER_ADDRESS = 30
MAX_DELAY = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(hours=1)
RECOVERY_CODES = 8
ISSUER = "Puente"


class AuthError(Exception):
    """A refused step; the message is safe to show (it never says whether an account exists)."""


class Throttled(AuthError):
    def __init__(self, retry_after: int):
        super().__init__("Too many attempts. Wait a little and try again.")
        self.retry_after = retry_after


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise AuthError("Passwords need at least 12 characters.")
    return HASHER.hash(password)


def create_user(session: Session, email: str, name: str, role: str, password: str, language: str = "en",
                actor: str = "system") -> StaffUser:
    """A new staff account (TOTP is enrolled at first sign-in)."""
    if role not in STAFF_ROLES:
        raise AuthError(f"role must be one of {', '.join(STAFF_ROLES)}")
    email = email.strip().lower()
    if session.scalar(select(StaffUser).where(StaffUser.email == email)):
        raise AuthError("an account with this email already exists")
    user = StaffUser(email=email, name=name, role=role, password_hash=hash_password(password), active=True,
                     language=language if language in ("en", "es") else "en", recovery_codes=[])
    session.add(user)
    session.flush()
    audit.record(session, actor, "staff_created", f"staff:{user.id}", {"role": role})
    return user


# -- throttling ----------------------------------------------------------------------------------
def _keys(email: str, address: str) -> list[str]:
    return [_hash("account:" + email.strip().lower()), _hash("address:" + (address or "?"))]


def check_throttle(session: Session, email: str, address: str, now: datetime) -> None:
    """Raises Throttled while the account or the address must wait (progressive: 1 s, 2 s, 4 s … 15 min).

    The address allows many more failures than an account: a whole office signs in from one address
    (NAT, or a proxy in front of the app), and one person's typos must not lock out colleagues."""
    for key, free in zip(_keys(email, address), (FREE_FAILURES, FREE_FAILURES_PER_ADDRESS)):
        rows = session.execute(select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.key_hash == key, LoginFailure.at > now - FAILURE_WINDOW)).one()
        count, last = rows
        if count >= free and last is not None:
            wait = min(timedelta(seconds=2 ** (count - free)), MAX_DELAY)
            if now < last + wait:
                raise Throttled(int((last + wait - now).total_seconds()) + 1)


def _failed(session: Session, email: str, address: str, now: datetime, step: str) -> None:
    for key in _keys(email, address):
        session.add(LoginFailure(key_hash=key, at=now))
    audit.record(session, "anonymous", "login_failed", f"login:{_hash(email.strip().lower())[:16]}", {"step": step})


# -- the two steps -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    """A session token (give it to the browser once) and what the person must do next."""

    token: str
    user_id: int
    next: str  # "totp" | "enrol" | "done"


def _new_session(session: Session, user: StaffUser, stage: str, now: datetime, previous: StaffSession | None) -> str:
    if previous is not None:
        previous.revoked_at = now
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_hash(token), staff_user_id=user.id, stage=stage, created_at=now, last_seen_at=now))
    return token


def sign_in_password(session: Session, email: str, password: str, address: str, now: datetime) -> Started:
    """Step 1. Same answer and the same Argon2 work whether the account is missing, inactive or the password wrong."""
    check_throttle(session, email, address, now)
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    try:
        HASHER.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
        good = user is not None and user.active
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        good = False
    if not good:
        _failed(session, email, address, now, "password")
        raise AuthError("Wrong email or password.")
    stage = "totp" if user.totp_secret else "enrol"
    token = _new_session(session, user, stage, now, None)
    return Started(token, user.id, stage)


def sign_in_second_factor(session: Session, current: StaffSession, code: str, address: str, now: datetime) -> Started:
    """Step 2: a TOTP code (each accepted once) or an unused recovery code; rotates the session."""
    user = session.get(StaffUser, current.staff_user_id, with_for_update=True)  # one code, one use, even in a race
    check_throttle(session, user.email, address, now)
    code = code.strip().replace(" ", "")
    if not (_totp_ok(user, code, now) or _recovery_ok(user, code)):
        _failed(session, user.email, address, now, "totp")
        raise AuthError("That code did not work. Use the current code from your app, or a recovery code.")
    token = _new_session(session, user, "active", now, current)
    audit.record(session, f"staff:{user.id}", "login", f"staff:{user.id}", {})
    return Started(token, user.id, "done")


def _totp_ok(user: StaffUser, code: str, now: datetime) -> bool:
    if not user.totp_secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):  # one step of clock drift either way
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            if user.totp_last_step is not None and candidate <= user.totp_last_step:
                return False  # this code (or an older one) was used already: a replay
            user.totp_last_step = candidate
            return True
    return False


def _recovery_ok(user: StaffUser, code: str) -> bool:
    digest = _hash(code.lower())
    if digest in (user.recovery_codes or []):
        user.recovery_codes = [c for c in user.recovery_codes if c != digest]
        audit.record(user_session(user), f"staff:{user.id}", "recovery_code_used", f"staff:{user.id}",
                     {"left": len(user.recovery_codes)})
        return True
    return False


def user_session(user: StaffUser) -> Session:
    from sqlalchemy.orm import object_session

    return object_session(user)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: StaffUser, secret: str, firm_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=f"{ISSUER} ({firm_name})")


def enrol(session: Session, current: StaffSession, secret: str, code: str, address: str, now: datetime) -> tuple[Started, list[str]]:
    """Finishes TOTP enrolment with a first code; returns the active session and the recovery codes (shown once)."""
    user = session.get(StaffUser, current.staff_user_id)
    if current.stage != "enrol" or user.totp_secret:
        raise AuthError("Two-factor sign-in is already set up for this account.")
    trial = StaffUser(totp_secret=secret, totp_last_step=None)
    if not _totp_ok(trial, code.strip(), now):
        _failed(session, user.email, address, now, "enrol")
        raise AuthError("That code did not work. Check the time on your phone and try the current code.")
    user.totp_secret, user.totp_last_step = secret, trial.totp_last_step
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    user.recovery_codes = [_hash(c) for c in codes]
    token = _new_session(session, user, "active", now, current)
    audit.record(session, f"staff:{user.id}", "totp_enrolled", f"staff:{user.id}", {})
    audit.record(session, f"staff:{user.id}", "login", f"staff:{user.id}", {})
    return Started(token, user.id, "done"), codes


# -- sessions ------------------------------------------------------------------------------------
def find_session(session: Session, token: str | None, now: datetime, idle: timedelta = IDLE,
                 absolute: timedelta = ABSOLUTE, touch: bool = True) -> StaffSession | None:
    """The live session for a browser token (touching it), or None when missing, revoked or expired."""
    if not token:
        return None
    found = session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
    if found is None or found.revoked_at is not None:
        return None
    user = session.get(StaffUser, found.staff_user_id)
    if user is None or not user.active or now - found.last_seen_at > idle or now - found.created_at > absolute:
        found.revoked_at = found.revoked_at or now
        return None
    if touch:
        found.last_seen_at = now
    return found


def sign_out(session: Session, current: StaffSession, now: datetime) -> None:
    current.revoked_at = now
    audit.record(session, f"staff:{current.staff_user_id}", "logout", f"staff:{current.staff_user_id}", {})


def forget_old_failures(session: Session, now: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - FAILURE_WINDOW))
