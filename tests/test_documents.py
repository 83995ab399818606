"""Documents by chat: the checklist walk, checks on arrival, evidence storage, review, scanning."""
from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from services.models import ChecklistItem, Document, Matter, Message, OutgoingEvent
from tests.conftest import Chat
from tests.samples import exif_with_gps, pdf, photo

NEW_CLIENT = {"clients": [{"external_id": "CL-77", "first_name": "Ana", "last_name": "Ruiz", "date_of_birth": "1990-05-14",
                           "phone": "+15555550177", "preferred_language": "es"}],
              "matters": [{"external_id": "MAT-77", "client": "CL-77", "type": "I-130", "stage": "collecting_evidence"}]}
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture
def ana(demo) -> Chat:
    """A verified client whose I-130 checklist is all still to send."""
    from services.importer import apply

    with demo.Session.begin() as session:
        apply(session, NEW_CLIENT)
    chat = Chat(demo, address="+15555550177")
    chat.verify("14/05/1990")
    return chat


def items(rt, matter="MAT-77") -> dict[str, ChecklistItem]:
    with rt.Session() as s:
        mid = s.scalar(select(Matter.id).where(Matter.external_id == matter))
        return {i.key: i for i in s.scalars(select(ChecklistItem).where(ChecklistItem.matter_id == mid))}


def docs(rt, **where) -> list[Document]:
    with rt.Session() as s:
        query = select(Document).order_by(Document.id)
        for key, value in where.items():
            query = query.where(getattr(Document, key) == value)
        return list(s.scalars(query))


def test_a_whole_i130_checklist_walked_in_spanish_by_photos(ana, demo):
    first = ana.say("qué documentos me faltan?")
    assert "Faltan" in first.text or "faltan" in first.text
    assert "Por favor, envíe: Prueba de ciudadanía" in first.text and "Por qué:" in first.text
    seed = 10
    uploadable = [k for k, i in items(demo).items() if k != "passport_photos"]  # photos go in person
    for n, key in enumerate(uploadable):
        seed += 1
        turn = ana.say(files=[(photo(seed=seed), "image/jpeg")])
        assert "Recibido para «" in turn.text, turn.text
        remaining = len(uploadable) - n - 1
        if remaining > 1:
            assert f"Faltan {remaining} documentos:" in turn.text
        elif remaining == 1:
            assert "Falta 1 documento:" in turn.text
        done = ana.say("listo")
        assert "está completo" in done.text
        if remaining:
            assert "Por favor, envíe:" in done.text
    assert "Ya envió todos los documentos de su lista. Nuestro equipo los revisará" in done.text
    assert "en persona" in done.text  # passport photos are handed in person
    state = items(demo)
    assert {k: state[k].status for k in uploadable} == {k: "received" for k in uploadable}
    assert state["passport_photos"].status == "required"
    originals = docs(demo, role="original")
    assert len(originals) == len(uploadable) and all(d.uploader_client_id and d.channel == "sms" for d in originals)
    assert len({d.item_id for d in originals}) == len(uploadable)
    with demo.Session() as s:
        assert s.scalar(select(OutgoingEvent).where(OutgoingEvent.event == "document_uploaded")) is not None
    assert "Documentos: 0 de 11 aceptados." in ana.say("cuál es el estado de mi caso?").text


def test_pages_in_a_row_are_gathered_into_one_staff_pdf_and_originals_kept(ana, demo):
    ana.say("qué me falta")
    pages = [photo(seed=1), photo(seed=2, size=(1200, 1600)), photo(seed=3)]
    ana.say(files=[(pages[0], "image/jpeg")])
    turn = ana.say(files=[(pages[1], "image/jpeg"), (pages[2], "image/jpeg")])
    assert "(3 archivos)" in turn.text and "responda LISTO" in turn.text
    originals = docs(demo, role="original")
    assert [d.sha256 for d in originals] == [hashlib.sha256(p).hexdigest() for p in pages]
    assert len({d.item_id for d in originals}) == 1
    [copy] = [d for d in docs(demo, role="staff_copy") if d.status == "valid"]
    assert copy.item_id == originals[0].item_id and copy.mime == "application/pdf"
    data = demo.vault.get(copy.storage_key, copy.wrapped_key, copy.key_id, copy.sha256)
    assert len(PdfReader(io.BytesIO(data)).pages) == 3
    for d in originals:  # the evidence is byte-for-byte what the client sent
        assert demo.vault.get(d.storage_key, d.wrapped_key, d.key_id, d.sha256) in pages


