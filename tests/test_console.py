"""The staff console through HTTP: sign-in with TOTP, sessions, CSRF, throttling, access, the queue,
replies through the client's channel, review, audit."""
from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select, update

from services.models import AuditEvent, ChecklistItem, Conversation, Handoff, Matter, Message
from tests.conftest import Chat
from tests.samples import photo
from web import create_app

ADMIN = ("admin@example.com", "puente-demo-admin")
PARALEGAL = ("paralegal@example.com", "puente-demo-paralegal")


@pytest.fixture
def app(demo):
    from services.demo import seed_staff

    with demo.Session.begin() as session:
        seed_staff(session)
    return create_app(demo.settings, demo)


@pytest.fixture
def web(app):
    return app.test_client()


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()


def start(web, email, password):
    page = web.get("/console/login")
    return web.post("/console/login", data={"email": email, "password": password, "csrf": csrf_of(page.data)})


def enrol(web, clock) -> tuple[str, list[str]]:
    page = web.get("/console/login/enrol")
    secret = re.search(rb'name="secret" value="([A-Z2-7]+)"', page.data).group(1).decode()
    done = web.post("/console/login/enrol", data={"csrf": csrf_of(page.data), "secret": secret,
                                                  "code": pyotp.TOTP(secret).at(clock())})
    assert done.status_code == 200, done.data
    codes = re.findall(rb"<li><code>([0-9a-f]{10})</code></li>", done.data)
    return secret, [c.decode() for c in codes]


def sign_in(web, clock, who=ADMIN) -> str:
    """Signs in (enrolling TOTP the first time); returns the TOTP secret."""
    resp = start(web, *who)
    assert resp.status_code == 302
    if resp.headers["Location"].startswith("/console/login/enrol"):
        secret, _ = enrol(web, clock)
        return secret
    raise AssertionError("already enrolled: use second_step")


def second_step(web, code):
    page = web.get("/console/login/code")
    return web.post("/console/login/code", data={"csrf": csrf_of(page.data), "code": code})


def post(web, path, data=None):
    page = web.get("/console/")
    return web.post(path, data={"csrf": csrf_of(page.data), **(data or {})})


def cookie(web) -> str | None:
    found = web.get_cookie("puente_staff", path="/console")
    return found.value if found else None


def test_first_sign_in_enrols_totp_with_a_qr_code_and_rotates_the_session(web, clock):
    resp = start(web, *ADMIN)
    assert resp.headers["Location"].startswith("/console/login/enrol")
    before = cookie(web)
    page = web.get("/console/login/enrol")
    assert b"<svg" in page.data and b"path" in page.data  # the QR code
    assert web.get("/console/").status_code == 302  # the password alone opens nothing
    secret, codes = enrol(web, clock)
    assert len(codes) == 8 and cookie(web) != before
    assert web.get("/console/").status_code == 200
    web.set_cookie("puente_staff", before, path="/console")
    assert web.get("/console/").status_code == 302  # the pre-sign-in token is revoked


def test_unknown_account_and_wrong_password_get_the_same_answer_then_slow_down(web, clock):
    unknown = start(web, "nobody@example.com", "whatever-password")
    wrong = start(web, ADMIN[0], "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda body: re.sub(rb'value="[0-9a-f]{64}"', b"", body)  # noqa: E731
    assert strip(unknown.data) == strip(wrong.data)
    start(web, ADMIN[0], "not-the-password-2")
    start(web, ADMIN[0], "not-the-password-3")
    throttled = start(web, *ADMIN)  # even the right password waits now
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    clock.advance(seconds=5)
    assert start(web, *ADMIN).status_code == 302


def test_a_totp_code_works_once_and_a_recovery_code_once(app, clock):
    first = app.test_client()
    secret = sign_in(first, clock)
    post(first, "/console/logout")
    clock.advance(seconds=31)
    second = app.test_client()
    start(second, *ADMIN)
    code = pyotp.TOTP(secret).at(clock())
    assert second_step(second, code).status_code == 302
    third = app.test_client()
    start(third, *ADMIN)
    assert second_step(third, code).status_code == 401  # the same code again: a replay


def test_recovery_codes_are_single_use(app, clock):
    web = app.test_client()
    start(web, *ADMIN)
    _, codes = enrol(web, clock)
    for attempt, expected in ((codes[0], 302), (codes[0], 401)):
        other = app.test_client()
        clock.advance(seconds=10)
        start(other, *ADMIN)
        assert second_step(other, attempt).status_code == expected


def test_a_change_without_its_csrf_token_is_refused(web, clock):
    sign_in(web, clock)
    assert web.post("/console/logout").status_code == 400
    assert web.post("/console/logout", data={"csrf": "0" * 64}).status_code == 400
    assert post(web, "/console/logout").status_code == 302


def test_sessions_end_after_the_idle_limit(web, clock):
    sign_in(web, clock)
    clock.advance(minutes=14)
    assert web.get("/console/").status_code == 200
    clock.advance(minutes=16)
    assert web.get("/console/").status_code == 302


def test_cookies_are_httponly_strict_and_secure_behind_https(demo, clock):
    from services.demo import seed_staff

    with demo.Session.begin() as session:
        seed_staff(session)
    app = create_app(demo.settings.with_(public_base_url="https://firm.example"), demo)
    web = app.test_client()
    resp = start(web, *ADMIN)
    header = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("puente_staff=")][0]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" in header


