"""Redaction of personal identifiers from free text before it leaves Puente (AI prompts).

`redact(text)` replaces what identifies a person or a case with a placeholder, in this order
(the more specific a pattern, the earlier it runs, so a receipt number is never half-read as a
phone number):

    [EMAIL]     maria.lopez@example.com
    [SSN]       123-45-6789, 123 45 6789, or 9 digits after "SSN" / "seguro social"
    [RECEIPT]   IOE0912345678, IOE-091-234-5678, ioe 0912345678 (3 letters + 10 digits)
    [A-NUMBER]  A123456789, A-123-456-789, A# 12345678, "A-number: 123456789" (8-9 digits)
    [DATE]      21/03/1988, 1988-03-21, 21 de marzo de 1988, marzo 21, 1988, May 14, 1990, 14th of May
    [PASSPORT]  the 6-9 character number (letters and at least one digit) next to passport/pasaporte
    [PHONE]     +1 (555) 555-0101, 555.555.0101, +52 1 55 1234 5678, 55 1234 5678, 555-0101
    [NUMBER]    any other long number: 8+ digits in one run or split by dashes/dots (an A-number
                written without its "A", a bank account), or 13+ digits however split (a card)

It over-redacts rather than under-redacts, but leaves what staff and a model need to read:
amounts ($1,020.00), counts ("3 documentos"), form names (I-130) and invoice numbers (INV-1001).
Placeholders hold no digits, so a second pass changes nothing.
"""
from __future__ import annotations

import re

EMAIL, SSN, RECEIPT, A_NUMBER, DATE, PHONE, PASSPORT, NUMBER = (
    "[EMAIL]", "[SSN]", "[RECEIPT]", "[A-NUMBER]", "[DATE]", "[PHONE]", "[PASSPORT]", "[NUMBER]")

# A number must not be glued to a longer token: a letter, digit or joiner before, a digit after.
_START = r"(?<![\w$€£.,/#+-])"
_END = r"(?![\w/]|[.,-]\d)"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)

# Not a slice of a longer run of digit groups ("044 55 1234 5678" is a phone number).
_SSN = re.compile(_START + r"(?<!\d[\s.-])\d{3}[ -]\d{2}[ -]\d{4}(?![\w/]|[\s.,-]\d)")
_SSN_CONTEXT = re.compile(
    r"\b(?:ssn|social security(?: number| no\.?| #)?|(?:n[uú]mero de )?seguro social)\b"
    r"[\s:#.-]*(?:es |is )?(\d{9}|\d{3}[ -]?\d{2}[ -]?\d{4})" + _END,
    re.IGNORECASE)

# Three letters, then ten digits that may be split by single spaces or dashes.
_RECEIPT = re.compile(r"(?<![\w-])([A-Za-z]{3})([\s-]?)((?:\d[\s-]?){9}\d)" + _END)
_RECEIPT_PREFIXES = frozenset({"EAC", "VSC", "WAC", "CSC", "LIN", "NSC", "SRC", "TSC", "MSC", "NBC", "IOE", "YSC"})

# "A" then 8-9 digits; a lower-case "a" only when attached ("a123456789"), since "a" is also a Spanish word.
_A_NUMBER = re.compile(r"(?<![\w-])(?:A[ \t]?#?[ \t]?-?[ \t]?|a#?-?)(?:\d[ \t-]?){7,8}\d" + _END)
_A_NUMBER_CONTEXT = re.compile(
    r"(\b(?:a[- ]?(?:number|no\.?|#)|alien(?: registration)? (?:number|no\.?|#)|uscis (?:number|no\.?|#)|uscis#"
    r"|n[uú]mero (?:a|de extranjero|de registro de extranjero|de uscis))"
    r"[\s:#.-]*(?:es |is )?)[Aa]?[\s#-]*(?:\d[ \t-]?){7,8}\d" + _END,
    re.IGNORECASE)

_MONTHS = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
    r"|ene|abr|ago|dic)\.?"
)
_DAY = r"(?:[0-2]?\d|3[01])(?:st|nd|rd|th|º|°|ro|er|o)?"
_YEAR = r"(?:1[89]\d\d|2[01]\d\d)"
_DATE_PATTERNS = [
    re.compile(_START + r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}" + _END),                     # 1988-03-21
    re.compile(_START + r"\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})" + _END),            # 21/03/1988, 3-21-88
    # 21 de marzo de 1988, 21 marzo 1988, 14th of May 1990, 1° de mayo
    re.compile(r"\b" + _DAY + r"\s+(?:de\s+|of\s+)?" + _MONTHS + r"(?:,?\s+(?:de(?:l)?\s+)?" + _YEAR + r")?\b",
               re.IGNORECASE),
    # marzo 21 88
    re.compile(r"\b" + _MONTHS + r"\s+" + _DAY + r"\s+\d{2}\b", re.IGNORECASE),
    # marzo 21, 1988, May 14, 1990, Jan. 5
    re.compile(r"\b" + _MONTHS + r"\s+" + _DAY + r"(?:,?\s+(?:de(?:l)?\s+)?" + _YEAR + r")?\b", re.IGNORECASE),
    # marzo de 1988, March 1988
    re.compile(r"\b" + _MONTHS + r",?\s+(?:de(?:l)?\s+)?" + _YEAR + r"\b", re.IGNORECASE),
    re.compile(_START + r"\d{1,2}/\d{4}" + _END),                                      # 03/1988
    # 02-ago-1985, 21/mar/1988, 21mar1988, 1988-mar-21 (a month name joined to digits)
    re.compile(r"(?<![\w-])" + _DAY + r"[-/. ]?" + _MONTHS + r"[-/. ]?(?:" + _YEAR + r"|\d{2})(?![\w-])", re.IGNORECASE),
    re.compile(r"(?<![\w-])" + _YEAR + r"[-/. ]" + _MONTHS + r"[-/. ]" + _DAY + r"(?![\w-])", re.IGNORECASE),
    # 21 03 1988 (digits split by spaces)
    re.compile(_START + r"(?:[0-2]?\d|3[01]) (?:0?[1-9]|1[0-2]) (?:" + _YEAR + r"|\d{2})" + _END),
]