def test_the_staff_copy_is_oriented_and_carries_no_exif_or_gps(ana, demo):
    ana.say("qué me falta")
    original = photo(seed=4, size=(1600, 1200), exif=exif_with_gps(orientation=6))  # phone held upright
    ana.say(files=[(original, "image/jpeg")])
    [doc] = docs(demo, role="original")
    kept = demo.vault.get(doc.storage_key, doc.wrapped_key, doc.key_id, doc.sha256)
    assert kept == original and Image.open(io.BytesIO(kept)).getexif().get(0x8825)  # evidence keeps its GPS
    [copy] = docs(demo, role="staff_copy")
    page = PdfReader(io.BytesIO(demo.vault.get(copy.storage_key, copy.wrapped_key, copy.key_id, copy.sha256))).pages[0]
    assert page.mediabox.height > page.mediabox.width  # rotated upright, as the client saw it
    [embedded] = page.images
    assert b"GPS" not in embedded.data and b"Exif" not in embedded.data[:200]
    assert embedded.image.getexif().get(0x8825) is None


@pytest.mark.parametrize("data, kind, expected", [
    (b"", "image/jpeg", "El archivo llegó vacío"),
    (b"GIF89a" + b"\x00" * 200, "image/gif", "Solo podemos aceptar fotos (JPG, PNG, HEIC) o archivos PDF"),
    (b"PK\x03\x04" + b"\x00" * 300, "application/pdf", "Solo podemos aceptar fotos"),  # a .docx declared as PDF
    (photo(seed=5)[:40_000], "image/jpeg", "parece dañado o incompleto"),  # truncated upload
    (pdf(launch=True), "application/pdf", "contiene scripts o acciones"),
    (pdf(password=""), "application/pdf", "protegido con contraseña"),
    (b"\xff\xd8\xff" + b"\x00" * (26 * 1024 * 1024), "image/jpeg", "demasiado grande"),
], ids=["zero-byte", "gif", "wrong-type", "truncated-jpeg", "pdf-launch-action", "pdf-encrypted", "oversize"])
def test_bad_files_get_a_helpful_spanish_reply_and_are_not_filed(ana, demo, data, kind, expected):
    turn = ana.say(files=[(data, kind)])
    assert expected in turn.text, turn.text
    assert all(d.item_id is None and d.status != "valid" for d in docs(demo))
    assert {i.status for k, i in items(demo).items()} == {"required"}


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(out, format="PNG")  # 144 megapixels in a few hundred KB
    return out.getvalue()


def _polyglot() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("payload.js", "alert(1)")
    return photo(seed=6) + out.getvalue()  # a real photo with an archive appended


@pytest.mark.parametrize("make", [_bomb, _polyglot], ids=["decompression-bomb", "jpeg-zip-polyglot"])
def test_unsafe_files_are_quarantined_without_crashing_the_worker(ana, demo, make):
    ana.say("qué me falta")
    turn = ana.say(files=[(make(), "image/png")])
    assert "No pudimos abrir este archivo de forma segura" in turn.text
    [doc] = docs(demo)
    assert doc.status == "quarantined" and doc.item_id is None
    assert "Recibido" in ana.say(files=[(photo(seed=7), "image/jpeg")]).text  # the worker carries on


def test_a_pdf_with_scripts_is_filed_flagged_and_its_staff_copy_has_none(ana, demo):
    ana.say("qué me falta")
    turn = ana.say(files=[(pdf(pages=3, javascript=True), "application/pdf")])
    assert "Recibido para «" in turn.text and "está completo" not in turn.text or "Por favor, envíe" in turn.text
    [doc] = docs(demo, role="original")
    assert doc.status == "valid" and "javascript" in doc.info["active_content"] and doc.info["pages"] == 3
    [copy] = docs(demo, role="staff_copy")
    data = demo.vault.get(copy.storage_key, copy.wrapped_key, copy.key_id, copy.sha256)
    assert b"/JavaScript" not in data and len(PdfReader(io.BytesIO(data)).pages) == 3


