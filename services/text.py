"""Small text helpers shared by understanding and date parsing."""
from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = re.compile(r"['’`´]")
_NOT_WORD = re.compile(r"[^a-z0-9\s]+")
_NOT_LETTER = re.compile(r"[^a-z\s]+")


def strip_accents(text: str) -> str:
    """'Cuánto café' → 'Cuanto cafe' (clients often type without accents; compare without them)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str, digits: bool = True) -> list[str]:
    """Lowercase, accent-less words of a chat message ("What's" → "whats"); punctuation and emoji dropped."""
    plain = _APOSTROPHES.sub("", strip_accents(text.lower()))
    return (_NOT_WORD if digits else _NOT_LETTER).sub(" ", plain).split()
