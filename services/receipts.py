"""USCIS receipt numbers (Form I-797C): 3 letters + 10 digits, e.g. IOE0912345678."""
from __future__ import annotations

import re

# Service-centre prefixes in use; an unknown prefix earns a warning, never a refusal.
KNOWN_PREFIXES = frozenset({"EAC", "VSC", "WAC", "CSC", "LIN", "NSC", "SRC", "TSC", "MSC", "NBC", "IOE", "YSC"})

_RECEIPT = re.compile(r"^[A-Z]{3}[0-9]{10}$")  # ASCII digits only (\d also matches other scripts)
_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_receipt(raw: object) -> str | None:
    """Returns the receipt number without spaces or dashes, upper-cased; None when it is not one."""
    if not isinstance(raw, str):
        return None
    candidate = _SEPARATORS.sub("", raw).upper()
    return candidate if _RECEIPT.fullmatch(candidate) else None


def is_known_prefix(receipt: str) -> bool:
    """True when a (normalised) receipt number starts with a known service-centre prefix."""
    return receipt[:3].upper() in KNOWN_PREFIXES
