"""Checking a received file and keeping it: inspect, scan when a scanner is configured, encrypt.

`check` decides what a file is and whether it may be filed; `keep` stores it encrypted and writes
the Document row; `rescan_pending` retries files a scanner outage left waiting. A scanner outage
never lets a file through: the file is kept, filed for the client, and stays unavailable to staff
until a scan says it is clean.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.antivirus import ClamdScanner, ScannerUnavailable, StreamTooLarge
from services.inspection import inspect
from services.models import ChecklistItem, Document
from services.vault import TamperedFile, Vault  # noqa: F401  (TamperedFile is part of this module's API)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one file, as the Document row keeps it."""

    status: str        # valid | refused | quarantined | infected
    scan_status: str   # not_scanned | pending | clean | infected
    mime: str | None
    info: dict


def check(data: bytes, scanner: ClamdScanner | None) -> Verdict:
    """Inspects the bytes and, when they pass and a scanner is configured, scans them."""
    result = inspect(data)
    mime = result.kind.mime if result.kind else None
    info = result.record()
    if not result.ok:
        return Verdict("quarantined" if result.quarantined else "refused", "not_scanned", mime, info)
    if scanner is None:
        return Verdict("valid", "not_scanned", mime, info)
    try:
        scan = scanner.scan(data)
    except StreamTooLarge:  # over clamd's StreamMaxLength: it can never be scanned, so never let through
        return Verdict("refused", "not_scanned", mime, {**info, "problem": "too_large"})
    except ScannerUnavailable as exc:
        log.warning("virus scanner unavailable (%s): file kept, unavailable until scanned", type(exc).__name__)
        return Verdict("valid", "pending", mime, info)
    if not scan.clean:
        return Verdict("infected", "infected", mime, {**info, "problem": "infected", "signature": scan.signature})
    return Verdict("valid", "clean", mime, info)


def available(doc: Document) -> bool:
    """Whether staff may open the file: checked, not tampered with, and clean if a scanner is configured."""
    return doc.status == "valid" and doc.scan_status in ("clean", "not_scanned")


def apply(session: Session, doc: Document, verdict: Verdict) -> None:
    """Writes a verdict onto the row (the declared type is replaced by the sniffed one)."""
    doc.status, doc.scan_status = verdict.status, verdict.scan_status
    if verdict.mime:
        doc.mime = verdict.mime
    doc.info = {**(doc.info or {}), **verdict.info}
    if verdict.status != "valid":
        audit.record(session, "system", "document_refused", f"document:{doc.id}",
                     {"status": verdict.status, "problem": verdict.info.get("problem")})


def open_document(session: Session, vault: Vault, doc: Document) -> bytes:
    """The original bytes, re-verified against the SHA-256 taken at ingest; a mismatch marks it corrupt."""
    try:
        return vault.get(doc.storage_key, doc.wrapped_key, doc.key_id, doc.sha256)
    except TamperedFile:
        doc.status = "corrupt"
        audit.record(session, "system", "document_corrupt", f"document:{doc.id}", {"sha256": doc.sha256})
        raise


def rescan_pending(session: Session, vault: Vault, scanner: ClamdScanner, now: datetime) -> list[Document]:
    """Scans files left waiting by a scanner outage; returns those that turned out infected."""
    infected = []
    for doc in session.scalars(select(Document).where(Document.scan_status == "pending").order_by(Document.id).limit(50)):
        try:
            data = open_document(session, vault, doc)
        except TamperedFile:
            continue
        try:
            scan = scanner.scan(data)
        except StreamTooLarge:
            doc.status, doc.scan_status = "refused", "not_scanned"
            doc.info = {**(doc.info or {}), "problem": "too_large"}
            audit.record(session, "system", "document_unscannable", f"document:{doc.id}", {"size": doc.size})
            continue
        except ScannerUnavailable:
            break  # still down: try again on the next pass
        if scan.clean:
            doc.scan_status = "clean"
            audit.record(session, "system", "document_scanned", f"document:{doc.id}", {"result": "clean"})
            continue
        doc.scan_status, doc.status = "infected", "infected"
        doc.info = {**(doc.info or {}), "problem": "infected", "signature": scan.signature}
        audit.record(session, "system", "document_infected", f"document:{doc.id}", {"signature": scan.signature})
        item = session.get(ChecklistItem, doc.item_id) if doc.item_id else None
        if item is not None and item.status == "received" and not any(
                available(d) for d in item.documents if d.role == "original" and d.id != doc.id):
            item.status, item.updated_at = "required", now
        infected.append(doc)
    return infected
