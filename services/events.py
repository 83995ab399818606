"""Outgoing events for the firm's other systems (DESIGN §4), recorded in the caller's transaction.

An event row is written together with the change it reports, so a crash never loses one and
never reports a change that did not happen. Its webhook deliveries (one per active endpoint that
subscribed to the event) are written in the same transaction; services.webhooks sends them.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db import utcnow
from services.models import Client, Matter, OutgoingEvent, WebhookDelivery, WebhookEndpoint

EVENTS = (
    "message_received", "document_uploaded", "document_reviewed", "invoice_paid", "handoff_requested",
    "handoff_resolved", "matter_stage_changed", "contact_opted_out",
)


def record(session: Session, event: str, *, matter: Matter | None = None, client_id: int | None = None,
           data: dict[str, Any] | None = None, now: datetime | None = None) -> OutgoingEvent:
    """Writes one event (ids and type; `data` holds the details a full payload may carry)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    row = OutgoingEvent(event_id="evt_" + secrets.token_hex(12), event=event,
                        matter_id=matter.id if matter else None,
                        client_id=client_id if client_id is not None else (matter.client_id if matter else None),
                        data=dict(data or {}), created_at=now or utcnow())
    session.add(row)
    fan_out(session, row)
    return row


def subscribed(endpoint: WebhookEndpoint, event: str) -> bool:
    return "*" in (endpoint.events or []) or event in (endpoint.events or [])


def fan_out(session: Session, row: OutgoingEvent) -> int:
    """Adds one delivery per active endpoint subscribed to the event; returns how many."""
    endpoints = [e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
                 if subscribed(e, row.event)]
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
