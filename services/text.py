"""Small text helpers shared by understanding and date parsing."""
from __future__ import annotations

import unicodedata


def strip_accents(text: str) -> str:
    """'Cuánto café' → 'Cuanto cafe' (clients often type without accents; compare without them)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
