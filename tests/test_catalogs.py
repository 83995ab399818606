"""Both languages for real: every client-facing string is in the catalogs and translated."""
from __future__ import annotations

import re

from babel.messages.pofile import read_po

from locales.sync import LOCALES, extract
from services.i18n import Translator
from services.templates import all_templates

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _catalog(language: str):
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=language)


def test_every_string_in_the_code_is_in_both_catalogs():
    in_code = {m.id for m in extract() if m.id}
    for language in ("en", "es"):
        in_catalog = {m.id for m in _catalog(language) if m.id}
        missing = in_code - in_catalog
        assert not missing, f"{language}: run `make locales` and translate: {sorted(missing)[:5]}"


def test_every_message_is_translated_and_keeps_its_placeholders():
    for language in ("en", "es"):
        for message in _catalog(language):
            if not message.id:
                continue
            assert message.string, f"{language}: no translation for {message.id!r}"
            assert not message.fuzzy, f"{language}: fuzzy translation for {message.id!r}"
            assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), (
                f"{language}: placeholders differ in {message.id!r}")


def test_spanish_is_spanish_and_formal():
    es = _catalog("es")
    translated = [m for m in es if m.id]
    same = [m.id for m in translated
            if m.string == m.id and len(re.findall(r"[A-Za-z]{3,}", PLACEHOLDER.sub("", m.id))) > 1]
    assert not same, f"left in English: {same[:3]}"
    informal = [m.string for m in translated if re.search(r"\b(tú|tu caso|puedes|envía|escríbeme|tienes)\b", m.string, re.I)]
    assert not informal, f"use usted, not tú: {informal[:3]}"
    assert Translator.for_language("es").gettext("Talk to a person") == "Hablar con una persona"


def test_checklist_templates_exist_in_both_languages():
    for template in all_templates().values():
        for item in template.items:
            for text in (item.name, item.instructions, item.why):
                assert text["en"].strip() and text["es"].strip() and text["en"] != text["es"]
