"""Outbound messages that need a person: ambiguous sends (`unknown`) and failures (`failed`, `dead`).

A send whose outcome is unknown is never resent blindly. The reconciler asks providers that can
look a message up (Twilio); one that cannot (Telegram's Bot API) leaves it to staff, who check with
the client or the provider's log and then say "it arrived" or "send again". Failures are shown so
staff can send again (never to someone who opted out or blocked us) or dismiss them once handled.
"Send again" only puts the row back in the outbox (`pending`); the caller queues its send after commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services import audit
from services.i18n import N_, Translator
from services.models import Client, Conversation, Message

STATES = ("unknown", "failed", "dead")
WINDOW = timedelta(days=30)
PREVIEW_CHARS = 120
LIMIT = 500
# A WhatsApp reply past the 24-hour window that went by SMS instead: the SMS copy has its own row
# (shown here if it fails), so the original needs nobody; sending it again would repeat it.
REROUTED_PREFIX = "outside_window; sent by sms"
NEVER_RESEND = ("opted_out", "blocked")

# Short error codes (channels' SendResult, the runtime, delivery receipts) in plain words for staff.
ERRORS = {
    "opted_out": N_("The client asked not to receive messages (they texted STOP to the carrier)."),
    "blocked": N_("The client blocked the bot or deleted their Telegram account."),
    "invalid_number": N_("The phone number is not valid."),
    "not_mobile": N_("The number is not a mobile phone, so it cannot receive text messages."),
    "landline": N_("The number is a landline, which cannot receive text messages."),
    "unknown_destination": N_("The carrier does not know this number (it may be disconnected)."),
    "carrier_filtered": N_("The carrier filtered the message out (it may have looked like spam)."),
    "whatsapp_window": N_("WhatsApp refused it: more than 24 hours had passed since the client last wrote."),
    "outside_window": N_("More than 24 hours had passed since the client last wrote on WhatsApp, and there was "
                         "no approved template or SMS consent: a person must answer."),
    "timeout": N_("The provider did not answer in time: the message may or may not have gone out."),
    "server_error": N_("The provider had an internal error after it may have accepted the message."),
    "network": N_("The connection broke after the message was handed to the provider."),
    "partly_sent": N_("Only the first part of a long message went out."),
    "rate_limited": N_("The provider kept asking us to slow down; we stopped after several tries."),
    "worker stopped during send": N_("Puente stopped while sending it, so we cannot tell whether it went out."),
    "unauthorized": N_("The provider refused our credentials: an administrator must check the bot token."),
    "bad_request": N_("The provider refused the message as malformed."),
    "chat_migrated": N_("The Telegram chat changed its address; the client must write to us again."),
    "not_at_provider": N_("The provider had no record of the message."),
    "undelivered": N_("The carrier reported that it could not deliver the message."),
}
UNREACHABLE = {
    "dead": N_("We could not reach the provider, even after several tries."),
    "failed": N_("The phone could not be reached (switched off or out of coverage)."),
}
PATTERNS = {  # prefix of a code that carries a number → plain words with that number
    "http_": N_("The provider answered with a server error (%(code)s) after it may have accepted the message."),
    "partial_": N_("Only the first part of a long message went out (error %(code)s on a later part)."),
    "twilio_": N_("Twilio reported that it could not deliver the message (error %(code)s)."),
}
REFUSED_OPTED_OUT = N_("It cannot be sent again: the client asked not to receive messages.")
REFUSED_BLOCKED = N_("It cannot be sent again: the client blocked the bot or deleted their account.")
STALE = N_("This message changed meanwhile (it may have been settled already). Nothing was changed; "
           "check the list again.")


class Stale(Exception):
    """The message is no longer in the state the page showed (settled meanwhile)."""


class Refused(Exception):
    """Sending again is not allowed; the argument is a msgid for staff."""


@dataclass(frozen=True)
class Problem:
    """One outbound message waiting for a person, as the list shows it."""

    message_id: int
    conversation_id: int
    at: datetime
    channel: str
    client_name: str | None  # None: the sender was not verified when it was written
    preview: str
    state: str
    error: str | None
    actions: tuple[str, ...]  # what staff may do: "arrived", "resend", "dismiss"
    refusal: str | None  # why "resend" is not offered (a msgid), or None


def resend_refusal(msg: Message, conv: Conversation) -> str | None:
    """Why this message must not be sent again (a msgid for staff), or None."""
    if conv.opted_out_at is not None or msg.error == "opted_out":
        return REFUSED_OPTED_OUT
    if msg.error == "blocked":
        return REFUSED_BLOCKED
    return None


def actions(msg: Message, conv: Conversation) -> tuple[str, ...]:
    """What staff may do with an open message: an unknown send arrived or goes again; a failure goes
    again or is dismissed (and so is an unknown one that may not go again)."""
    refused = resend_refusal(msg, conv) is not None
    if msg.state == "unknown":
        return ("arrived", "dismiss") if refused else ("arrived", "resend")
    return ("dismiss",) if refused else ("resend", "dismiss")


def is_open(msg: Message) -> bool:
    """Whether staff still have to settle this message."""
    return (msg.direction == "out" and msg.state in STATES and not (msg.payload or {}).get("settled_at")
            and not (msg.error or "").startswith(REROUTED_PREFIX))


def open_problems(session: Session, now: datetime,
                  may_read: Callable[[Message, Conversation], bool] = lambda msg, conv: True) -> list[Problem]:
    """The unsettled outbound messages in STATES from the last WINDOW that `may_read` allows, newest first."""
    rows = session.execute(
        select(Message, Conversation, Client)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(Message.direction == "out", Message.state.in_(STATES), Message.received_at >= now - WINDOW,
               Message.payload["settled_at"].as_string().is_(None),
               or_(Message.error.is_(None), ~Message.error.startswith(REROUTED_PREFIX)))
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(LIMIT)
    ).all()
    out = []
    for msg, conv, client in rows:
        if not is_open(msg) or not may_read(msg, conv):
            continue
        body = " ".join((msg.body or "").split())  # one line in the list
        out.append(Problem(message_id=msg.id, conversation_id=conv.id, at=msg.received_at, channel=msg.channel,
                           client_name=f"{client.first_name} {client.last_name}" if client else None,
                           preview=body if len(body) <= PREVIEW_CHARS else body[:PREVIEW_CHARS].rstrip() + "…",
                           state=msg.state, error=msg.error, actions=actions(msg, conv),
                           refusal=resend_refusal(msg, conv)))
    return out


def explain(t: Translator, state: str, error: str | None) -> str:
    """The error code in plain words in `t`'s language; a code we do not know is shown as it is."""
    if not error:
        return ""
    if error == "unreachable":
        return t.gettext(UNREACHABLE["dead" if state == "dead" else "failed"])
    if error in ERRORS:
        return t.gettext(ERRORS[error])
    if error.startswith("outside_window"):
        return t.gettext(ERRORS["outside_window"])
    for prefix, msgid in PATTERNS.items():
        if error.startswith(prefix) and len(error) > len(prefix):
            return t.gettext(msgid, code=error[len(prefix):])
    return error


