"""`puente documents`: review, export and verify clients' documents; rotate the master key."""
from __future__ import annotations

import sys
from pathlib import Path

import click


def _runtime():
    from bot.runtime import build_runtime
    from web.cli import _settings

    return build_runtime(_settings())


def _item(session, matter_id: str, key: str):
    from sqlalchemy import select

    from services.models import ChecklistItem, Matter

    matter = session.scalar(select(Matter).where(Matter.external_id == matter_id))
    if matter is None:
        raise click.ClickException(f"no matter with external id {matter_id}")
    item = session.scalar(select(ChecklistItem).where(ChecklistItem.matter_id == matter.id, ChecklistItem.key == key))
    if item is None:
        raise click.ClickException(f"matter {matter_id} has no checklist item {key}")
    return item


@click.group("documents")
def documents_group() -> None:
    """Clients' documents: review, export, verify, key rotation."""


@documents_group.command("list")
@click.argument("matter_id")
def list_(matter_id: str) -> None:
    """Shows a matter's checklist: each item's status and the files filed to it."""
    from sqlalchemy import select

    from services.documents import item_documents
    from services.intake import available
    from services.models import ChecklistItem, Matter

    runtime = _runtime()
    with runtime.Session() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == matter_id))
        if matter is None:
            raise click.ClickException(f"no matter with external id {matter_id}")
        items = session.scalars(select(ChecklistItem).where(ChecklistItem.matter_id == matter.id)
                                .order_by(ChecklistItem.position, ChecklistItem.id))
        for item in items:
            click.echo(f"{item.key:40} {item.status:9} {item.reason_code or ''}")
            for doc in item_documents(session, item) + item_documents(session, item, role="staff_copy"):
                flag = "available" if available(doc) else f"{doc.status}/{doc.scan_status}"
                click.echo(f"    #{doc.id:<6} {doc.role:10} {doc.mime:18} {doc.size:>9} B  sha256 {doc.sha256[:16]}…  {flag}")


def _review(matter_id: str, key: str, decision: str, by: str, reason: str | None, note: str | None) -> None:
    from services.reviews import ReviewError, review

    runtime = _runtime()
    with runtime.Session.begin() as session:
        item = _item(session, matter_id, key)
        try:
            notice = review(session, item, decision, actor=f"staff:{by}", now=runtime.engine.clock(),
                            firm=runtime.engine.firm(session), reason_code=reason, note=note)
        except ReviewError as exc:
            raise click.ClickException(str(exc)) from None
        notice_id = notice.id if notice else None
    runtime.queue_sends([notice_id])
    runtime.queue.join()  # in-process: the notice is sent before the command returns
    click.echo(f"{key}: {decision}" + ("" if notice_id else " (the client has no thread to notify; tell them another way)"))


@documents_group.command("accept")
@click.argument("matter_id")
@click.argument("item_key")
@click.option("--by", default="cli", show_default=True, help="Who reviewed it (kept in the audit trail).")
def accept(matter_id: str, item_key: str, by: str) -> None:
    """Accepts an item's documents and tells the client."""
    _review(matter_id, item_key, "accepted", by, None, None)


@documents_group.command("reject")
@click.argument("matter_id")
@click.argument("item_key")
@click.option("--reason", required=True, type=click.Choice(
    ["illegible", "expired", "wrong_document", "missing_pages", "needs_translation", "other"]))
@click.option("--note", help="A note for the client (required with --reason other).")
@click.option("--by", default="cli", show_default=True)
def reject(matter_id: str, item_key: str, reason: str, note: str | None, by: str) -> None:
    """Rejects an item with a reason; the client is told what to send again and why."""
    _review(matter_id, item_key, "rejected", by, reason, note)


@documents_group.command("export")
@click.argument("document_id", type=int)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
def export(document_id: int, out: str) -> None:
    """Writes one document's original bytes, after re-checking its SHA-256; refuses unavailable files."""
    from services import audit
    from services.intake import available, open_document
    from services.models import Document
    from services.vault import TamperedFile

    runtime = _runtime()
    with runtime.Session.begin() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            raise click.ClickException(f"no document {document_id}")
        if not available(doc):
            raise click.ClickException(f"document {document_id} is not available ({doc.status}, scan {doc.scan_status})")
        try:
            data = open_document(session, runtime.vault, doc)
        except TamperedFile:
            failed = True
        else:
            failed = False
            audit.record(session, "cli", "document_exported", f"document:{doc.id}", {"sha256": doc.sha256})
    if failed:
        click.echo(f"document {document_id} FAILED its integrity check and is marked corrupt", err=True)
        sys.exit(1)
    Path(out).write_bytes(data)
    click.echo(f"{out}: {len(data)} bytes, sha256 {doc.sha256} verified")


@documents_group.command("verify")
def verify() -> None:
    """Decrypts every stored file and re-checks its SHA-256; exits 1 if any fails."""
    from sqlalchemy import select

    from services.intake import open_document
    from services.models import Document
    from services.vault import TamperedFile

    runtime = _runtime()
    good = bad = 0
    with runtime.Session.begin() as session:
        for doc in session.scalars(select(Document).where(Document.wrapped_key.is_not(None),
                                                          Document.status != "superseded").order_by(Document.id)):
            try:
                open_document(session, runtime.vault, doc)
                good += 1
            except (TamperedFile, FileNotFoundError):
                bad += 1
                doc.status = "corrupt"
                click.echo(f"document {doc.id}: FAILED", err=True)
    click.echo(f"{good} documents verified, {bad} failed")
    if bad:
        sys.exit(1)


@documents_group.command("rotate-key")
def rotate_key() -> None:
    """Re-wraps every file's data key with the first key of PUENTE_ENCRYPTION_KEY (files are untouched).

    Put the new key first and keep the old one after it ("new,old"), run this, then drop the old one."""
    from sqlalchemy import select

    from services import audit
    from services.models import Document

    runtime = _runtime()
    current = runtime.vault.keys.current_id
    count = 0
    with runtime.Session.begin() as session:
        for doc in session.scalars(select(Document).where(Document.wrapped_key.is_not(None), Document.key_id != current)):
            doc.wrapped_key, doc.key_id = runtime.vault.rewrap(doc.storage_key, doc.wrapped_key, doc.key_id)
            count += 1
        audit.record(session, "cli", "master_key_rotated", f"key:{current}", {"rewrapped": count})
    click.echo(f"{count} data keys re-wrapped with key {current}")


@documents_group.command("new-key")
def new_key() -> None:
    """Prints a fresh master key for PUENTE_ENCRYPTION_KEY."""
    from services.vault import new_master_key

    click.echo(new_master_key())