def test_iphone_heic_photos_are_accepted(ana, demo):
    ana.say("qué me falta")
    turn = ana.say(files=[(photo(seed=8, fmt="HEIF"), "image/heic")])
    assert "Recibido para «" in turn.text
    [doc] = docs(demo, role="original")
    assert doc.mime in ("image/heic", "image/heif") and doc.status == "valid"


@pytest.mark.parametrize("label, tip", [
    ("blurry", "La foto está borrosa"),
    ("too_dark", "La foto está muy oscura"),
    ("too_small", "Acérquese para que el documento llene la foto"),
    ("glare", "Hay un reflejo en la foto"),
])
def test_unreadable_photos_are_refused_with_the_right_tip(ana, demo, label, tip):
    ana.say("qué me falta")
    turn = ana.say(files=[(photo(label, seed=3, size=None), "image/jpeg")])
    assert tip in turn.text, turn.text
    assert "Recibido" not in turn.text
    assert [d.info["quality"][0] for d in docs(demo)] and docs(demo)[0].status == "refused"
    assert items(demo)["petitioner_status_proof"].status == "required"


def test_the_same_file_twice_is_recognised(ana, demo):
    ana.say("qué me falta")
    ana.say(files=[(photo(seed=9), "image/jpeg")])
    again = ana.say(files=[(photo(seed=9), "image/jpeg")])
    assert "Ya tenemos este archivo" in again.text
    assert len([d for d in docs(demo, role="original") if d.item_id]) == 1


def test_a_photo_sent_before_verification_is_filed_once_the_sender_is_verified(demo):
    from services.importer import apply

    with demo.Session.begin() as session:
        apply(session, NEW_CLIENT)
    chat = Chat(demo, address="+15555550177")
    first = chat.say(files=[(photo(seed=12), "image/jpeg")])
    assert "Lo agregaremos a su caso en cuanto confirmemos su identidad" in first.text
    assert "Prueba" not in first.text  # nothing about the matter before verification
    asked = chat.say("14/05/1990")
    assert "¿Qué documento es este?" in asked.text
    assert "Acta de matrimonio" in asked.choices[-1]
    filed = chat.say("2")
    assert "Recibido para «Acta de matrimonio»" in filed.text
    assert items(demo)["marriage_certificate"].status == "received"


def test_a_tampered_file_is_detected_and_marked_corrupt(ana, demo, settings):
    from tests.test_cli import _run

    ana.say("qué me falta")
    ana.say(files=[(photo(seed=13), "image/jpeg")])
    [doc] = docs(demo, role="original")
    ok = _run(settings, ["documents", "export", str(doc.id), "--out", str(settings.storage_dir.parent / "out.jpg")])
    assert ok.exit_code == 0 and (settings.storage_dir.parent / "out.jpg").read_bytes() == photo(seed=13)
    path = settings.storage_dir / doc.storage_key[:2] / doc.storage_key
    blob = bytearray(path.read_bytes())
    blob[500] ^= 0x01
    path.write_bytes(bytes(blob))
    result = _run(settings, ["documents", "verify"])
    assert result.exit_code == 1 and f"document {doc.id}: FAILED" in result.output
    assert docs(demo, id=doc.id)[0].status == "corrupt"
    refused = _run(settings, ["documents", "export", str(doc.id), "--out", str(settings.storage_dir.parent / "x")])
    assert refused.exit_code != 0 and "not available" in refused.output


