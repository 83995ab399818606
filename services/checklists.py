"""Checklist items: their names and instructions in the client's language, grouped by status."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.i18n import Translator
from services.models import ChecklistItem, Matter
from services.templates import load_template


def _template_item(matter_type: str, key: str):
    try:
        return load_template(matter_type).item(key)
    except (KeyError, ValueError):
        return None


def item_name(t: Translator, matter: Matter, item: ChecklistItem) -> str:
    """The item's name: the firm's own label, else the template's, else its key."""
    if item.label:
        return item.label.get(t.language) or next(iter(item.label.values()))
    template_item = _template_item(matter.type, item.key)
    if template_item:
        return template_item.name[t.language]
    return item.key.replace("_", " ")


def item_instructions(t: Translator, matter: Matter, item: ChecklistItem) -> str | None:
    template_item = _template_item(matter.type, item.key)
    return template_item.instructions[t.language] if template_item else None


def items_by_status(session: Session, matter: Matter) -> dict[str, list[ChecklistItem]]:
    """required / received / accepted / rejected → items, in checklist order."""
    grouped: dict[str, list[ChecklistItem]] = defaultdict(list)
    items = session.scalars(
        select(ChecklistItem).where(ChecklistItem.matter_id == matter.id).order_by(ChecklistItem.position, ChecklistItem.id)
    )
    for item in items:
        grouped[item.status].append(item)
    return grouped