# Phone numbers: an optional country code (+52, 0052, +1), an optional area code in brackets,
# then digit groups split by single spaces, dots or dashes. How many digits decides.
_PHONE = re.compile(
    r"(?<![\w$€£.,/#+-])"
    r"(?:(?:\+|\b00)\d{1,3}[\s.-]?)?"
    r"(?:\(\d{1,4}\)[\s.-]?)?"
    r"\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    + _END
)
_LOCAL_PHONE = re.compile(r"\d{3}[-.]\d{4}")
_YEARS = re.compile(r"(?:19|20)\d\d[-.](?:19|20)\d\d")
_LONG_NUMBER = re.compile(r"(?<![\w-])\d{8,}(?!\w)")

_PASSPORT_WORD = r"(?:passport|pasaporte)"
# The number itself: 6-9 letters and digits with at least one digit (US: 9 digits; Mexico: a letter + 8 digits).
_PASSPORT_TOKEN = r"(?=[A-Za-z]*\d)[A-Za-z0-9]{6,9}"
_PASSPORT_AFTER = re.compile(
    r"(\b" + _PASSPORT_WORD + r"\b[^\n;?!\d]{0,40}?)(?<![\w-])(" + _PASSPORT_TOKEN + r")(?![\w-])",
    re.IGNORECASE)
# "pasaporte no. 12345 6789": a number written in groups next to the word
_PASSPORT_SPACED = re.compile(
    r"(\b" + _PASSPORT_WORD + r"\b[^\n;?!\d]{0,40}?)(?<![\w-])([A-Za-z]{0,2}\d{2,5}(?:[ -]\d{2,5}){1,3})(?![\w-])",
    re.IGNORECASE)
_PASSPORT_BEFORE = re.compile(
    r"(?<![\w-])(" + _PASSPORT_TOKEN + r")(?![\w-])(?=[^\n;.?!\d]{0,25}\b" + _PASSPORT_WORD + r"\b)",
    re.IGNORECASE)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _receipt(m: re.Match) -> str:
    letters, gap = m.group(1), m.group(2)
    # "tel 5555550101" is a phone number, not a receipt: a separated prefix must look like one.
    if gap and not (letters.isupper() or letters.upper() in _RECEIPT_PREFIXES):
        return m.group(0)
    return RECEIPT


def _phone(m: re.Match) -> str:
    text = m.group(0)
    count = _digits(text)
    international = text.startswith(("+", "00"))
    if 10 <= count <= 15 or (international and 8 <= count <= 15) or (count == 7 and _LOCAL_PHONE.fullmatch(text)):
        return PHONE
    # "2025 2026" and "2025-2026" (years) stay; "123-456-789" or a card number does not.
    if count >= 13 or (count >= 8 and not any(c.isspace() for c in text) and not _YEARS.fullmatch(text)):
        return NUMBER
    return text


def redact(text: str) -> str:
    """Returns `text` with e-mails, SSNs, receipt numbers, A-numbers, dates, phone, passport and other
    long numbers replaced by placeholders ([EMAIL], [SSN], [RECEIPT], [A-NUMBER], [DATE], [PHONE],
    [PASSPORT], [NUMBER])."""
    if not text:
        return text or ""
    text = _EMAIL.sub(EMAIL, text)
    text = _SSN_CONTEXT.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + SSN, text)
    text = _SSN.sub(SSN, text)
    text = _RECEIPT.sub(_receipt, text)
    text = _A_NUMBER_CONTEXT.sub(lambda m: m.group(1) + A_NUMBER, text)
    text = _A_NUMBER.sub(A_NUMBER, text)
    for pattern in _DATE_PATTERNS:
        text = pattern.sub(DATE, text)
    text = _PASSPORT_SPACED.sub(lambda m: m.group(1) + PASSPORT, text)
    text = _PASSPORT_AFTER.sub(lambda m: m.group(1) + PASSPORT, text)
    text = _PASSPORT_BEFORE.sub(PASSPORT, text)
    text = _PHONE.sub(_phone, text)
    text = _LONG_NUMBER.sub(NUMBER, text)
    return text