def test_rotating_the_master_key_rewraps_keys_only(ana, demo, settings):
    from click.testing import CliRunner

    from services.vault import MasterKeys
    from web.cli import cli

    ana.say("qué me falta")
    ana.say(files=[(photo(seed=14), "image/jpeg")])
    old_key = (settings.storage_dir.parent / "development-master.key").read_text()
    new_key = CliRunner().invoke(cli, ["documents", "new-key"]).output.strip()
    [before] = docs(demo, role="original")
    path = settings.storage_dir / before.storage_key[:2] / before.storage_key
    ciphertext = path.read_bytes()
    env = {"DATABASE_URL": settings.database_url, "PUENTE_STORAGE_DIR": str(settings.storage_dir), "REDIS_URL": ""}
    rotated = CliRunner().invoke(cli, ["documents", "rotate-key"], env={**env, "PUENTE_ENCRYPTION_KEY": f"{new_key},{old_key}"})
    assert rotated.exit_code == 0, rotated.output
    assert path.read_bytes() == ciphertext  # the file itself was not touched
    for doc in docs(demo):
        assert doc.key_id == MasterKeys.parse(new_key).current_id
    verified = CliRunner().invoke(cli, ["documents", "verify"], env={**env, "PUENTE_ENCRYPTION_KEY": new_key})
    assert verified.exit_code == 0 and "0 failed" in verified.output


def _reply_bodies(rt, address):
    with rt.Session() as s:
        return [m.body for m in s.scalars(select(Message).where(Message.direction == "out").order_by(Message.id))]


def test_staff_review_tells_the_client_what_to_resend_and_why(ana, demo, settings):
    from tests.test_cli import _run

    ana.say("qué me falta")
    ana.say(files=[(photo(seed=15), "image/jpeg")])
    result = _run(settings, ["documents", "reject", "MAT-77", "petitioner_status_proof", "--reason", "illegible"])
    assert result.exit_code == 0, result.output
    notice = _reply_bodies(demo, ana.address)[-1]
    assert "Necesitamos de nuevo su documento «Prueba de ciudadanía" in notice
    assert "Motivo: La copia es difícil de leer." in notice and "nítida" in notice
    assert items(demo)["petitioner_status_proof"].status == "rejected"
    missing = ana.say("qué me falta")
    assert "La copia es difícil de leer" in missing.text
    ana.say(files=[(photo(seed=16), "image/jpeg")])
    assert items(demo)["petitioner_status_proof"].status == "received"
    accepted = _run(settings, ["documents", "accept", "MAT-77", "petitioner_status_proof", "--by", "paralegal@firm"])
    assert accepted.exit_code == 0
    assert "Buenas noticias: nuestro equipo aceptó su documento «Prueba de ciudadanía" in _reply_bodies(demo, ana.address)[-1]
    with demo.Session() as s:
        reviewed = s.scalars(select(OutgoingEvent).where(OutgoingEvent.event == "document_reviewed")).all()
    assert [e.data["status"] for e in reviewed] == ["rejected", "accepted"]
    assert "Documentos: 1 de 11 aceptados." in ana.say("estado de mi caso").text


def test_a_review_notice_to_a_thread_no_longer_verified_names_nothing(ana, demo, clock):
    from services.reviews import review

    ana.say("qué me falta")
    ana.say(files=[(photo(seed=17), "image/jpeg")])
    clock.advance(hours=2)  # verification has lapsed
    with demo.Session.begin() as s:
        item = s.get(ChecklistItem, items(demo)["petitioner_status_proof"].id)
        notice = review(s, item, "rejected", actor="staff:test", now=clock(), firm=demo.engine.firm(s), reason_code="expired")
        notice = notice.body
    assert "novedad sobre sus documentos" in notice
    assert "Prueba" not in notice and "vencido" not in notice


def test_clamav_clean_infected_and_unreachable(demo, settings, ana):
    from services.antivirus import ClamdScanner
    from tests.fakes.clamd import FakeClamd

    infected_photo = _with_comment(photo(seed=18), EICAR)
    with FakeClamd() as clamd:
        demo.scanner = ClamdScanner(clamd.address, timeout=2)
        ana.say("qué me falta")
        ana.say(files=[(photo(seed=19), "image/jpeg")])
        bad = ana.say(files=[(infected_photo, "image/jpeg")])
        assert "Nuestro control de seguridad no aceptó este archivo" in bad.text
        clean, infected = docs(demo, role="original")
        assert clean.scan_status == "clean" and infected.status == "infected" and infected.item_id is None
        assert clamd.scans == 2
    # The scanner goes away: the file is kept and filed, but nobody can open it until it is scanned.
    demo.scanner = ClamdScanner("tcp://127.0.0.1:9", timeout=0.5)
    ana.say("listo")
    ana.say(files=[(photo(seed=20), "image/jpeg")])
    waiting = docs(demo, role="original")[-1]
    assert waiting.status == "valid" and waiting.scan_status == "pending" and waiting.item_id
    result = _export(settings, waiting.id)
    assert result.exit_code != 0 and "not available" in result.output
    with FakeClamd() as clamd:
        demo.scanner = ClamdScanner(clamd.address, timeout=2)
        assert demo.rescan_documents() == 1
        demo.queue.join()
    assert docs(demo, id=waiting.id)[0].scan_status == "clean"
    assert _export(settings, waiting.id).exit_code == 0