def _matter_id(demo, external_id):
    with demo.Session() as s:
        return s.scalar(select(Matter.id).where(Matter.external_id == external_id))


def test_a_paralegal_sees_assigned_matters_only_and_a_refusal_is_audited(web, demo, clock):
    sign_in(web, clock, PARALEGAL)
    assert web.get(f"/console/matters/{_matter_id(demo, 'MAT-2001')}").status_code == 200
    outside = _matter_id(demo, "MAT-2003")
    assert web.get(f"/console/matters/{outside}").status_code == 404
    assert b"MAT-2003" not in web.get("/console/matters").data
    with demo.Session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "access_denied")).all()
    assert [e.subject for e in denied] == [f"matter:{outside}"]
    assert web.get("/console/audit").status_code == 404  # the audit page is for partners and admins


def test_a_handoff_is_answered_from_the_console_through_the_clients_channel(web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("quiero hablar con una persona")
    sign_in(web, clock, PARALEGAL)
    [row] = web.get("/console/queue.json").get_json()["handoffs"]
    assert row["client"] == "María López" and row["matter"] == "MAT-2001" and row["reason"] == "asked_for_person"
    page = web.get(f"/console/conversations/{row['conversation']}")
    assert "quiero hablar con una persona".encode() in page.data
    post(web, f"/console/conversations/{row['conversation']}/reply", {"text": "Hola María, soy Pablo. ¿En qué le ayudo?"})
    demo.queue.join()
    with demo.Session() as s:
        sent = s.scalars(select(Message).where(Message.direction == "out", Message.staff_user_id.is_not(None))).all()
        handoff = s.scalar(select(Handoff))
    assert [m.body for m in sent] == ["Hola María, soy Pablo. ¿En qué le ayudo?"] and sent[0].state == "sent"
    assert handoff.first_reply_at is not None and handoff.assignee_id is not None
    assert maria.say("gracias, ¿cuánto debo?").replies == []  # staff own the thread: the bot is silent
    post(web, f"/console/conversations/{row['conversation']}/return")
    assert web.get("/console/queue.json").get_json()["handoffs"] == []
    assert "$" in maria.say("¿cuánto debo?").text  # the assistant answers again


def test_rejecting_a_document_in_the_console_tells_the_client(web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("qué me falta")
    maria.say(files=[(photo(seed=50), "image/jpeg")])
    sign_in(web, clock, PARALEGAL)
    with demo.Session() as s:
        item = s.scalar(select(ChecklistItem).where(ChecklistItem.key == "joint_financial_records",
                                                    ChecklistItem.matter_id == _matter_id(demo, "MAT-2001")))
    page = web.get(f"/console/matters/{item.matter_id}")
    doc_link = re.search(rb'href="/console/documents/(\d+)"', page.data).group(1).decode()
    download = web.get(f"/console/documents/{doc_link}")
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    post(web, f"/console/items/{item.id}/review", {"decision": "rejected", "reason": "illegible", "note": ""})
    demo.queue.join()
    with demo.Session() as s:
        notice = s.scalars(select(Message).where(Message.direction == "out").order_by(Message.id.desc())).first()
        assert s.get(ChecklistItem, item.id).status == "rejected"
    assert "Necesitamos de nuevo su documento" in notice.body and notice.state == "sent"


def test_finance_sees_invoices_but_not_documents_or_conversations(app, demo, clock):
    from services.staff_auth import create_user

    with demo.Session.begin() as s:
        create_user(s, "finance@example.com", "Fina", "finance", "finance-password-1")
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("qué me falta")
    maria.say(files=[(photo(seed=51), "image/jpeg")])
    web = app.test_client()
    sign_in(web, clock, ("finance@example.com", "finance-password-1"))
    page = web.get(f"/console/matters/{_matter_id(demo, 'MAT-2001')}")
    assert page.status_code == 200 and b"INV-1001" in page.data and b"/console/documents/" not in page.data
    with demo.Session() as s:
        media = [m for m in s.scalars(select(Message.media).where(Message.direction == "in")) if m]
        doc_id = media[0][0]["document_id"]
        conv_id = s.scalar(select(Conversation.id))
    assert web.get(f"/console/documents/{doc_id}").status_code == 404
    assert web.get(f"/console/conversations/{conv_id}").status_code == 404


def test_the_audit_page_exports_and_shows_a_tampered_chain(web, demo, clock):
    sign_in(web, clock)
    assert b"Hash chain intact" in web.get("/console/audit?lang=en").data
    csv_export = web.get("/console/audit?format=csv")
    assert csv_export.status_code == 200 and b"totp_enrolled" in csv_export.data
    assert web.get("/console/audit?format=json").get_json()[0]["hash"]
    with demo.Session.begin() as s:
        first = s.scalar(select(AuditEvent).order_by(AuditEvent.id))
        s.execute(update(AuditEvent).where(AuditEvent.id == first.id).values(actor="someone-else"))
    assert b"Hash chain BROKEN at event 1" in web.get("/console/audit?lang=en").data


def test_the_approval_gate_holds_a_paralegals_fee_reply_for_an_attorney(app, demo, clock):
    from services.firm import get_firm

    with demo.Session.begin() as s:
        firm = get_firm(s)
        firm.settings = {**(firm.settings or {}), "approval_gate": True}
    demo.engine.firm_changed()
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("quiero hablar con una persona")
    paralegal = app.test_client()
    sign_in(paralegal, clock, PARALEGAL)
    conv = paralegal.get("/console/queue.json").get_json()["handoffs"][0]["conversation"]
    post(paralegal, f"/console/conversations/{conv}/reply", {"text": "Los honorarios son $500."})
    demo.queue.join()
    with demo.Session() as s:
        held = s.scalar(select(Message).where(Message.staff_user_id.is_not(None)))
    assert held.state == "awaiting_approval"
    attorney = app.test_client()
    sign_in(attorney, clock, ADMIN)
    post(attorney, f"/console/messages/{held.id}/approve")
    demo.queue.join()
    with demo.Session() as s:
        assert s.get(Message, held.id).state == "sent"


def test_a_new_handoff_gets_its_drafted_summary_from_a_job(web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("quiero hablar con una persona")
    demo.queue.join()
    with demo.Session() as s:
        handoff = s.scalar(select(Handoff))
    # No AI without the firm's switch and the client's consent: the summary comes from the record.
    assert handoff.ai_summary_status == "off" and handoff.ai_summary["source"] == "record"
    assert handoff.ai_summary["language"] == "es" and handoff.ai_summary["draft_reply"]
    sign_in(web, clock, PARALEGAL)
    page = web.get(f"/console/conversations/{handoff.conversation_id}?lang=en")
    assert b"Summary from the record (no AI)" in page.data and b"Use this draft" in page.data
    assert b"The client asked to talk to a person." in page.data
    # A Spanish-speaking paralegal reads the same summary in Spanish.
    page = web.get(f"/console/conversations/{handoff.conversation_id}?lang=es")
    assert "El cliente pidió hablar con una persona." in page.data.decode()
    assert "Documentos que faltan:" in page.data.decode()


def test_a_handoff_goes_to_the_matters_paralegal_who_gets_an_email_naming_no_one(demo, clock):
    from services.demo import seed_staff
    from tests.fakes.smtp import FakeSMTP

    with demo.Session.begin() as session:
        seed_staff(session)
    with FakeSMTP() as smtp:
        demo.settings = demo.settings.with_(smtp_url=smtp.url, smtp_from="puente@firm.example")
        maria = Chat(demo)
        maria.verify("21/03/1988")
        maria.say("quiero hablar con una persona")
        demo.queue.join()
    with demo.Session() as s:
        handoff = s.scalar(select(Handoff))
        from services.models import StaffUser
        assert s.get(StaffUser, handoff.assignee_id).email == PARALEGAL[0]
    [mail] = smtp.messages
    assert mail["to"] == [PARALEGAL[0]] and mail["message"]["Subject"] == "Un cliente le espera en Puente"
    body = mail["message"].get_content()
    assert f"/console/conversations/{handoff.conversation_id}" in body
    assert "María" not in body and "López" not in body and "MAT-2001" not in body


def test_the_transcript_shows_photo_thumbnails_only_to_those_allowed(app, web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("qué me falta")
    maria.say(files=[(photo(seed=52, exif=None), "image/jpeg")])
    maria.say("quiero hablar con una persona")
    sign_in(web, clock, PARALEGAL)
    conv = web.get("/console/queue.json").get_json()["handoffs"][0]["conversation"]
    page = web.get(f"/console/conversations/{conv}")
    thumb = re.search(rb'src="(/console/documents/\d+/thumbnail)"', page.data).group(1).decode()
    shown = web.get(thumb)
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg" and len(shown.data) < 60_000
    assert app.test_client().get(thumb).status_code == 302  # signed out: to the sign-in page


def test_the_dashboard_shows_every_kpi_with_a_chart_and_exports_csv(web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("quiero hablar con una persona")
    sign_in(web, clock)
    page = web.get("/console/dashboard?lang=en")
    assert page.status_code == 200
    for kpi in ("containment", "handoffs", "time_to_first_staff_reply", "document_turnaround", "first_pass_acceptance",
                "days_to_payment", "intake_time", "opt_outs", "inbound_messages_per_matter"):
        assert f'id="kpi-{kpi}"'.encode() in page.data
    assert page.data.count(b"<svg") >= 9
    handoffs = re.search(rb'id="kpi-handoffs">.*?class="figure">([^<]*)<', page.data, re.S).group(1)
    assert handoffs.strip().startswith(b"1 ")
    csv_export = web.get("/console/dashboard?format=csv&matter_type=I-130")
    assert csv_export.mimetype == "text/csv" and b"handoffs,all,,1" in csv_export.data


def test_admins_add_a_webhook_endpoint_and_issue_an_api_token_shown_once(web, demo, clock):
    sign_in(web, clock)
    added = post(web, "/console/admin/integrations", {"action": "add_endpoint", "url": "http://127.0.0.1:9/hook",
                                                      "events": "document_uploaded", "allow_private": "1"})
    secret = re.search(rb'id="shown-once">.*?<code>([^<]+)</code>', added.data, re.S).group(1).decode()
    page = web.get("/console/admin/integrations")
    assert b"127.0.0.1:9/hook" in page.data and secret.encode() not in page.data  # shown once only
    refused = post(web, "/console/admin/integrations", {"action": "add_endpoint", "url": "http://169.254.169.254/x",
                                                        "events": "*"})
    assert refused.status_code == 200 and b"refused target" in refused.data
    issued = post(web, "/console/admin/integrations", {"action": "issue_token", "name": "Clio sync", "scope": "read"})
    token = re.search(rb'id="shown-once">.*?<code>(pnt_[^<]+)</code>', issued.data, re.S).group(1).decode()
    assert web.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    from services.models import ApiToken
    with demo.Session() as s:
        token_id = s.scalar(select(ApiToken.id))
    post(web, "/console/admin/integrations", {"action": "revoke_token", "token_id": str(token_id)})
    assert web.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_only_admins_reach_integrations(app, clock):
    paralegal = app.test_client()
    sign_in(paralegal, clock, PARALEGAL)
    assert paralegal.get("/console/admin/integrations").status_code == 404


def test_on_a_family_phone_staff_read_only_the_turns_of_matters_open_to_them(web, demo, clock):
    phone = Chat(demo)
    phone.verify("02/11/2006")  # Daniel (MAT-2002, not assigned to the paralegal)
    daniel_answer = phone.say("cómo va mi caso?").text
    clock.advance(hours=13)  # his check has lapsed; his mother takes the phone
    phone.verify("21/03/1988")
    phone.say("quiero hablar con una persona")
    sign_in(web, clock, PARALEGAL)
    conv = web.get("/console/queue.json").get_json()["handoffs"][0]["conversation"]
    page = web.get(f"/console/conversations/{conv}").data.decode()
    assert "quiero hablar con una persona" in page
    assert daniel_answer.splitlines()[0] not in page and "cómo va mi caso?" not in page


def test_a_file_sent_unverified_long_before_is_not_filed_to_whoever_verifies_next(demo, clock):
    phone = Chat(demo)
    phone.say(files=[(photo(seed=53), "image/jpeg")])  # someone on the family phone, not verified
    clock.advance(hours=3)
    phone.verify("21/03/1988")
    phone.say("qué me falta")
    phone.say(files=[(photo(seed=54), "image/jpeg")])
    with demo.Session() as s:
        from services.models import Document
        docs = s.scalars(select(Document).where(Document.role == "original").order_by(Document.id)).all()
    assert [d.item_id is not None for d in docs] == [False, True]


def test_a_tampered_file_opened_in_the_console_is_marked_corrupt(web, demo, clock):
    maria = Chat(demo)
    maria.verify("21/03/1988")
    maria.say("qué me falta")
    maria.say(files=[(photo(seed=55), "image/jpeg")])
    from services.models import Document
    with demo.Session() as s:
        doc = s.scalar(select(Document).where(Document.role == "original"))
    path = demo.settings.storage_dir / doc.storage_key[:2] / doc.storage_key
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    sign_in(web, clock, PARALEGAL)
    assert web.get(f"/console/documents/{doc.id}").status_code == 409
    with demo.Session() as s:
        assert s.get(Document, doc.id).status == "corrupt"
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "document_corrupt")) is not None


# -- delivery problems -----------------------------------------------------------------------------
def test_error_codes_read_as_plain_words_and_unknown_codes_as_they_are():
    from services.delivery_problems import explain
    from services.i18n import Translator

    en, es = Translator.for_language("en"), Translator.for_language("es")
    assert explain(en, "failed", "blocked").startswith("The client blocked the bot")
    assert explain(en, "dead", "unreachable") != explain(en, "failed", "unreachable")
    assert "30007" in explain(en, "failed", "twilio_30007") and "30007" in explain(es, "failed", "twilio_30007")
    assert explain(en, "unknown", "partial_21611").startswith("Only the first part")
    assert explain(es, "failed", "outside_window") == es.gettext(explain(en, "failed", "outside_window"))
    assert explain(en, "unknown", "ConnectionResetError") == "ConnectionResetError"
    assert explain(en, "failed", None) == ""


def test_the_list_leaves_out_what_needs_nobody(demo, clock):
    from datetime import timedelta

    from services.delivery_problems import open_problems

    now = clock()
    with demo.Session.begin() as s:
        conv = Conversation(channel="whatsapp", address="+15555550999", status="bot", state={}, version=0,
                            failed_verifications=0, unknown_streak=0)
        s.add(conv)
        s.flush()
        for body, state, error, payload, age in (
                ("went by sms instead", "failed", "outside_window; sent by sms as message 99", {}, 0),
                ("dismissed by staff", "failed", "invalid_number", {"settled_by": 1, "settled_at": now.isoformat()}, 0),
                ("too old", "dead", "rate_limited", {}, 31),
                ("delivered", "delivered", None, {}, 0),
                ("waits for staff", "failed", "outside_window", {}, 0)):
            s.add(Message(conversation_id=conv.id, direction="out", channel="whatsapp", body=body, payload=payload,
                          media=[], state=state, attempts=0, error=error, received_at=now - timedelta(days=age)))
    with demo.Session() as s:
        assert [p.preview for p in open_problems(s, now)] == ["waits for staff"]
