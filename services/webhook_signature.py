"""Signing and checking `Puente-Signature` headers: standalone (standard library only).

A receiving system may copy this file as it is. The header is `t=<unix seconds>,v1=<hex>` where
hex is HMAC-SHA256(secret, f"{t}.{body}") over the raw request body; during a secret rotation a
second `v1=` signed with the previous secret follows, and either one verifies.
"""
from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" under `secret`."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    """`t=…,v1=…[,v1=…]`: one v1 per secret (the current one first)."""
    return ",".join([f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets if s])


def puente_verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """True when one v1 of `header` is the HMAC of this body under `secret` and t is within `tolerance` s."""
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False  # too old (or from the future): a replayed request
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
