"""Default document checklist templates per matter type, read from JSON data files.

The templates live in ``services/checklist_templates/<MATTER_TYPE>.json`` and are pure data
(summarised from the USCIS form instructions named in each file's ``source``). This module only
reads and validates them; it touches no database and imports nothing else of ours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATES_DIR = Path(__file__).parent / "checklist_templates"

MATTER_TYPES: tuple[str, ...] = ("I-130", "I-485", "I-765", "N-400", "RFE")
LANGUAGES: tuple[str, ...] = ("en", "es")
ACCEPTED_KINDS: frozenset[str] = frozenset({"image", "pdf", "in_person"})
TRANSLATION_RULES: frozenset[str] = frozenset({"never", "if_not_english", "always"})

_KEY_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_TEMPLATE_FIELDS = frozenset({"matter_type", "title", "source", "items"})
_ITEM_FIELDS = frozenset(
    {"key", "name", "instructions", "why", "accepted_kinds", "sides", "translation_needed", "required"}
)


@dataclass(frozen=True)
class TemplateItem:
    """One document the client is asked for. Text fields map language code ("en", "es") to text."""

    key: str
    name: dict[str, str]
    instructions: dict[str, str]
    why: dict[str, str]
    accepted_kinds: tuple[str, ...]
    sides: int
    translation_needed: str
    required: bool


@dataclass(frozen=True)
class ChecklistTemplate:
    """The default checklist for one matter type. Shared and cached: treat it as read-only."""

    matter_type: str
    title: dict[str, str]
    source: str
    items: tuple[TemplateItem, ...]

    def item(self, key: str) -> TemplateItem | None:
        """Returns the item with this key, or None when the template has no such item."""
        for candidate in self.items:
            if candidate.key == key:
                return candidate
        return None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(candidate.key for candidate in self.items)


def _fail(path: Path, where: str, problem: str) -> ValueError:
    return ValueError(f"checklist template {path.name}: {where}: {problem}")


def _text(path: Path, where: str, field: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(path, where, f"'{field}' must be an object with 'en' and 'es' texts")
    unknown = sorted(set(value) - set(LANGUAGES))
    if unknown:
        raise _fail(path, where, f"'{field}' has unknown language(s) {unknown}")
    texts: dict[str, str] = {}
    for lang in LANGUAGES:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise _fail(path, where, f"'{field}' is missing a non-empty '{lang}' text")
        texts[lang] = text.strip()
    return texts


def _item(path: Path, index: int, raw: Any) -> TemplateItem:
    where = f"item #{index + 1}"
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be an object")
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _fail(path, where, f"key {key!r} must be lowercase snake_case")
    where = f"item '{key}'"
    missing = sorted(_ITEM_FIELDS - set(raw))
    if missing:
        raise _fail(path, where, f"missing field(s) {missing}")
    unknown = sorted(set(raw) - _ITEM_FIELDS)
    if unknown:
        raise _fail(path, where, f"unknown field(s) {unknown}")

    kinds = raw["accepted_kinds"]
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise _fail(path, where, "'accepted_kinds' must be a non-empty list")
    bad = sorted(set(kinds) - ACCEPTED_KINDS)
    if bad:
        raise _fail(path, where, f"bad accepted_kinds {bad}; allowed: {sorted(ACCEPTED_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise _fail(path, where, "'accepted_kinds' lists a kind twice")

    sides = raw["sides"]
    if isinstance(sides, bool) or sides not in (1, 2):
        raise _fail(path, where, f"'sides' must be 1 or 2, not {sides!r}")
    translation = raw["translation_needed"]
    if translation not in TRANSLATION_RULES:
        raise _fail(
            path, where, f"bad translation_needed {translation!r}; allowed: {sorted(TRANSLATION_RULES)}"
        )
    required = raw["required"]
    if not isinstance(required, bool):
        raise _fail(path, where, f"'required' must be true or false, not {required!r}")

    return TemplateItem(
        key=key,
        name=_text(path, where, "name", raw["name"]),
        instructions=_text(path, where, "instructions", raw["instructions"]),
        why=_text(path, where, "why", raw["why"]),
        accepted_kinds=tuple(kinds),
        sides=sides,
        translation_needed=translation,
        required=required,
    )


def load_template_file(path: str | Path) -> ChecklistTemplate:
    """Reads and validates one template file; raises ValueError naming the file and the problem."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"checklist template {path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checklist template {path.name}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise _fail(path, "top level", "must be a JSON object")
    missing = sorted(_TEMPLATE_FIELDS - set(raw))
    if missing:
        raise _fail(path, "top level", f"missing field(s) {missing}")
    unknown = sorted(set(raw) - _TEMPLATE_FIELDS)
    if unknown:
        raise _fail(path, "top level", f"unknown field(s) {unknown}")
    matter_type = raw["matter_type"]
    if not isinstance(matter_type, str) or not matter_type.strip():
        raise _fail(path, "top level", "'matter_type' must be a non-empty string")
    source = raw["source"]
    if not isinstance(source, str) or not source.strip():
        raise _fail(path, "top level", "'source' must name the USCIS instructions it summarises")
    raw_items = raw["items"]
    if not isinstance(raw_items, list) or not raw_items:
        raise _fail(path, "top level", "'items' must be a non-empty list")

    items: list[TemplateItem] = []
    seen: set[str] = set()
    for index, raw_item in enumerate(raw_items):
        item = _item(path, index, raw_item)
        if item.key in seen:
            raise _fail(path, f"item '{item.key}'", "duplicate key")
        seen.add(item.key)
        items.append(item)

    return ChecklistTemplate(
        matter_type=matter_type.strip(),
        title=_text(path, "top level", "title", raw["title"]),
        source=source.strip(),
        items=tuple(items),
    )


def _normalise(matter_type: str) -> str:
    wanted = matter_type.strip().upper() if isinstance(matter_type, str) else matter_type
    if wanted not in MATTER_TYPES:
        raise ValueError(
            f"unknown matter type {matter_type!r}; known types: {', '.join(MATTER_TYPES)}"
        )
    return wanted


@lru_cache(maxsize=None)
def _load_cached(matter_type: str) -> ChecklistTemplate:
    path = TEMPLATES_DIR / f"{matter_type}.json"
    template = load_template_file(path)
    if template.matter_type != matter_type:
        raise _fail(path, "top level", f"matter_type {template.matter_type!r} does not match file name")
    return template


def load_template(matter_type: str) -> ChecklistTemplate:
    """Returns the default checklist for a matter type such as "I-130" (case-insensitive); cached.

    Raises ValueError for an unknown matter type or an invalid template file.
    """
    return _load_cached(_normalise(matter_type))


def all_templates() -> dict[str, ChecklistTemplate]:
    """Returns every default checklist, keyed by matter type, in MATTER_TYPES order."""
    return {matter_type: load_template(matter_type) for matter_type in MATTER_TYPES}
