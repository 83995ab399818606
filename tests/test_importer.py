"""Import format v1 against a real, migrated database (SQLite by default, PostgreSQL with TEST_DATABASE_URL)."""
from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services import invoices as inv_service
from services.db import Base, make_engine, make_sessionmaker, utcnow
from services.importer import Problem, apply, import_file, validate
from services.models import AuditEvent, ChecklistItem, Client, ContactPoint, Invoice, Matter, Payment
from services.phones import normalize_phone
from services.receipts import is_known_prefix, normalize_receipt
from services.templates import load_template

DEMO = Path(__file__).resolve().parent.parent / "services" / "demo_data.json"


@pytest.fixture
def _db(settings):
    """A sessionmaker over the shared migrated database, emptied for this test."""
    engine = make_engine(settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _demo() -> dict:
    return json.loads(DEMO.read_text(encoding="utf-8"))


def _row_counts(session) -> dict[str, int]:
    return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def _import(Session, data: dict):
    with Session.begin() as session:
        problems = validate(data, session)
        assert problems == []
        return apply(session, data)


def _write(tmp_path, data) -> Path:
    path = tmp_path / "import.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_demo_file_validates_and_applies(_db):
    with _db.begin() as session:
        result = import_file(session, DEMO)
    assert not isinstance(result, list), result
    assert result.created["clients"] == 5
    assert result.created["matters"] == 6
    assert result.created["invoices"] == 5
    assert result.created["payments"] == 4
    assert result.created["contact_points"] == 5
    assert not any(result.updated.values())

    with _db() as session:
        maria = session.scalar(select(Client).where(Client.first_name == "María"))
        daniel = session.scalar(select(Client).where(Client.first_name == "Daniel"))
        assert maria.preferred_language == "es" and maria.date_of_birth.isoformat() == "1988-03-21"
        assert maria.fields == {"interpreter_needed": True, "referral": "Radio Bilingüe"}
        # A family shares one phone; the date of birth tells them apart.
        shared = session.scalars(select(ContactPoint).where(ContactPoint.address == "+15555550101")).all()
        assert {cp.client_id for cp in shared} == {maria.id, daniel.id}
        assert all(cp.kind == "phone" and cp.consent and cp.consent_at is not None for cp in shared)

        jose = session.scalar(select(Client).where(Client.last_name == "Hernández"))
        assert sorted(m.type for m in jose.matters) == ["I-485", "I-765"]
        i485 = next(m for m in jose.matters if m.type == "I-485")
        assert i485.receipt_number == "IOE0912345678" and i485.stage == "receipt_received"
        assert i485.deadlines[0].due.year == 2027

        i130 = maria.matters[0]
        statuses = [item.status for item in i130.checklist]
        assert statuses.count("rejected") == 1 and statuses.count("required") >= 1
        rejected = next(item for item in i130.checklist if item.status == "rejected")
        assert rejected.reason

        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1
        event = session.scalar(select(AuditEvent))
        assert (event.actor, event.action, event.subject) == ("import", "import_applied", "import")


def test_second_import_changes_nothing(_db):
    _import(_db, _demo())
    with _db() as session:
        before = _row_counts(session)
        stamps = {c.external_id: c.updated_at for c in session.scalars(select(Client))}
        versions = {i.number: (i.version, i.status) for i in session.scalars(select(Invoice))}

    result = _import(_db, _demo())
    assert not result.changed
    assert not any(result.created.values()) and not any(result.updated.values())

    with _db() as session:
        assert _row_counts(session) == before
        assert {c.external_id: c.updated_at for c in session.scalars(select(Client))} == stamps
        assert {i.number: (i.version, i.status) for i in session.scalars(select(Invoice))} == versions


def test_import_file_twice_through_the_file_door(_db, tmp_path):
    path = _write(tmp_path, _demo())
    with _db.begin() as session:
        assert import_file(session, path).changed
    with _db.begin() as session:
        again = import_file(session, path)
        assert not again.changed
    with _db() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_a_change_updates_in_place_bumps_the_version_and_is_audited(_db):
    _import(_db, _demo())
    data = _demo()
    maria_matter = data["matters"][0]
    maria_matter["stage"] = "attorney_review"
    maria_matter["invoices"][0]["lines"].append({"description": "Courier", "amount": "30.00"})
    maria_matter["invoices"][1]["payments"].append({"amount": "675.00", "paid_at": "2026-12-01T09:00:00-06:00"})
    data["clients"][0]["email"] = "maria.l@example.com"

    result = _import(_db, data)
    assert result.updated["matters"] == 1
    assert result.updated["invoices"] == 2
    assert result.updated["clients"] == 1
    assert result.created["payments"] == 1
    assert result.created["matters"] == 0 and result.created["clients"] == 0

    with _db() as session:
        inv1001 = session.scalar(select(Invoice).where(Invoice.number == "INV-1001"))
        inv1002 = session.scalar(select(Invoice).where(Invoice.number == "INV-1002"))
        assert inv1001.version == 2 and inv1001.total == Decimal("1650.00")
        assert inv1002.version == 1 and inv1002.status == "paid"
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
        matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        assert matter.stage == "attorney_review"


def test_bad_file_lists_every_problem_and_imports_nothing(_db, tmp_path):
    data = _demo()
    data["clients"][0]["phone"] = "555-01"  # too short to be a phone number
    data["clients"][1]["external_id"] = "CL-1001"  # duplicate
    data["matters"][2]["receipt_number"] = "IOE-12345"
    data["matters"][1]["stage"] = "waiting_forever"
    data["matters"][3]["client"] = "CL-9999"
    inv = data["matters"][0]["invoices"][1]
    inv["payments"] = [{"amount": "700.00", "paid_at": "2026-11-25T12:00:00Z"}]
    data["matters"][0]["invoices"][0]["lines"][0]["amount"] = "-5"
    data["unexpected"] = 1

    path = _write(tmp_path, data)
    with _db.begin() as session:
        problems = import_file(session, path)
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    paths = {p.path for p in problems}
    assert {
        "$.unexpected",
        "$.clients[0].phone",
        "$.clients[1].external_id",
        "$.matters[2].receipt_number",
        "$.matters[1].stage",
        "$.matters[3].client",
        "$.matters[0].invoices[1].payments",
        "$.matters[0].invoices[0].lines[0].amount",
    } <= paths, problems
    assert all(p.reason for p in problems)

    with _db() as session:
        counts = _row_counts(session)
    assert all(n == 0 for name, n in counts.items()), counts


def test_problem_paths_inside_nested_lists():
    data = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "2999-01-01",
                         "email": "not-an-email", "preferred_language": "fr", "timezone": "Mars/Olympus",
                         "fields": []}],
            "matters": [{"external_id": "M1", "client": "C1", "type": "I-999",
                         "deadlines": [{"name": "Interview", "due": "15/02/2027"}],
                         "checklist": [{"key": "firm_intake_form", "status": "lost"}],
                         "invoices": [{"number": "X1", "account": "savings", "currency": "usd", "issued": "2026-11-01",
                                       "lines": [], "payments": [{"amount": 5.001, "paid_at": "2026-11-01T10:00:00"}],
                                       "disputed": "no"}]}]}
    paths = {p.path for p in validate(data)}
    assert {
        "$.clients[0].date_of_birth", "$.clients[0].email", "$.clients[0].preferred_language",
        "$.clients[0].timezone", "$.clients[0].fields", "$.matters[0].type",
        "$.matters[0].deadlines[0].due", "$.matters[0].checklist[0].status",
        "$.matters[0].invoices[0].account", "$.matters[0].invoices[0].currency",
        "$.matters[0].invoices[0].lines", "$.matters[0].invoices[0].payments[0].amount",
        "$.matters[0].invoices[0].payments[0].paid_at", "$.matters[0].invoices[0].disputed",
    } <= paths


