"""The staff copy of a checklist item: its photos and PDFs combined into one PDF.

Originals are never altered (they are the evidence). The copy applies each photo's EXIF
orientation and carries no EXIF or GPS data, since each photo is re-encoded from its pixels.
It is stored encrypted like any file and replaces the item's previous copy.
"""
from __future__ import annotations

import io
from datetime import datetime

from pypdf import PdfReader, PdfWriter
from sqlalchemy.orm import Session

from services import audit
from services.documents import item_documents
from services.inspection import decode_image
from services.intake import available, open_document
from services.models import ChecklistItem, Document
from services.vault import TamperedFile, Vault

MAX_SIDE = 2480  # A4 at 300 dpi: enough to read any document, far smaller than a phone's photo


def combine(files: list[tuple[str, bytes]]) -> bytes:
    """One PDF from (kind, bytes) in order: photos become pages (oriented, EXIF-free), PDFs are appended."""
    writer = PdfWriter()
    for kind, data in files:
        if kind == "pdf":
            writer.append(PdfReader(io.BytesIO(data)), import_outline=False)
            continue
        image = decode_image(data).convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        page = io.BytesIO()
        image.save(page, format="PDF", resolution=200.0)
        writer.append(PdfReader(io.BytesIO(page.getvalue())))
    for page in writer.pages:  # pages only: no page actions or annotations (links, scripts) reach staff
        for key in ("/AA", "/Annots"):
            if key in page:
                del page[key]
    out = io.BytesIO()
    writer.add_metadata({"/Producer": "Puente"})
    writer.write(out)
    return out.getvalue()


def rebuild(session: Session, vault: Vault, item: ChecklistItem, now: datetime) -> Document | None:
    """Builds the item's staff copy from its available originals; None when there are none."""
    originals = [d for d in item_documents(session, item) if available(d)]
    previous = [d for d in item_documents(session, item, role="staff_copy") if d.status == "valid"]
    if not originals:
        for old in previous:
            old.status = "superseded"
        return None
    files = []
    for doc in originals:
        try:
            files.append(("pdf" if (doc.info or {}).get("kind") == "pdf" else "image", open_document(session, vault, doc)))
        except TamperedFile:
            continue
    if not files:
        return None
    data = combine(files)
    stored = vault.put(data)
    copy = Document(item_id=item.id, matter_id=item.matter_id, role="staff_copy", sha256=stored.sha256,
                    mime="application/pdf", size=stored.size, storage_key=stored.key, wrapped_key=stored.wrapped_key,
                    key_id=stored.key_id, status="valid", scan_status="not_scanned",
                    info={"kind": "pdf", "sources": [d.id for d in originals]}, created_at=now,
                    filename=f"{item.key}.pdf")
    session.add(copy)
    for old in previous:
        old.status = "superseded"
    session.flush()
    audit.record(session, "system", "staff_copy_built", f"document:{copy.id}", {"item": item.id, "sources": len(files)})
    return copy
