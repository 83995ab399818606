"""The firm's settings row (created with defaults on first use)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import FirmSettings


def get_firm(session: Session) -> FirmSettings:
    firm = session.scalar(select(FirmSettings).order_by(FirmSettings.id).limit(1))
    if firm is None:
        firm = FirmSettings(name="Law Office", payment_instructions={}, settings={})
        session.add(firm)
        session.flush()
    return firm
