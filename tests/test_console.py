"""The staff console through HTTP: sign-in with TOTP, sessions, CSRF, throttling, access, the queue,
replies through the client's channel, review, audit."""
from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select, update

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
    # … with the checklist items under their Spanish names.
    assert re.search(r"Documentos que faltan: [^<]*Documentos financieros en común", page.data.decode())


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


@pytest.fixture
def desk(database_url, tmp_path, clock):
    """The console over a runtime whose SMS goes to a fake Twilio and whose Telegram goes to a fake Bot API."""
    from types import SimpleNamespace

    from bot.runtime import build_runtime
    from services.demo import seed, seed_staff
    from tests.conftest import make_settings, wipe
    from tests.fakes.telegram import FakeTelegram
    from tests.fakes.twilio import FakeTwilio
    from tests.test_twilio import SID, SMS_FROM, TOKEN, WA_FROM

    wipe(database_url)
    with FakeTwilio(account_sid=SID, auth_token=TOKEN) as twilio, FakeTelegram(token="123456:TEST-token") as telegram:
        settings = make_settings(database_url, tmp_path, TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN,
                                 TWILIO_SMS_FROM=SMS_FROM, TWILIO_WHATSAPP_FROM=WA_FROM, TWILIO_API_URL=twilio.url,
                                 TELEGRAM_BOT_TOKEN="123456:TEST-token", TELEGRAM_WEBHOOK_SECRET="secret-0123456789",
                                 TELEGRAM_API_URL=telegram.url)
        rt = build_runtime(settings, in_process=True)
        rt.engine.clock = clock
        with rt.Session.begin() as s:
            seed(s)
            seed_staff(s)
        app = create_app(settings, rt)
        yield SimpleNamespace(rt=rt, app=app, web=app.test_client(), twilio=twilio, telegram=telegram)
        rt.queue.join()
        rt.close()


def _failed_reply(desk, kind: str, text: str, chat: Chat | None = None) -> Message:
    """María (verified) writes `text`; the fake Twilio answers the reply's send as `kind`."""
    chat = chat or _verified_maria(desk)
    with desk.rt.Session() as s:
        last = s.scalar(select(func.max(Message.id))) or 0
    desk.twilio.fail_next(kind)
    chat.say(text)
    desk.rt.queue.join()
    with desk.rt.Session() as s:  # the turn's first reply (later ones wait behind it)
        return s.scalars(select(Message).where(Message.direction == "out", Message.id > last).order_by(Message.id)).first()


def _verified_maria(desk) -> Chat:
    maria = Chat(desk.rt)
    maria.verify("21/03/1988")
    desk.rt.queue.join()
    return maria


def _act(web, message: Message, action: str, state: str | None = None):
    return post(web, f"/console/deliveries/{message.id}", {"action": action, "state": state or message.state})


def _listed(web) -> list[int]:
    return [int(i) for i in re.findall(rb'<tr data-id="(\d+)"', web.get("/console/deliveries").data)]


def _audited(demo_rt, action: str) -> list[AuditEvent]:
    with demo_rt.Session() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_delivery_problems_list_unknown_and_failed_sends_in_the_staff_members_language(desk, clock):
    maria = _verified_maria(desk)
    unknown = _failed_reply(desk, "500", "cuánto debo?", maria)  # refused before recording: we cannot know
    failed = _failed_reply(desk, "21211", "qué me falta?", maria)
    assert (unknown.state, unknown.error) == ("unknown", "http_500")
    assert (failed.state, failed.error) == ("failed", "invalid_number")
    sign_in(desk.web, clock)  # the demo admin reads the console in Spanish
    page = desk.web.get("/console/deliveries").data.decode()
    assert _listed(desk.web) == [failed.id, unknown.id]  # newest first
    assert "El número de teléfono no es válido." in page
    assert "El proveedor respondió con un error del servidor (500)" in page
    assert "María López" in page and " ".join(failed.body.split())[:40] in page and "Problemas de entrega" in page
    assert "no pudimos saber si el mensaje llegó al cliente: compruébelo con el cliente" in page
    assert f'href="/console/conversations/{failed.conversation_id}"' in page
    english = desk.web.get("/console/deliveries?lang=en").data.decode()
    assert "The phone number is not valid." in english and "Delivery problems" in english
    queue = desk.web.get("/console/").data.decode()
    assert 'id="delivery-banner"' in queue and re.search(r'id="nav-deliveries">[^<]*<span class="badge">2</span>', queue)