def _export(settings, doc_id):
    from tests.test_cli import _run

    return _run(settings, ["documents", "export", str(doc_id), "--out", str(settings.storage_dir.parent / f"e{doc_id}")])


def _with_comment(jpeg: bytes, comment: bytes) -> bytes:
    image = Image.open(io.BytesIO(jpeg))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, comment=comment)
    return out.getvalue()


def test_production_refuses_to_start_without_a_valid_encryption_key(database_url, tmp_path):
    from bot.settings import SettingsError
    from tests.conftest import make_settings

    with pytest.raises(SettingsError, match="PUENTE_ENCRYPTION_KEY is required"):
        make_settings(database_url, tmp_path, PUENTE_ENV="production", PUENTE_SECRET_KEY="s" * 32)
    with pytest.raises(SettingsError, match="32-byte keys"):
        make_settings(database_url, tmp_path, PUENTE_ENCRYPTION_KEY="too-short")


def test_a_two_sided_card_completes_with_front_and_back(demo):
    from services.importer import apply

    client = {"clients": [{"external_id": "CL-88", "first_name": "Luis", "last_name": "Paz", "date_of_birth": "1985-02-03",
                           "phone": "+15555550188", "preferred_language": "en"}],
              "matters": [{"external_id": "MAT-88", "client": "CL-88", "type": "N-400", "stage": "collecting_evidence",
                           "checklist": [{"key": "green_card", "status": "required"},
                                         {"key": "travel_history", "status": "required"}]}]}
    with demo.Session.begin() as session:
        apply(session, client)
    luis = Chat(demo, address="+15555550188")
    luis.verify("03/02/1985", first="hello")
    asked = luis.say("what documents are missing?")
    assert "Please send: " in asked.text and "Send both sides: the front and the back." in asked.text
    front = luis.say(files=[(photo(seed=40), "image/jpeg")])
    assert "If «" in front.text and "reply DONE" in front.text  # waiting for the back
    back = luis.say(files=[(photo(seed=41), "image/jpeg")])
    assert "(2 files)" in back.text and "Please send: " in back.text  # complete: on to the next item
    assert items(demo, "MAT-88")["green_card"].status == "received"
    skipped = luis.say("later")
    assert "No problem, you can send it later." in skipped.text and "1 document still missing" in skipped.text


def test_a_file_over_the_scanner_limit_is_refused_not_let_through(ana, demo):
    from services.antivirus import ClamdScanner
    from tests.fakes.clamd import FakeClamd

    with FakeClamd(max_stream=10_000) as clamd:
        demo.scanner = ClamdScanner(clamd.address, timeout=2)
        ana.say("qué me falta")
        turn = ana.say(files=[(photo(seed=42), "image/jpeg")])
    assert "demasiado grande" in turn.text
    [doc] = docs(demo, role="original")
    assert doc.status == "refused" and doc.item_id is None


def test_processes_starting_together_share_one_development_key(tmp_path):
    """gunicorn's workers boot at once without PUENTE_ENCRYPTION_KEY: each gets the same whole key."""
    import threading

    from services.vault import MasterKeys

    path = tmp_path / "instance" / "development-master.key"
    start, keys, errors = threading.Barrier(12), [], []

    def boot():
        start.wait()
        try:
            keys.append(MasterKeys.development(path).keys)
        except Exception as exc:  # noqa: BLE001 - what a worker would die of
            errors.append(exc)

    threads = [threading.Thread(target=boot) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(keys) == 12 and len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no scratch files left behind
