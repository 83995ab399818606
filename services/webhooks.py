"""Outgoing webhooks: endpoints, signed delivery with retries for about a day, and the SSRF guard.

A delivery row (written with its event, see services.events) is claimed under a lease, sent once
with `Puente-Signature` (services.webhook_signature) and the stable event id, and then either
delivered (2xx), scheduled again (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 24 h, jittered), or dead
(audited and logged for the admins, replayable). Redirects are never followed. A 410 disables the
endpoint. Targets that resolve to loopback, private, link-local, multicast, reserved or metadata
addresses are refused unless the endpoint allows a private network; the address checked is the
one connected to, so a DNS answer cannot change between the check and the request.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import random
import secrets as _secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services import audit
from services.events import EVENTS
from services.models import WebhookDelivery, WebhookEndpoint
from services.webhook_signature import signature_header

log = logging.getLogger(__name__)
SCHEDULE = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
            timedelta(hours=5), timedelta(hours=10), timedelta(hours=24))
MAX_ATTEMPTS = len(SCHEDULE) + 1  # the first try and one per step of the schedule
LEASE = timedelta(seconds=60)
ROTATION_OVERLAP = timedelta(hours=24)
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 10.0
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class EndpointError(ValueError):
    """An endpoint that cannot be added (bad URL, unknown event, refused target)."""


class TargetRefused(Exception):
    """The URL resolves to an address Puente does not call (or does not resolve at all)."""


def new_secret() -> str:
    return "whsec_" + _secrets.token_urlsafe(32)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try, jittered by ±10% so retries do not arrive in bursts."""
    step = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    return step * random.uniform(0.9, 1.1)


# -- the guard ---------------------------------------------------------------------------------
def forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified or otherwise not global."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip in METADATA or ip.is_multicast or not ip.is_global


def resolve(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, ip to connect to), or TargetRefused. Every resolved address must pass."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise TargetRefused("host does not resolve") from None
    ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in ips:
        if ip in METADATA or (ip.version == 6 and ip.ipv4_mapped in METADATA):
            raise TargetRefused("metadata address")
        if forbidden(ip) and not allow_private:
            raise TargetRefused("private or reserved address")
    return parts.scheme, parts.hostname, port, str(ips[0])


# -- endpoints ---------------------------------------------------------------------------------
def add_endpoint(session: Session, url: str, events: list[str], *, full: bool = False, allow_private: bool = False,
                 now: datetime) -> tuple[WebhookEndpoint, str]:
    """Adds an endpoint; returns it and its secret (shown once)."""
    unknown = [e for e in events if e != "*" and e not in EVENTS]
    if not events or unknown:
        raise EndpointError(f"events must be '*' or some of: {', '.join(EVENTS)}")
    try:
        resolve(url, allow_private)
    except TargetRefused as exc:
        raise EndpointError(f"refused target: {exc}") from None
    secret = new_secret()
    endpoint = WebhookEndpoint(url=url, events=sorted(set(events)), secret=secret, full_payload=full,
                               allow_private_network=allow_private, active=True, created_at=now)
    session.add(endpoint)
    session.flush()
    audit.record(session, "admin", "webhook_endpoint_added", f"webhook_endpoint:{endpoint.id}",
                 {"events": endpoint.events, "full": full, "allow_private": allow_private})
    return endpoint, secret


def rotate_secret(session: Session, endpoint: WebhookEndpoint, now: datetime,
                  overlap: timedelta = ROTATION_OVERLAP) -> str:
    """A new secret; the old one still signs (second v1=) for `overlap`. Returns the new secret."""
    endpoint.previous_secret, endpoint.previous_secret_until = endpoint.secret, now + overlap
    endpoint.secret = new_secret()
    audit.record(session, "admin", "webhook_secret_rotated", f"webhook_endpoint:{endpoint.id}", {})
    return endpoint.secret


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    keep_old = endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now
    return [endpoint.secret] + ([endpoint.previous_secret] if keep_old else [])