def test_a_telegram_send_that_may_have_arrived_waits_for_staff_as_an_unverified_sender(desk, clock):
    stranger = Chat(desk.rt, address="777000111", channel="telegram")
    desk.telegram.fail_next("500", method="sendMessage")  # Telegram's 5xx: it may have been delivered
    stranger.say("hola")
    desk.rt.queue.join()
    with desk.rt.Session() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
    assert (out.state, out.error, out.client_id) == ("unknown", "server_error", None)
    assert desk.rt.reconcile() == 0  # the Bot API cannot look a sent message up: it stays for staff
    sign_in(desk.web, clock)
    page = desk.web.get("/console/deliveries").data.decode()
    assert _listed(desk.web) == [out.id] and "Remitente no verificado" in page
    assert "El proveedor tuvo un error interno" in page
    assert "sigue preguntando" not in page  # nobody else will settle it


def test_a_paralegal_sees_no_delivery_problem_of_a_matter_not_theirs_and_acting_on_it_is_404(desk, clock):
    jose = Chat(desk.rt, address="+15555550102")
    jose.verify("04/07/1975")  # José's matters (MAT-2003, MAT-2004) are not the paralegal's
    desk.rt.queue.join()
    theirs = _failed_reply(desk, "21211", "cómo va mi caso?", jose)
    assert theirs.state == "failed" and theirs.client_id is not None
    with desk.rt.Session.begin() as s:  # and one of María's, written directly, on her assigned matter
        conv = Conversation(channel="sms", address="+15555550101", status="bot", state={}, version=0,
                            failed_verifications=0, unknown_streak=0)
        s.add(conv)
        s.flush()
        maria_matter = s.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        mine = Message(conversation_id=conv.id, direction="out", channel="sms", body="Su cita es el lunes.",
                       payload={"choices": []}, media=[], state="dead", attempts=8, error="rate_limited",
                       client_id=maria_matter.client_id, matter_id=maria_matter.id)
        s.add(mine)
    paralegal = desk.app.test_client()
    sign_in(paralegal, clock, PARALEGAL)
    assert _listed(paralegal) == [mine.id]
    assert _act(paralegal, theirs, "resend").status_code == 404
    assert _act(paralegal, theirs, "dismiss").status_code == 404
    with desk.rt.Session() as s:
        assert s.get(Message, theirs.id).state == "failed"
    assert [e.subject for e in _audited(desk.rt, "access_denied")] == [f"message:{theirs.id}"] * 2
    admin = desk.app.test_client()
    sign_in(admin, clock)
    assert set(_listed(admin)) == {theirs.id, mine.id}


def test_finance_gets_no_delivery_problems_page(desk, clock):
    from services.staff_auth import create_user

    with desk.rt.Session.begin() as s:
        create_user(s, "finance@example.com", "Fina", "finance", "finance-password-1")
    sign_in(desk.web, clock, ("finance@example.com", "finance-password-1"))
    assert desk.web.get("/console/deliveries").status_code == 404
    assert b"nav-deliveries" not in desk.web.get("/console/").data


def test_send_again_on_an_unknown_send_sends_it_exactly_once_more(desk, clock):
    unknown = _failed_reply(desk, "500", "cuánto debo?")
    before = len(desk.twilio.sent)
    sign_in(desk.web, clock)
    resp = _act(desk.web, unknown, "resend")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/console/deliveries")
    desk.rt.queue.join()
    assert [m["body"] for m in desk.twilio.sent[before:]] == [unknown.body]
    with desk.rt.Session() as s:
        again = s.get(Message, unknown.id)
    assert again.state == "sent" and again.provider_id == desk.twilio.sent[-1]["sid"] and again.error is None
    assert _listed(desk.web) == []
    [event] = _audited(desk.rt, "send_reconciled")
    assert event.details["outcome"] == "resent" and event.details["by"] == "staff"
    assert _act(desk.web, unknown, "resend", state="unknown").status_code == 409  # a second click sends nothing
    desk.rt.queue.join()
    assert len(desk.twilio.sent) == before + 1


