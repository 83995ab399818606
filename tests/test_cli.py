"""The `puente` command line: chat through the engine, import with refusal, audit verify."""
from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from services.models import AuditEvent, Client, Invoice, Matter
from web.cli import cli


def _run(settings, args, input=None):
    env = {"DATABASE_URL": settings.database_url, "PUENTE_STORAGE_DIR": str(settings.storage_dir), "REDIS_URL": ""}
    return CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)


def test_chat_json_reports_language_intent_dialog_and_replies(demo, settings):
    result = _run(settings, ["chat", "--from", "+1 (555) 555-0101", "--json"], input="hola\n21/03/1988\ncuánto debo?\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["intent"] for line in lines][2] == "balance"
    assert lines[0]["dialog"] == "verify" and lines[0]["language"] == "es"
    assert "$1,020.00" in lines[2]["replies"][0]["text"]
    assert lines[1]["replies"][-1]["choices"]  # the menu after verification


def test_chat_reports_the_intent_even_when_nothing_is_sent(demo, settings):
    _run(settings, ["chat", "--from", "+15555550103", "STOP"])
    result = _run(settings, ["chat", "--from", "+15555550103", "--json", "what do I owe?"])
    line = json.loads(result.output)
    assert line["intent"] == "balance" and line["replies"] == []


def test_import_refuses_a_bad_file_whole_and_lists_every_problem(settings, tmp_path):
    bad = {
        "clients": [{"external_id": "CL-9", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-02-30",
                     "phone": "12", "preferred_language": "es"}],
        "matters": [{"external_id": "MAT-9", "client": "CL-9", "type": "I-130", "stage": "nowhere",
                     "receipt_number": "IOE12", "invoices": [{"number": "INV-9", "account": "savings", "currency": "USD",
                                                              "issued": "2026-11-01", "lines": [{"description": "Fee", "amount": "100.00"}],
                                                              "payments": [{"amount": "150.00", "paid_at": "2026-11-02T10:00:00Z"}]}]}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = _run(settings, ["import", str(path)])
    assert result.exit_code == 1
    for where in ("$.clients[0].date_of_birth", "$.clients[0].phone", "$.matters[0].stage", "$.matters[0].receipt_number",
                  "$.matters[0].invoices[0].account"):
        assert where in result.output
    from services.db import make_engine, make_sessionmaker

    with make_sessionmaker(make_engine(settings.database_url))() as s:
        assert s.scalar(select(func.count()).select_from(Client)) == 0
        assert s.scalar(select(func.count()).select_from(Matter)) == 0
        assert s.scalar(select(func.count()).select_from(Invoice)) == 0


def test_import_twice_changes_nothing_and_audit_chain_verifies(settings):
    from services.demo import DEMO_FILE

    first = _run(settings, ["import", str(DEMO_FILE)])
    assert first.exit_code == 0, first.output
    from services.db import make_engine, make_sessionmaker

    Session = make_sessionmaker(make_engine(settings.database_url))
    with Session() as s:
        counts = (s.scalar(select(func.count()).select_from(Client)), s.scalar(select(func.count()).select_from(AuditEvent)))
    assert _run(settings, ["import", str(DEMO_FILE)]).exit_code == 0
    with Session() as s:
        assert (s.scalar(select(func.count()).select_from(Client)), s.scalar(select(func.count()).select_from(AuditEvent))) == counts
    ok = _run(settings, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    with Session.begin() as s:  # tamper with history: the chain must notice
        event = s.scalar(select(AuditEvent).order_by(AuditEvent.id))
        event.details = {**event.details, "tampered": True}
    broken = _run(settings, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN" in broken.output


def test_chat_attach_stores_the_file_fingerprinted(demo, settings, tmp_path):
    import hashlib

    from services.models import Document
    from tests.samples import photo as sample_photo

    photo = tmp_path / "acta.jpg"
    photo.write_bytes(sample_photo())
    result = _run(settings, ["chat", "--from", "+15555550101", "--attach", str(photo), "--json", "aquí está el acta"])
    line = json.loads(result.output)
    # Not verified yet: the file is kept, and filed to the case once the sender confirms who they are.
    assert line["replies"][0]["text"] == "Recibimos su archivo. Lo agregaremos a su caso en cuanto confirmemos su identidad."
    from services.db import make_engine, make_sessionmaker

    with make_sessionmaker(make_engine(settings.database_url))() as s:
        doc = s.scalar(select(Document))
    assert doc.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest() and doc.size == photo.stat().st_size
    assert demo.vault.get(doc.storage_key, doc.wrapped_key, doc.key_id, doc.sha256) == photo.read_bytes()
    assert photo.read_bytes()[:64] not in (settings.storage_dir / doc.storage_key[:2] / doc.storage_key).read_bytes()
    assert "acta" not in doc.storage_key and doc.status == "valid" and doc.mime == "image/jpeg"


def test_firm_command_records_whatsapp_templates(settings):
    result = _run(settings, ["firm", "--whatsapp-template", "reply:es:HX" + "1" * 32, "--whatsapp-template",
                             "reply:en:HX" + "2" * 32])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["whatsapp_templates"] == {"reply": {"es": "HX" + "1" * 32, "en": "HX" + "2" * 32}}
    assert _run(settings, ["firm", "--whatsapp-template", "reply:fr:nope"]).exit_code != 0
    refused = _run(settings, ["firm", "--whatsapp-template", "marketing:es:HX" + "3" * 32])
    assert refused.exit_code != 0 and "reply, case_update, documents, payment" in refused.output