# -- deliveries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """What one try needs, read under the lease (plain values: sent outside any transaction)."""

    delivery_id: int
    endpoint_id: int
    url: str
    body: bytes
    event_id: str
    event: str
    secrets: tuple[str, ...]
    allow_private: bool


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the HTTP status, None when no answer
    error: str | None = None
    ms: int | None = None
    refused: bool = False


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def due(session: Session, now: datetime, limit: int = 1000) -> list[int]:
    """Deliveries to try now: pending and due, or `sending` with an expired lease (a worker died)."""
    return list(session.scalars(
        select(WebhookDelivery.id).where(
            or_(WebhookDelivery.state == "pending", WebhookDelivery.state == "sending"),
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def claim(session: Session, delivery_id: int, now: datetime) -> Attempt | None:
    """Takes the lease on a due delivery (None when it is not due, taken, or its endpoint is gone)."""
    row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if row is None or row.state not in ("pending", "sending") or row.next_attempt_at > now:
        return None
    if row.locked_until and row.locked_until > now:
        return None  # another worker is on it
    endpoint = session.get(WebhookEndpoint, row.endpoint_id)
    if endpoint is None or not endpoint.active:
        row.state, row.last_error, row.locked_until = "cancelled", "endpoint disabled", None
        return None
    row.state, row.attempts, row.locked_until = "sending", row.attempts + 1, now + LEASE
    return Attempt(row.id, endpoint.id, endpoint.url, body_of(row.payload), row.event_id, row.event,
                   tuple(signing_secrets(endpoint, now)), bool(endpoint.allow_private_network))


def record(session: Session, delivery_id: int, outcome: Outcome, now: datetime) -> str:
    """Applies one try's outcome; returns the new state (delivered, pending, dead or gone)."""
    row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    row.last_status, row.response_ms, row.locked_until = outcome.status, outcome.ms, None
    row.last_error = (outcome.error or "")[:300] or None
    if outcome.status is not None and 200 <= outcome.status < 300:
        row.state, row.delivered_at = "delivered", now
        return row.state
    if outcome.status == 410:
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        endpoint.active, endpoint.disabled_reason = False, "410 Gone"
        row.state = "gone"
        audit.record(session, "system", "webhook_endpoint_disabled", f"webhook_endpoint:{endpoint.id}",
                     {"status": 410, "delivery": row.id})
        log.warning("webhook endpoint %s answered 410 Gone and is disabled", endpoint.id)
        return row.state
    if outcome.refused or row.attempts >= MAX_ATTEMPTS:
        row.state, row.dead_at = "dead", now
        # The admins' alert: an audit event and an error log line, with ids only.
        audit.record(session, "system", "webhook_delivery_dead", f"webhook_delivery:{row.id}",
                     {"endpoint": row.endpoint_id, "event_id": row.event_id, "attempts": row.attempts,
                      "status": outcome.status, "error": row.last_error})
        log.error("ALERT webhook delivery %s (endpoint %s, event %s) is dead after %s attempt(s); replay with "
                  "`puente webhooks replay %s`", row.id, row.endpoint_id, row.event_id, row.attempts, row.id)
        return row.state
    row.state, row.next_attempt_at = "pending", now + backoff(row.attempts)
    return row.state


def replay(session: Session, delivery_id: int, now: datetime) -> WebhookDelivery:
    """A new delivery of the same event (same event id and body) to the same endpoint, due now."""
    old = session.get(WebhookDelivery, delivery_id)
    if old is None:
        raise LookupError(f"no delivery {delivery_id}")
    endpoint = session.get(WebhookEndpoint, old.endpoint_id)
    if not endpoint.active:
        endpoint.active, endpoint.disabled_reason = True, None  # a replay is the admin saying it is back
    copy = WebhookDelivery(endpoint_id=old.endpoint_id, event_id=old.event_id, event=old.event, payload=old.payload,
                           state="pending", attempts=0, next_attempt_at=now, created_at=now)
    session.add(copy)
    session.flush()
    audit.record(session, "admin", "webhook_delivery_replayed", f"webhook_delivery:{old.id}", {"replay": copy.id})
    return copy


class Sender:
    """Sends one attempt over HTTP(S) to the address that passed the guard (the IP is pinned; the
    Host header and TLS name stay the URL's). Keeps one connection pool per pinned target."""

    def __init__(self, user_agent: str = "Puente-Webhooks/1"):
        self.user_agent = user_agent
        self._pools: dict[tuple, Any] = {}

    def _pool(self, scheme: str, host: str, port: int, ip: str):
        import urllib3

        key = (scheme, host, port, ip)
        pool = self._pools.get(key)
        if pool is None:
            timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
            if scheme == "https":
                pool = urllib3.HTTPSConnectionPool(ip, port, server_hostname=host, assert_hostname=host,
                                                   cert_reqs="CERT_REQUIRED", timeout=timeout, maxsize=4, retries=False)
            else:
                pool = urllib3.HTTPConnectionPool(ip, port, timeout=timeout, maxsize=4, retries=False)
            self._pools[key] = pool
        return pool

    def send(self, attempt: Attempt) -> Outcome:
        try:
            scheme, host, port, ip = resolve(attempt.url, attempt.allow_private)
        except TargetRefused as exc:
            return Outcome(None, f"refused target: {exc}", refused=True)
        parts = urlsplit(attempt.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = 443 if scheme == "https" else 80
        headers = {
            "Host": host if port == default_port else f"{host}:{port}",
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            "Puente-Event-Id": attempt.event_id,
            "Puente-Event": attempt.event,
            "Puente-Signature": signature_header(list(attempt.secrets), int(time.time()), attempt.body),
        }
        started = time.monotonic()
        try:
            response = self._pool(scheme, host, port, ip).urlopen(
                "POST", path, body=attempt.body, headers=headers, redirect=False, retries=False,
                preload_content=False, assert_same_host=False)
            response.read(64 * 1024, decode_content=False)  # the answer's body is not used; cap what is read
            response.release_conn()
        except Exception as exc:
            return Outcome(None, type(exc).__name__, int((time.monotonic() - started) * 1000))
        ms = int((time.monotonic() - started) * 1000)
        error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        return Outcome(response.status, error, ms)