def test_it_arrived_sends_nothing_and_marks_the_message_sent(desk, clock):
    unknown = _failed_reply(desk, "500_after_accept", "cuánto debo?")  # Twilio has it; we did not hear back
    before = len(desk.twilio.sent)
    sign_in(desk.web, clock)
    assert _act(desk.web, unknown, "arrived").status_code == 302
    desk.rt.queue.join()
    assert len(desk.twilio.sent) == before
    with desk.rt.Session() as s:
        settled = s.get(Message, unknown.id)
    assert settled.state == "sent" and settled.sent_at is not None and _listed(desk.web) == []
    [event] = _audited(desk.rt, "send_reconciled")
    assert event.details == {"outcome": "sent", "by": "staff"} and event.actor.startswith("staff:")


def test_send_again_is_refused_once_the_client_opted_out(desk, clock):
    maria = _verified_maria(desk)
    failed = _failed_reply(desk, "21211", "cuánto debo?", maria)
    maria.say("STOP")
    desk.rt.queue.join()
    before = len(desk.twilio.sent)
    sign_in(desk.web, clock)
    assert b'value="resend"' not in desk.web.get("/console/deliveries").data  # not offered
    refused = _act(desk.web, failed, "resend")
    assert refused.status_code == 400 and "no se puede enviar de nuevo" in refused.data.decode().lower()
    desk.rt.queue.join()
    with desk.rt.Session() as s:
        assert s.get(Message, failed.id).state == "failed"
    assert len(desk.twilio.sent) == before and _audited(desk.rt, "send_reconciled") == []


def test_a_carrier_opt_out_failure_is_never_sent_again(desk, clock):
    failed = _failed_reply(desk, "21610", "cuánto debo?")
    assert (failed.state, failed.error) == ("failed", "opted_out")
    sign_in(desk.web, clock)
    assert _act(desk.web, failed, "resend").status_code == 400
    desk.rt.queue.join()
    assert not any(m["body"] == failed.body for m in desk.twilio.sent)


def test_dismiss_takes_a_failure_off_the_list_and_is_audited(desk, clock):
    failed = _failed_reply(desk, "21211", "cuánto debo?")
    sign_in(desk.web, clock)
    assert _listed(desk.web) == [failed.id]
    assert _act(desk.web, failed, "dismiss").status_code == 302
    assert _listed(desk.web) == []
    with desk.rt.Session() as s:
        kept = s.get(Message, failed.id)
    assert kept.state == "failed" and kept.payload["settled_by"] and kept.payload["settled_at"]
    [event] = _audited(desk.rt, "send_dismissed")
    assert event.subject == f"message:{failed.id}" and event.details["error"] == "invalid_number"
    assert b'id="delivery-banner"' not in desk.web.get("/console/").data


def test_an_action_on_a_message_settled_meanwhile_is_a_409_and_changes_nothing(desk, clock):
    unknown = _failed_reply(desk, "500_after_accept", "cuánto debo?")
    sign_in(desk.web, clock)
    assert _listed(desk.web) == [unknown.id]
    assert desk.rt.reconcile() == 1  # the reconciler found it at Twilio meanwhile
    before = len(desk.twilio.sent)
    stale = _act(desk.web, unknown, "resend", state="unknown")
    assert stale.status_code == 409 and "cambió mientras tanto" in stale.data.decode()
    assert _act(desk.web, unknown, "arrived", state="unknown").status_code == 409
    desk.rt.queue.join()
    assert len(desk.twilio.sent) == before
    assert [(e.actor, e.details) for e in _audited(desk.rt, "send_reconciled")] == [("system", {"outcome": "sent"})]


def test_a_delivery_action_without_its_csrf_token_is_refused(desk, clock):
    failed = _failed_reply(desk, "21211", "cuánto debo?")
    sign_in(desk.web, clock)
    resp = desk.web.post(f"/console/deliveries/{failed.id}", data={"action": "dismiss", "state": "failed"})
    assert resp.status_code == 400
    assert _listed(desk.web) == [failed.id] and _audited(desk.rt, "send_dismissed") == []