def check_current(msg: Message, shown_state: str | None) -> None:
    """Raises Stale unless the message is still open and in the state the page showed."""
    if not is_open(msg) or (shown_state and msg.state != shown_state):
        raise Stale(msg.id)


def mark_arrived(session: Session, msg: Message, *, staff_id: int, now: datetime) -> None:
    """Staff confirmed that an `unknown` send reached the client: it becomes `sent` (audited)."""
    if msg.state != "unknown":
        raise Stale(msg.id)
    msg.state, msg.sent_at, msg.locked_until = "sent", msg.sent_at or now, None
    # Not "settled_*": should the carrier still report a failure later, the message shows up again.
    msg.payload = {**(msg.payload or {}), "confirmed_by": staff_id, "confirmed_at": now.isoformat()}
    audit.record(session, f"staff:{staff_id}", "send_reconciled", f"message:{msg.id}", {"outcome": "sent", "by": "staff"})


def send_again(session: Session, msg: Message, conv: Conversation, *, staff_id: int, now: datetime) -> None:
    """Puts the message back in the outbox (`pending`, a fresh set of attempts); refused for a client
    who opted out or blocked us. The caller queues the send after commit."""
    refusal = resend_refusal(msg, conv)
    if refusal:
        raise Refused(refusal)
    details = {"outcome": "resent", "by": "staff", "previous_state": msg.state, "previous_error": msg.error,
               "previous_attempts": msg.attempts, "previous_provider_id": msg.provider_id}
    # A fresh start: the old provider id (e.g. of a partial send) must not make the reconciler
    # believe the new send arrived; received_at now lets the reconciler look after it for a day.
    msg.state, msg.error, msg.locked_until, msg.attempts = "pending", None, None, 0
    msg.provider_id, msg.sent_at, msg.received_at = None, None, now
    msg.payload = {k: v for k, v in (msg.payload or {}).items() if k not in ("settled_by", "settled_at")}
    audit.record(session, f"staff:{staff_id}", "send_reconciled", f"message:{msg.id}", details)


def dismiss(session: Session, msg: Message, *, staff_id: int, now: datetime) -> None:
    """Staff reviewed a failed message: it keeps its state and leaves the list (audited)."""
    if msg.state not in STATES:
        raise Stale(msg.id)
    msg.payload = {**(msg.payload or {}), "settled_by": staff_id, "settled_at": now.isoformat()}
    audit.record(session, f"staff:{staff_id}", "send_dismissed", f"message:{msg.id}",
                 {"state": msg.state, "error": msg.error})
