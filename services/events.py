"""Outgoing events for the firm's other systems (DESIGN §4), recorded in the caller's transaction.

An event row is written together with the change it reports, so a crash never loses one and
never reports a change that did not happen. Its webhook deliveries (one per active endpoint that
subscribed to the event) are written in the same transaction; services.webhooks sends them.
"""
from __future__ import annotations

import secrets
import threading
import time
import weakref
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db import utcnow
from services.models import Client, Matter, OutgoingEvent, WebhookDelivery, WebhookEndpoint

EVENTS = (
    "message_received", "document_uploaded", "document_reviewed", "invoice_paid", "handoff_requested",
    "handoff_resolved", "matter_stage_changed", "contact_opted_out",
)


ENDPOINTS_CACHE_SECONDS = 5.0
_INSERT_EVENT = OutgoingEvent.__table__.insert()


class _Endpoint(NamedTuple):
    id: int
    full_payload: bool


class _ActiveEndpoints:
    """The active endpoints (ids and payload kind) per event name, re-read at most every 5 s.

    Every processed message from a known client records an event, and most firms have few or no
    endpoints: this spares the per-event query. Kept per database engine. A change committed in
    this process (a new, edited, disabled or removed endpoint) clears it at once; another process
    sees the change within ENDPOINTS_CACHE_SECONDS.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Engine → (expires, endpoints)

    def clear(self) -> None:
        with self._lock:
            self._cached.clear()

    def for_event(self, session: Session, event: str) -> list[_Endpoint]:
        bind = session.get_bind()
        engine = getattr(bind, "engine", bind)
        cached = self._cached.get(engine)
        if cached is None or time.monotonic() >= cached[0]:
            rows = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.full_payload, WebhookEndpoint.events)
                                   .where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)).all()
            cached = (time.monotonic() + ENDPOINTS_CACHE_SECONDS,
                      [(_Endpoint(r.id, bool(r.full_payload)), list(r.events or [])) for r in rows])
            with self._lock:
                self._cached[engine] = cached
        return [e for e, names in cached[1] if "*" in names or event in names]


active_endpoints = _ActiveEndpoints()
_ENDPOINTS_CHANGED = "puente_endpoints_changed"


@sa_event.listens_for(Session, "after_flush")
def _note_endpoint_changes(session: Session, _flush_context) -> None:
    if any(isinstance(o, WebhookEndpoint) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_ENDPOINTS_CHANGED] = True
        active_endpoints.clear()  # also cleared after commit, so no reader caches the old rows meanwhile


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_rollback")
def _forget_endpoints(session: Session) -> None:
    if session.info.pop(_ENDPOINTS_CHANGED, False):
        active_endpoints.clear()


def record(session: Session, event: str, *, matter: Matter | None = None, client_id: int | None = None,
           data: dict[str, Any] | None = None, now: datetime | None = None,
           matter_id: int | None = None) -> OutgoingEvent:
    """Writes one event (ids and type; `data` holds the details a full payload may carry).

    Give `matter`, or only `matter_id` with `client_id` when the row is not loaded (the hot path)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    values = {"event_id": "evt_" + secrets.token_hex(12), "event": event, "matter_id": matter.id if matter else matter_id,
              "client_id": client_id if client_id is not None else (matter.client_id if matter else None),
              "data": dict(data or {}), "created_at": now or utcnow()}
    values["fanned_out_at"] = values["created_at"]  # its deliveries are written below, in this transaction
    session.execute(_INSERT_EVENT, values)  # one Core INSERT: the row is not read back in this transaction
    row = OutgoingEvent(**values)  # a detached copy for the payloads (never added to the session)
    fan_out(session, row)
    return row


def subscribed(endpoint: WebhookEndpoint, event: str) -> bool:
    return "*" in (endpoint.events or []) or event in (endpoint.events or [])


def fan_out(session: Session, row: OutgoingEvent) -> int:
    """Adds one delivery per active endpoint subscribed to the event; returns how many."""
    endpoints = active_endpoints.for_event(session, row.event)
    bodies: dict[bool, dict[str, Any]] = {}
    for endpoint in endpoints:
        full = bool(endpoint.full_payload)
        if full not in bodies:
            bodies[full] = payload(session, row, full=full)
        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=row.event_id, event=row.event,
                                    payload=bodies[full], state="pending", attempts=0,
                                    next_attempt_at=row.created_at, created_at=row.created_at))
    row.fanned_out_at = row.created_at
    return len(endpoints)


def payload(session: Session, row: OutgoingEvent, *, full: bool = False) -> dict[str, Any]:
    """The JSON body an endpoint receives: thin (ids and type) unless the endpoint asks for full data."""
    matter = session.get(Matter, row.matter_id) if row.matter_id else None
    client = session.get(Client, row.client_id) if row.client_id else None
    body: dict[str, Any] = {
        "id": row.event_id,
        "event": row.event,
        "timestamp": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "matter_id": matter.external_id if matter else None,
        "client_id": client.external_id if client else None,
        "data": dict(row.data) if full else {k: v for k, v in row.data.items() if k.endswith("_id") or k in ("status", "item")},
    }
    return body