def test_custom_checklist_item_needs_a_bilingual_label(_db):
    base = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-01-01"}],
            "matters": [{"external_id": "M1", "client": "C1", "type": "I-765",
                         "checklist": [{"key": "retainer_agreement", "status": "required"}]}]}
    assert [p.path for p in validate(base)] == ["$.matters[0].checklist[0].label"]
    base["matters"][0]["checklist"][0]["label"] = {"en": "Signed retainer"}
    assert [p.path for p in validate(base)] == ["$.matters[0].checklist[0].label.es"]
    base["matters"][0]["checklist"][0]["label"]["es"] = "Contrato de representación firmado"
    result = _import(_db, base)
    assert result.created["checklist_items"] == 1
    with _db() as session:
        item = session.scalar(select(ChecklistItem))
        assert item.label == {"en": "Signed retainer", "es": "Contrato de representación firmado"}


def test_json_syntax_error_is_one_problem_with_line_and_column(_db, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"clients": [\n  {"external_id": "C1",}\n]}', encoding="utf-8")
    with _db.begin() as session:
        problems = import_file(session, path)
    assert len(problems) == 1 and problems[0].path == "$"
    assert "line 2" in problems[0].reason and "column" in problems[0].reason


def test_not_an_object_and_nan_are_refused(_db, tmp_path):
    assert validate([1, 2]) == [Problem("$", "must be an object")]
    assert validate({"clients": {}})[0].path == "$.clients"
    path = tmp_path / "nan.json"
    path.write_text('{"clients": [], "matters": [], "x": NaN}', encoding="utf-8")
    with _db.begin() as session:
        problems = import_file(session, path)
    assert [p.path for p in problems] == ["$"]


