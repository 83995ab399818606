"""Translations and locale-aware formatting for client-facing text.

Catalogs are the gettext .po files under locales/ (managed with Babel). A Translator is bound
to one language and passed down with the conversation; there is no global `_`.
"""
from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date as _babel_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency as _babel_currency

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
LANGUAGES = ("en", "es")
# Babel locales for formatting: US English; Spanish as written in the US (neutral Latin American).
FORMAT_LOCALES = {"en": "en_US", "es": "es_US"}


def N_(msgid: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return msgid


@lru_cache(maxsize=None)
def load_catalog(language: str, locales_dir: Path = LOCALES_DIR) -> dict[str, str]:
    """msgid → msgstr for one language (empty translations are left out, so they fall back)."""
    path = locales_dir / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    table: dict[str, str] = {}
    for message in catalog:
        if message.id and message.string and not message.fuzzy:
            key = message.id if isinstance(message.id, str) else message.id[0]
            table[key] = message.string if isinstance(message.string, str) else message.string[0]
    return table


@dataclass(frozen=True)
class Translator:
    """Translates and formats for one language."""

    language: str
    catalog: dict[str, str]

    @classmethod
    def for_language(cls, language: str) -> "Translator":
        language = language if language in LANGUAGES else "es"
        return cls(language, load_catalog(language))

    def gettext(self, msgid: str, **params) -> str:
        text = self.catalog.get(msgid, msgid)
        return text % params if params else text

    _ = gettext

    @property
    def locale(self) -> str:
        return FORMAT_LOCALES[self.language]

    def money(self, amount: Decimal, currency: str = "USD") -> str:
        """$1,000.00 in either language (US Spanish writes amounts the same way)."""
        return _babel_currency(amount, currency, locale=self.locale)

    def date(self, value: dt.date | dt.datetime) -> str:
        """'January 10, 2027' / '10 de enero de 2027'."""
        if isinstance(value, dt.datetime):
            value = value.date()
        return _babel_date(value, format="long", locale=self.locale)
