"""The matter record: every table Puente keeps (typed SQLAlchemy 2.0 models).

Money is Decimal (Numeric(12, 2)); times are aware UTC (UTCDateTime). Behaviour lives in the
services that use these models, not here.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Table,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.db import Base, UTCDateTime, utcnow

STAFF_ROLES = ("admin", "partner", "associate", "paralegal", "finance")
STAGES = (
    "intake", "collecting_evidence", "attorney_review", "ready_to_file", "filed", "receipt_received",
    "biometrics_scheduled", "interview_scheduled", "rfe_received", "rfe_response_filed", "approved",
    "denied", "closed",
)
CHECKLIST_STATUSES = ("required", "received", "accepted", "rejected")
INVOICE_ACCOUNTS = ("trust", "operating")
INVOICE_STATUSES = ("unpaid", "partial", "paid", "disputed", "void")
CONVERSATION_STATUSES = ("bot", "handoff")
MESSAGE_STATES = ("received", "processed", "failed", "pending", "sending", "sent", "delivered", "unknown", "dead", "cancelled")
JSONType = JSON()
Id = BigInteger().with_variant(Integer(), "sqlite")


class FirmSettings(Base):
    """The firm's own settings (one row): name, contact, payment instructions, policies."""

    __tablename__ = "firm_settings"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="Law Office")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="America/Chicago")
    payment_instructions: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    verification_idle_minutes: Mapped[int] = mapped_column(Integer, default=30)
    verification_absolute_hours: Mapped[int] = mapped_column(Integer, default=12)
    verification_max_failures: Mapped[int] = mapped_column(Integer, default=5)
    verification_lock_minutes: Mapped[int] = mapped_column(Integer, default=30)
    ai_summaries_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_partial_payments: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class StaffUser(Base):
    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    recovery_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str] = mapped_column(String(5), default="en")  # the console's language for this person
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a TOTP code is accepted once (no replay)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffSession(Base):
    """A console sign-in. Only the SHA-256 of the session token is stored; a new one at every login."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(20), default="password")  # password → (totp) → active
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """One failed sign-in, by account and by source address (both hashed), for progressive delays."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key_hash", "at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(200))
    preferred_language: Mapped[str] = mapped_column(String(5), default="es")
    timezone: Mapped[str] = mapped_column(String(64), default="America/Chicago")
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Informed consent to AI-drafted summaries (ABA Formal Opinion 512); None: no AI touches their words.
    ai_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ai_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact_points: Mapped[list["ContactPoint"]] = relationship(back_populates="client", cascade="all, delete-orphan")
    matters: Mapped[list["Matter"]] = relationship(back_populates="client", order_by="Matter.id")


class ContactPoint(Base):
    """A way to reach a client: kind 'phone' (SMS and WhatsApp), 'telegram' (chat id) or 'email'.

    Several clients may share one phone (a family); the date of birth tells them apart.
    """

    __tablename__ = "contact_points"
    __table_args__ = (UniqueConstraint("client_id", "kind", "address"), Index("ix_contact_points_lookup", "kind", "address"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(100))
    verified_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)

    client: Mapped[Client] = relationship(back_populates="contact_points")


matter_staff = Table(
    "matter_staff",
    Base.metadata,
    Column("matter_id", ForeignKey("matters.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_user_id", ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True),
)


class Matter(Base):
    __tablename__ = "matters"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    type: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(40), default="intake")
    receipt_number: Mapped[str | None] = mapped_column(String(13))
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A stage staff asked for that an unpaid invoice blocks; the matter moves on when it is paid.
    waiting_stage: Mapped[str | None] = mapped_column(String(40))
    # Staff stopped the missing-document nudges for this matter (services.proactive).
    nudges_paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="matters")
    staff: Mapped[list[StaffUser]] = relationship(secondary=matter_staff)
    deadlines: Mapped[list["Deadline"]] = relationship(back_populates="matter", cascade="all, delete-orphan", order_by="Deadline.due")
    checklist: Mapped[list["ChecklistItem"]] = relationship(back_populates="matter", cascade="all, delete-orphan", order_by="ChecklistItem.position")
    invoices: Mapped[list["Invoice"]] = relationship(back_populates="matter", order_by="Invoice.id")


