"""Reading dates the way people type them in chat (for dates of birth).

Returns every plausible reading: "03/04/1988" is both 3 April and March 4, and the caller
decides (one reading matching the record is enough; if none matches, ask with the month name).
"""
from __future__ import annotations

import re
from datetime import date

from services.text import strip_accents

MONTHS = {
    # English
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
    "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    # Spanish
    "enero": 1, "ene": 1, "febrero": 2, "marzo": 3, "abril": 4, "abr": 4, "mayo": 5, "junio": 6,
    "julio": 7, "agosto": 8, "ago": 8, "septiembre": 9, "setiembre": 9, "set": 9, "octubre": 10,
    "noviembre": 11, "diciembre": 12, "dic": 12,
}
_FILLER = {"de", "del", "of", "the", "el", "th", "st", "nd", "rd"}


def _plain(text: str) -> str:
    return strip_accents(text.lower())


def _year(value: str, today: date) -> int | None:
    year = int(value)
    if len(value) == 2:
        year += 1900 if year > today.year % 100 else 2000
    elif len(value) != 4:
        return None
    return year


def _make(y: int | None, m: int, d: int, today: date) -> date | None:
    if y is None:
        return None
    try:
        value = date(y, m, d)
    except ValueError:
        return None
    return value if date(1900, 1, 1) <= value <= today else None


def parse_date_candidates(text: str, today: date | None = None) -> list[date]:
    """All readings of a date in `text` (empty when it holds no date)."""
    today = today or date.today()
    plain = _plain(text).strip()
    found: list[date] = []

    def add(value: date | None) -> None:
        if value and value not in found:
            found.append(value)

    # ISO-like: 1988-03-21, 1988/3/21
    m = re.search(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", plain)
    if m:
        add(_make(int(m.group(1)), int(m.group(2)), int(m.group(3)), today))
        return found
    # Numeric: 21/03/1988, 3-21-88, 21.03.1988 — day/month order is ambiguous.
    m = re.search(r"\b(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{2}|\d{4})\b", plain)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), _year(m.group(3), today)
        add(_make(y, b, a, today))  # day first (how most of Latin America writes it)
        add(_make(y, a, b, today))  # month first (US)
        return found
    # With a month name, in any order: "21 de marzo de 1988", "March 21, 1988", "21 Mar 88".
    words = [w for w in re.findall(r"[a-z]+|\d+", plain) if w not in _FILLER]
    month = next((MONTHS[w] for w in words if w in MONTHS), None)
    numbers = [w for w in words if w.isdigit()]
    if month and len(numbers) >= 2:
        day_s = next((n for n in numbers if len(n) <= 2 and 1 <= int(n) <= 31), None)
        year_s = next((n for n in numbers if len(n) == 4), None)
        if year_s is None:
            rest = [n for n in numbers if n != day_s]
            year_s = rest[0] if rest and len(rest[0]) == 2 else None
        if day_s and year_s:
            add(_make(_year(year_s, today), month, int(day_s), today))
    return found


def looks_like_date(text: str) -> bool:
    """True when the text seems to be an attempt at a date, even one we cannot read."""
    plain = _plain(text)
    return bool(re.search(r"\d{1,4}\s*[-/.]\s*\d{1,2}", plain)) or (
        any(w in MONTHS for w in re.findall(r"[a-z]+", plain)) and bool(re.search(r"\d", plain))
    )
