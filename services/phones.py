"""Phone numbers in one canonical form (E.164), whatever way a client or a provider writes them."""
from __future__ import annotations

import phonenumbers

_CHANNEL_PREFIXES = ("whatsapp:", "sms:", "tel:")


def normalize_phone(raw: str, default_region: str = "US") -> str | None:
    """Returns `raw` as E.164 ("+15555550101"), or None when it cannot be a phone number.

    Accepts national forms ("(555) 555-0101" with the default region), international forms and
    Twilio's "whatsapp:+1…" sender addresses.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    lowered = text.lower()
    for prefix in _CHANNEL_PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix):].strip()
            break
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    # is_possible_number (length and shape), not is_valid_number: the fictional 555-01XX range
    # used in demos, tests and documentation is possible but not "valid" in the numbering plan,
    # and a firm's real client numbers must never be refused because the metadata lags behind.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