class Deadline(Base):
    """A dated event of a matter: an appointment, an interview, an RFE due date."""

    __tablename__ = "deadlines"
    __table_args__ = (UniqueConstraint("matter_id", "name", "due"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="deadline")
    due: Mapped[date] = mapped_column(Date)
    location: Mapped[str | None] = mapped_column(String(300))

    matter: Mapped[Matter] = relationship(back_populates="deadlines")


class ChecklistItem(Base):
    __tablename__ = "checklist_items"
    __table_args__ = (UniqueConstraint("matter_id", "key"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="required")
    reason: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(String(30))  # a rejection reason from services.reviews.REASONS
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Firm-specific label {"en": .., "es": ..}; template items take their names from the template.
    label: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    matter: Mapped[Matter] = relationship(back_populates="checklist")
    documents: Mapped[list["Document"]] = relationship(back_populates="item")


class Document(Base):
    """One file as received (role "original", kept unaltered as evidence) or a staff-facing copy
    derived from an item's originals (role "staff_copy": one PDF, EXIF removed, orientation applied).

    status: stored (not yet checked) → valid | refused (a clear problem the client can fix) |
    quarantined (could not be decoded safely) | infected | corrupt (ciphertext or fingerprint
    mismatch). scan_status: not_scanned | pending | clean | infected.
    """

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_items.id"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    uploader_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(16))  # which master key wrapped the data key
    role: Mapped[str] = mapped_column(String(20), default="original")
    scan_status: Mapped[str] = mapped_column(String(20), default="not_scanned")
    status: Mapped[str] = mapped_column(String(20), default="stored")
    info: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[ChecklistItem | None] = relationship(back_populates="documents")


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(50), unique=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id"))
    account: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="unpaid")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    issued: Mapped[date] = mapped_column(Date)
    due: Mapped[date | None] = mapped_column(Date)
    blocks_stage: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)
    lines: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))

    matter: Mapped[Matter] = relationship(back_populates="invoices")
    payments: Mapped[list["Payment"]] = relationship(back_populates="invoice", order_by="Payment.id")


class Payment(Base):
    """Append-only ledger: refunds and chargebacks are negative entries, never edits."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("source", "source_ref"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    kind: Mapped[str] = mapped_column(String(20), default="payment")
    source: Mapped[str] = mapped_column(String(30), default="import")
    source_ref: Mapped[str] = mapped_column(String(200))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="payments")


class PaymentLink(Base):
    """A payment link for one invoice version and amount; `token` is the unguessable part of /pay/<token>.

    status: live → expiring (superseded; the provider's checkout must still be closed) → expired,
    or live → used (paid through it) | void (the invoice was voided or disputed).
    """

    __tablename__ = "payment_links"
    __table_args__ = (UniqueConstraint("invoice_id", "invoice_version", "amount"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    invoice_version: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="live")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the provider's checkout behind `url` closes (Stripe's last at most 24 hours).
    provider_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """One thread per (channel, address). Verification, language and dialog state live here.

    `client_id`/`matter_id` are set only once the sender is verified; `state` is the active
    dialog's small JSON dict, `version` increments on every processed message.
    """

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "address"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(100))
    contact_point_id: Mapped[int | None] = mapped_column(ForeignKey("contact_points.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    status: Mapped[str] = mapped_column(String(20), default="bot")
    language: Mapped[str | None] = mapped_column(String(5))
    dialog: Mapped[str | None] = mapped_column(String(60))
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_verified_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_verifications: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unknown_streak: Mapped[int] = mapped_column(Integer, default=0)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """Inbound and outbound messages. Inbound rows are the work queue's source of truth
    (received → processed); outbound rows are the outbox (pending → sent | failed | unknown)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "direction", "provider_id"),
        Index("ix_messages_conversation_state", "conversation_id", "direction", "state"),
        Index("ix_messages_state_locked", "direction", "state", "locked_until"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    channel: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(5))
    intent: Mapped[str | None] = mapped_column(String(30))
    dialog: Mapped[str | None] = mapped_column(String(60))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # Whom the message was about, set when it is handled while the sender is verified: a family phone's
    # thread spans several clients, and staff see only the turns of matters open to them.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkToken(Base):
    """A single-use, short-lived token that links a chat account (Telegram) to a client.

    Only the SHA-256 of the token is stored; the token itself travels once, in the deep link.
    """

    __tablename__ = "link_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderReceipt(Base):
    """A delivery status callback as received (replays are no-ops); `matched` once applied to a message."""

    __tablename__ = "provider_receipts"
    __table_args__ = (UniqueConstraint("provider", "provider_id", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Handoff(Base):
    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    reason: Mapped[str] = mapped_column(String(40))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The AI-drafted summary (staff-only, labelled as AI): pending | ready | fallback | off
    ai_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    ai_summary_status: Mapped[str] = mapped_column(String(20), default="off")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Hash-chained audit trail: hash = SHA-256(prev_hash + canonical JSON of the event)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class OutgoingEvent(Base):
    """An event for the firm's other systems (DESIGN §4), written in the transaction that caused it.

    `event_id` is the stable id every delivery attempt carries; fan-out to endpoints reads rows
    not yet `fanned_out_at`.
    """

    __tablename__ = "outgoing_events"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """A URL of the firm's other system that receives signed events (services.webhooks).

    `previous_secret` still signs (as a second v1=) until `previous_secret_until`, so the receiver
    can switch secrets without losing deliveries. A 410 answer sets `active` False with a reason.
    """

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    full_payload: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_private_network: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint: pending → sending → delivered | pending (retry) | dead.

    Written in the event's transaction; every attempt carries the same event id.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(String(40), index=True)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # lease of the attempt in flight
    response_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A token for the /api/v1 API, issued by an admin. Only its SHA-256 is stored; scope read | write."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reminder(Base):
    """A message the firm will send at `due_at` (payment reminders, stage updates, deadlines, nudges).

    Rows, not timers: a restart or a Redis flush loses none. state: pending → done | stopped.
    """

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_state_due", "state", "due_at"), Index("ix_reminders_purpose_subject", "purpose", "subject"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(100))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    matter_id: Mapped[int | None] = mapped_column(ForeignKey("matters.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
