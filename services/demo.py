"""Demo data for the embedded default: a firm, and clients and matters from demo_data.json."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from services.firm import get_firm
from services.importer import ImportResult, import_file

DEMO_FILE = Path(__file__).resolve().parent / "demo_data.json"


def seed(session: Session) -> ImportResult:
    """Sets the demo firm's details and imports the demo clients (idempotent)."""
    firm = get_firm(session)
    firm.name = "Puente Demo Law Office"
    firm.phone = "+1 (555) 555-0100"
    firm.email = "oficina@example.com"
    firm.timezone = "America/Chicago"
    firm.payment_instructions = {
        "en": "Pay by bank transfer or card at our office, or call us at +1 (555) 555-0100. Write your invoice number as the reference.",
        "es": "Puede pagar por transferencia bancaria o con tarjeta en nuestra oficina, o llamarnos al +1 (555) 555-0100. Escriba el número de factura como referencia.",
    }
    result = import_file(session, DEMO_FILE)
    if isinstance(result, list):  # the shipped file is checked by the tests; this is a packaging error
        raise RuntimeError("demo data refused: " + "; ".join(f"{p.path}: {p.reason}" for p in result))
    return result


DEMO_STAFF = (
    # (email, name, role, password, language, assigned matters)
    ("admin@example.com", "Ana Admin", "admin", "puente-demo-admin", "es", ()),
    ("paralegal@example.com", "Pablo Paralegal", "paralegal", "puente-demo-paralegal", "es", ("MAT-2001", "MAT-2006")),
)


def seed_staff(session: Session) -> None:
    """Demo console accounts (idempotent). Two-step sign-in is set up at the first sign-in, as for everyone."""
    from sqlalchemy import select

    from services.models import Matter, StaffUser
    from services.staff_auth import create_user

    for email, name, role, password, language, matters in DEMO_STAFF:
        if session.scalar(select(StaffUser).where(StaffUser.email == email)):
            continue
        user = create_user(session, email, name, role, password, language)
        for external_id in matters:
            matter = session.scalar(select(Matter).where(Matter.external_id == external_id))
            if matter is not None:
                matter.staff.append(user)