def test_phone_is_stored_as_e164(_db):
    # 555-01XX numbers are fictional: possible but not "valid" in the numbering plan, so the
    # importer checks is_possible_number and these demo numbers still import.
    assert normalize_phone("(555) 555-0101") == "+15555550101"
    assert normalize_phone("whatsapp:+15555550101") == "+15555550101"
    assert normalize_phone("+52 55 1234 5678") == "+525512345678"
    assert normalize_phone("12") is None
    assert normalize_phone("call me") is None
    data = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz",
                         "date_of_birth": "1990-01-01", "phone": "(555) 555-0101"}]}
    _import(_db, data)
    with _db() as session:
        assert session.scalar(select(ContactPoint.address)) == "+15555550101"


def test_receipt_numbers_are_normalised():
    assert normalize_receipt("ioe-0912 345678") == "IOE0912345678"
    assert normalize_receipt("IOE091234567") is None
    assert normalize_receipt("IOE09123456789") is None
    assert normalize_receipt("I0E0912345678") is None
    assert normalize_receipt(None) is None
    assert is_known_prefix("EAC2212345678") and not is_known_prefix("ZZZ2212345678")


def test_unknown_receipt_prefix_warns_but_imports(_db):
    data = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-01-01"}],
            "matters": [{"external_id": "M1", "client": "C1", "type": "I-765", "receipt_number": "zzz 091 234 5678"}]}
    result = _import(_db, data)
    assert [w.path for w in result.warnings] == ["$.matters[0].receipt_number"]
    with _db() as session:
        assert session.scalar(select(Matter.receipt_number)) == "ZZZ0912345678"


def test_default_template_checklist_applied_once(_db):
    _import(_db, _demo())
    expected = [item.key for item in load_template("I-765").items]
    with _db() as session:
        daniel_matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-2002"))
        assert [item.key for item in daniel_matter.checklist] == expected
        assert [item.position for item in daniel_matter.checklist] == list(range(len(expected)))
        assert {item.status for item in daniel_matter.checklist} == {"required"}
        # Staff mark one item received; a re-import without "checklist" leaves it alone.
        daniel_matter.checklist[0].status = "received"
        session.commit()
    assert not _import(_db, _demo()).changed
    with _db() as session:
        assert session.scalar(select(Matter).where(Matter.external_id == "MAT-2002")).checklist[0].status == "received"


def test_matter_may_refer_to_a_client_already_stored(_db):
    _import(_db, _demo())
    data = {"matters": [{"external_id": "MAT-3001", "client": "CL-1004", "type": "I-765"}]}
    assert [p.path for p in validate(data)] == ["$.matters[0].client"]  # no session: not in the file
    result = _import(_db, data)
    assert result.created["matters"] == 1


