"""Keeps the catalogs in step with the code: extract msgids, update en/es, fill English from the source.

Run `python locales/sync.py` (or `make locales`) after changing a client-facing string, then
translate the new empty Spanish entries in locales/es/LC_MESSAGES/messages.po.
"""
from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
SOURCE_DIRS = ("bot", "dialogs", "services", "channels", "web")
KEYWORDS = {"_": None, "N_": None, "gettext": None}


def extract() -> Catalog:
    """Every client-facing msgid in the code, as a template catalog."""
    template = Catalog(project="Puente", charset="utf-8", fuzzy=False)
    for folder in SOURCE_DIRS:
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python"), ("**/templates/console/**.html", "jinja2.ext:babel_extract")],
            keywords=KEYWORDS, strip_comment_tags=True
        ):
            template.add(message, locations=[(f"{folder}/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def _po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / "messages.po"


def sync() -> dict[str, int]:
    """Writes messages.pot and updates en/es; returns untranslated counts per language."""
    template = extract()
    with (LOCALES / "messages.pot").open("wb") as fh:
        write_po(fh, template, width=100, no_location=True, sort_output=True, omit_header=False)
    missing = {}
    for language in ("en", "es"):
        path = _po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=language)
        else:
            catalog = Catalog(locale=language, project="Puente", charset="utf-8")
        catalog.update(extract(), no_fuzzy_matching=True)  # a fresh template: update() shares Message objects
        for message in catalog:
            if language == "en" and message.id and not message.string:
                message.string = message.id  # English is the source language
        catalog.obsolete.clear()
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, no_location=True, sort_output=True)
        missing[language] = sum(1 for m in catalog if m.id and not m.string)
    return missing


if __name__ == "__main__":
    result = sync()
    print("untranslated:", result)
    sys.exit(0)