def test_balances_are_exact_decimals(_db):
    _import(_db, _demo())
    with _db() as session:
        by_number = {i.number: i for i in session.scalars(select(Invoice))}
        inv1001, inv1002, inv1005 = by_number["INV-1001"], by_number["INV-1002"], by_number["INV-1005"]
        assert inv1001.total == Decimal("1620.00") and isinstance(inv1001.total, Decimal)
        assert inv_service.paid_amount(inv1001) == Decimal("600.00")
        assert inv_service.balance(inv1001) == Decimal("1020.00")
        assert inv1001.status == "partial" and inv1001.blocks_stage == "ready_to_file"
        assert inv1001.lines[0] == {"description": "Attorney fee: I-130 petition (flat fee)", "amount": "1500.00"}
        assert (inv1002.account, inv1002.status, inv1002.total) == ("trust", "unpaid", Decimal("675.00"))
        assert by_number["INV-1003"].status == "paid" and by_number["INV-1004"].status == "paid"
        assert inv1005.status == "disputed"

        maria = session.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        open_ = inv_service.open_invoices(session, maria.id)
        assert [i.number for i in open_] == ["INV-1002", "INV-1001"]  # earliest due first
        assert inv_service.owed(open_) == {"USD": Decimal("1695.00")}
        rosa = session.scalar(select(Matter).where(Matter.external_id == "MAT-2006"))
        rosa_open = inv_service.open_invoices(session, rosa.id)
        assert inv_service.owed(rosa_open) == {}
        assert inv_service.disputed(rosa_open) == {"USD": Decimal("995.00")}
        assert session.scalar(select(func.sum(Payment.amount))) == Decimal("3810.00")


def test_invoice_currency_defaults_to_usd(_db):
    data = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-01-01"}],
            "matters": [{"external_id": "M1", "client": "C1", "type": "I-765",
                         "invoices": [{"number": "N1", "account": "operating", "issued": "2026-11-01",
                                       "lines": [{"description": "Fee", "amount": 250}],
                                       "payments": [{"amount": "250", "paid_at": "2026-11-02T10:00:00+00:00"}]}]}]}
    _import(_db, data)
    with _db() as session:
        inv = session.scalar(select(Invoice))
        assert (inv.currency, inv.status, inv.lines[0]["amount"]) == ("USD", "paid", "250.00")
        assert inv.payments[0].currency == "USD"
        assert inv.payments[0].source_ref == "N1:2026-11-02T10:00:00+00:00:250.00"
    assert not _import(_db, data).changed


def test_amounts_never_go_through_float():
    assert inv_service.invoice_total([{"amount": "0.10"}, {"amount": "0.20"}]) == Decimal("0.30")
    data = {"clients": [{"external_id": "C1", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-01-01"}],
            "matters": [{"external_id": "M1", "client": "C1", "type": "I-765",
                         "invoices": [{"number": "N1", "account": "operating", "issued": "2026-11-01",
                                       "lines": [{"description": "a", "amount": 0.1}, {"description": "b", "amount": "0.2"},
                                                 {"description": "c", "amount": "1e3"}, {"description": "d", "amount": True},
                                                 {"description": "e", "amount": "12.345"}]}]}]}
    problems = {p.path: p.reason for p in validate(data)}
    base = "$.matters[0].invoices[0].lines"
    assert set(problems) == {f"{base}[2].amount", f"{base}[3].amount", f"{base}[4].amount"}
    assert "2 decimal places" in problems[f"{base}[4].amount"]


def test_payment_above_total_counts_payments_stored_from_other_sources(_db):
    _import(_db, _demo())
    with _db.begin() as session:
        inv = session.scalar(select(Invoice).where(Invoice.number == "INV-1002"))
        session.add(Payment(invoice=inv, amount=Decimal("600.00"), source="stripe", source_ref="cs_test_1",
                            paid_at=utcnow()))
    data = _demo()
    data["matters"][0]["invoices"][1]["payments"] = [{"amount": "100.00", "paid_at": "2026-11-30T10:00:00Z"}]
    with _db() as session:
        problems = validate(data, session)
    assert [p.path for p in problems] == ["$.matters[0].invoices[1].payments"]


def test_stored_invoice_cannot_move_to_another_matter(_db):
    _import(_db, _demo())
    data = copy.deepcopy(_demo())
    moved = data["matters"][0]["invoices"].pop(1)
    data["matters"][1]["invoices"] = [moved]
    with _db() as session:
        problems = validate(data, session)
    assert [p.path for p in problems] == ["$.matters[1].invoices[0].number"]
