"""SMS and WhatsApp through Twilio, over real HTTP against a fake Twilio (tests/fakes/twilio.py)."""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from bot.runtime import build_runtime
from channels.twilio import TwilioChannel
from services.demo import seed
from services.models import Conversation, Document, Message, ProviderReceipt
from tests.conftest import make_settings, wipe
from tests.fakes.twilio import FakeTwilio, inbound_form, sign
from tests.samples import pdf as sample_pdf, photo as sample_photo
from web import create_app

SID = "AC" + "1" * 32
TOKEN = "twilio-test-token"
PUBLIC = "https://puente.example.org"
SMS_FROM, WA_FROM = "+15555550000", "whatsapp:+15555550001"
MARIA = "+15555550101"


@pytest.fixture
def fake():
    with FakeTwilio(account_sid=SID, auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def rt(database_url, tmp_path, fake):
    wipe(database_url)
    settings = make_settings(database_url, tmp_path, TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN,
                             TWILIO_SMS_FROM=SMS_FROM, TWILIO_WHATSAPP_FROM=WA_FROM, TWILIO_API_URL=fake.url,
                             PUBLIC_BASE_URL=PUBLIC)
    runtime = build_runtime(settings, in_process=True)
    with runtime.Session.begin() as s:
        seed(s)
    yield runtime
    runtime.queue.join()
    runtime.close()


@pytest.fixture
def client(rt):
    return create_app(rt.settings, rt).test_client()


def post(client, form, path="/webhooks/twilio", signed_url=None, signature=None):
    url = signed_url or PUBLIC + path
    return client.post(path, data=MultiDict(form), headers={"X-Twilio-Signature": signature or sign(TOKEN, url, form)})


def count(rt, model, *where):
    with rt.Session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_forged_signature_is_refused_and_nothing_stored(client, rt):
    form = inbound_form(MARIA, SMS_FROM, "hola")
    assert post(client, form, signature="bad-signature").status_code == 403
    assert client.post("/webhooks/twilio", data=MultiDict(form)).status_code == 403  # no signature at all
    # A header of another length, or not ASCII, is a refusal too (not a server error).
    assert post(client, form, signature=sign(TOKEN, "http://elsewhere.example/webhooks/twilio", form) + "=").status_code == 403
    assert post(client, form, signature="ñ" * 28).status_code == 403
    assert count(rt, Message) == 0


def test_signed_sms_is_stored_acknowledged_and_answered_through_twilio(client, rt, fake):
    resp = post(client, inbound_form(MARIA, SMS_FROM, "hola, cuánto debo?"))
    assert resp.status_code == 200 and resp.mimetype == "text/xml" and b"<Response>" in resp.data
    rt.queue.join()
    assert len(fake.sent) == 1
    sent = fake.sent[0]
    assert sent["to"] == MARIA and sent["from_"] == SMS_FROM and "fecha de nacimiento" in sent["body"]
    assert sent["status_callback"] == PUBLIC + "/webhooks/twilio/status"
    with rt.Session() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
    assert out.state == "sent" and out.provider_id == sent["sid"]


def test_whatsapp_sender_gets_whatsapp_reply_with_numbered_choices(client, rt, fake):
    post(client, inbound_form(MARIA, WA_FROM, "hola", whatsapp=True))
    post(client, inbound_form(MARIA, WA_FROM, "21/03/1988", whatsapp=True))
    rt.queue.join()
    assert all(m["to"] == "whatsapp:" + MARIA and m["from_"] == WA_FROM for m in fake.sent)
    menu = fake.sent[-1]["body"]
    assert "1. Estado de mi caso" in menu and "Responda 1, 2, 3, 4, 5 o 6." in menu
    with rt.Session() as s:
        assert s.scalar(select(Conversation.channel)) == "whatsapp"


def test_replayed_and_racing_webhooks_store_one_message_and_answer_once(client, rt, fake):
    form = inbound_form(MARIA, SMS_FROM, "hola", sid="SM" + "a" * 32)
    results = []
    threads = [threading.Thread(target=lambda: results.append(post(client, form).status_code)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert post(client, form).status_code == 200
    rt.queue.join()
    assert results == [200] * 4
    assert count(rt, Message, Message.direction == "in") == 1 and len(fake.sent) == 1


def test_a_first_message_racing_another_from_the_same_new_number_is_stored(rt, database_url):
    """Two first messages from one new number: B's insert finds no conversation, then A creates it
    and stores its own message before B looks again. B's message is not a replay: it is stored."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): this interleaving cannot happen there")
    from sqlalchemy import event

    newcomer = "+15555550199"
    first, second = (TwilioChannel.parse(MultiDict(inbound_form(newcomer, SMS_FROM, text, sid=sid)))
                     for text, sid in (("hola", "SM" + "b" * 32), ("necesito ayuda", "SM" + "c" * 32)))
    raced = []

    def racer(conn, cursor, statement, parameters, context, executemany):
        if not raced and statement.lstrip().startswith("SELECT conversations.id"):
            raced.append("racing")
            raced.append(rt.accept(first))  # the racing request, on its own connection, commits first

    store = rt.ingest_db or rt.db  # the engine the webhook's store step runs on
    event.listen(store, "before_cursor_execute", racer)
    try:
        stored = rt.accept(second)
    finally:
        event.remove(store, "before_cursor_execute", racer)
    rt.queue.join()
    assert raced[-1] is not None and stored is not None
    assert count(rt, Message, Message.direction == "in") == 2
    assert count(rt, Conversation) == 1


@pytest.mark.parametrize("signed_url", [PUBLIC + ":443/webhooks/twilio", PUBLIC + "/webhooks/twilio"])
def test_signatures_verify_with_port_repeated_keys_empty_body_and_emoji(client, rt, signed_url):
    form = inbound_form(MARIA, SMS_FROM, "") + [("Custom", "b"), ("Custom", "a")]
    assert post(client, form, signed_url=signed_url).status_code == 200
    emoji = inbound_form(MARIA, SMS_FROM, "hola 👋🏽 ¿cómo está?")
    assert post(client, emoji, signed_url=signed_url).status_code == 200
    tampered = [(k, "otro" if k == "Body" else v) for k, v in emoji]
    assert client.post("/webhooks/twilio", data=MultiDict(tampered),
                       headers={"X-Twilio-Signature": sign(TOKEN, signed_url, emoji)}).status_code == 403


def test_signature_uses_the_public_url_not_forwarded_headers(client, rt):
    form = inbound_form(MARIA, SMS_FROM, "hola")
    forged_host = "https://attacker.example.com/webhooks/twilio"
    resp = client.post("/webhooks/twilio", data=MultiDict(form), headers={
        "X-Twilio-Signature": sign(TOKEN, forged_host, form), "X-Forwarded-Host": "attacker.example.com",
        "X-Forwarded-Proto": "https"})
    assert resp.status_code == 403


def test_status_callbacks_only_move_forward_and_unknown_sids_are_kept(client, rt, fake):
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    sid = fake.sent[0]["sid"]
    status = "/webhooks/twilio/status"
    for state in ("delivered", "sent", "delivered"):  # a late "sent", then a replay
        assert post(client, [("MessageSid", sid), ("MessageStatus", state), ("AccountSid", SID)], path=status).status_code == 204
    with rt.Session() as s:
        assert s.scalar(select(Message.state).where(Message.provider_id == sid)) == "delivered"
    post(client, [("MessageSid", "SM" + "f" * 32), ("MessageStatus", "delivered")], path=status)
    assert count(rt, ProviderReceipt, ProviderReceipt.matched.is_(False)) == 1
    assert post(client, [("MessageSid", sid), ("MessageStatus", "failed")], path=status, signature="x").status_code == 403


def _reply_states(rt):
    with rt.Session() as s:
        return s.scalars(select(Message.state).where(Message.direction == "out").order_by(Message.id)).all()


def test_rate_limited_send_is_retried_and_delivered_once(client, rt, fake):
    fake.fail_next("429")
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    assert _reply_states(rt) == ["pending"] and fake.sent == []
    with rt.Session.begin() as s:  # the backoff has passed
        msg = s.scalar(select(Message).where(Message.direction == "out"))
        msg.locked_until, msg.received_at = datetime.now(timezone.utc) - timedelta(seconds=1), msg.received_at - timedelta(minutes=1)
    rt.relay()
    rt.queue.join()
    assert _reply_states(rt) == ["sent"] and len(fake.sent) == 1


@pytest.mark.parametrize("kind", ["500_after_accept", "timeout"])
def test_ambiguous_outcome_becomes_unknown_and_is_never_resent(client, rt, fake, kind):
    fake.timeout_seconds = 3
    rt.channels["sms"].timeout = 1
    fake.fail_next(kind)
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    assert _reply_states(rt) == ["unknown"]
    rt.relay()
    rt.queue.join()
    assert len(fake.sent) == 1  # the fake got it once; we never sent it again


def test_carrier_opt_out_21610_marks_the_number_opted_out(client, rt, fake):
    fake.fail_next("21610")
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    assert _reply_states(rt) == ["failed"]
    with rt.Session() as s:
        assert s.scalar(select(Conversation.opted_out_at)) is not None
    post(client, inbound_form(MARIA, SMS_FROM, "hola otra vez"))
    rt.queue.join()
    assert fake.sent == []  # silence until START


def test_whatsapp_window_63016_fails_without_retry(client, rt, fake):
    fake.fail_next("63016")
    post(client, inbound_form(MARIA, WA_FROM, "hola", whatsapp=True))
    rt.queue.join()
    rt.relay()
    rt.queue.join()
    with rt.Session() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
    assert (out.state, out.error, out.attempts) == ("failed", "whatsapp_window", 1)


def test_every_attachment_is_fetched_safely_stored_and_deleted_at_twilio(client, rt, fake):
    sid = "SM" + "b" * 32
    photo, pdf = sample_photo(seed=3), sample_pdf(pages=2)
    urls = [fake.add_media(sid, photo, "image/jpeg"), fake.add_media(sid, pdf, "application/pdf")]
    fake.media_404_first = 1  # not ready on the first try
    post(client, inbound_form(MARIA, SMS_FROM, "", sid=sid, media=[(urls[0], "image/jpeg"), (urls[1], "application/pdf")]))
    rt.queue.join()
    with rt.Session() as s:
        docs = s.scalars(select(Document).order_by(Document.id)).all()
    assert [d.sha256 for d in docs] == [hashlib.sha256(photo).hexdigest(), hashlib.sha256(pdf).hexdigest()]
    assert all(d.provider_message_id == sid for d in docs)
    cdn = [r for r in fake.media_requests if "/cdn/" in r["path"]]
    api = [r for r in fake.media_requests if "/Media/" in r["path"]]
    assert cdn and not any(r["had_auth"] for r in cdn) and all(r["had_auth"] for r in api)
    assert len(fake.deleted_media) == 2
    assert "Recibimos su archivo" in fake.sent[0]["body"]


def test_media_over_the_mms_cap_gets_a_helpful_reply(client, rt, fake):
    sid = "SM" + "c" * 32
    url = fake.add_media(sid, b"x" * (5 * 1024 * 1024 + 1), "image/jpeg")
    post(client, inbound_form(MARIA, SMS_FROM, "", sid=sid, media=[(url, "image/jpeg")]))
    rt.queue.join()
    assert count(rt, Document) == 0
    assert "demasiado grande" in fake.sent[0]["body"] and "5 MB" in fake.sent[0]["body"]


def test_media_url_of_another_account_never_gets_our_credentials(client, rt, fake):
    other = fake.url + "/2010-04-01/Accounts/AC" + "9" * 32 + "/Messages/SM1/Media/ME1"
    post(client, inbound_form(MARIA, SMS_FROM, "", sid="SM" + "d" * 32, media=[(other, "image/jpeg")]))
    rt.queue.join()
    assert not any("AC" + "9" * 32 in r["path"] for r in fake.media_requests)
    assert count(rt, Document) == 0


@pytest.mark.parametrize("down", ["sqlite:///{tmp}/missing/dir/x.db",  # no such file
                                  "postgresql+psycopg://postgres@127.0.0.1:1/puente"])  # nothing listening
def test_database_down_answers_503_so_twilio_retries(tmp_path, fake, down):
    settings = make_settings(down.format(tmp=tmp_path), tmp_path, TWILIO_ACCOUNT_SID=SID,
                             TWILIO_AUTH_TOKEN=TOKEN, TWILIO_API_URL=fake.url, PUBLIC_BASE_URL=PUBLIC)
    runtime = build_runtime(settings, in_process=True)
    client = create_app(settings, runtime).test_client()
    assert post(client, inbound_form(MARIA, SMS_FROM, "hola")).status_code == 503


def test_redis_down_still_acknowledges_and_drains_in_order_when_it_is_back(database_url, tmp_path, fake):
    from bot.queue import InProcessQueue

    wipe(database_url)
    settings = make_settings(database_url, tmp_path, TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN,
                             TWILIO_SMS_FROM=SMS_FROM, TWILIO_API_URL=fake.url, PUBLIC_BASE_URL=PUBLIC,
                             REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens: Redis is down
    runtime = build_runtime(settings)
    with runtime.Session.begin() as s:
        seed(s)
    client = create_app(settings, runtime).test_client()
    for text in ("hola", "21/03/1988", "cuánto debo"):
        assert post(client, inbound_form(MARIA, SMS_FROM, text)).status_code == 200
    assert fake.sent == [] and count(runtime, Message, Message.state == "received") == 3
    runtime.queue = InProcessQueue({"process_message": runtime.process_message, "send_message": runtime.send_message})
    runtime.relay(older_than=timedelta(0))  # Redis is back: the relay finds the waiting rows
    runtime.queue.join()
    bodies = [m["body"] for m in fake.sent]
    assert "fecha de nacimiento" in bodies[0] and "María" in bodies[1] and "$1,020.00" in bodies[-1]
    runtime.close()


def _reply_held_past_the_window(client, rt, sender_number):
    """A WhatsApp reply that sat in the outbox for over a day (e.g. a long outage), then is sent."""
    held = []
    real = rt.queue
    rt.queue = type("Hold", (), {"enqueue": lambda self, job, item: held.append((job, item)) or True, "join": lambda self: None})()
    post(client, inbound_form(sender_number, WA_FROM, "hola", whatsapp=True))
    for job, item in list(held):
        if job == "process_message":
            rt.process_message(item)
    with rt.Session.begin() as s:
        s.scalar(select(Conversation).where(Conversation.channel == "whatsapp")).last_inbound_at -= timedelta(hours=25)
    rt.queue = real
    for job, item in held:
        if job == "send_message":
            rt.send_message(item)
    rt.queue.join()


def test_a_whatsapp_reply_past_the_24_hour_window_goes_by_sms_to_a_consenting_client(client, rt, fake):
    _reply_held_past_the_window(client, rt, MARIA)
    assert [(m["to"], m["from_"]) for m in fake.sent] == [(MARIA, SMS_FROM)]  # never tried on WhatsApp
    with rt.Session() as s:
        wa = s.scalar(select(Message).where(Message.direction == "out", Message.channel == "whatsapp"))
    assert wa.state == "failed" and wa.error.startswith("outside_window")


def test_without_sms_consent_a_reply_past_the_window_waits_for_staff(client, rt, fake):
    from services.models import Handoff

    _reply_held_past_the_window(client, rt, "+15555550999")  # not a client: no SMS consent on file
    assert fake.sent == []
    with rt.Session() as s:
        assert s.scalar(select(Handoff.reason)) == "whatsapp_window"

def test_a_photo_followed_quickly_by_text_is_still_stored_before_it_is_answered(client, rt, fake):
    held = []
    rt.queue = type("Hold", (), {"enqueue": lambda self, job, item: held.append((job, item)) or True, "join": lambda self: None})()
    sid = "SM" + "e" * 32
    url = fake.add_media(sid, sample_pdf(pages=1), "application/pdf")
    post(client, inbound_form(MARIA, SMS_FROM, "", sid=sid, media=[(url, "application/pdf")]))
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    later = [item for job, item in held if job == "process_message"][-1]
    rt.process_message(later)  # the text's job runs first: it must not skip the photo's download
    assert count(rt, Document) == 1
    with rt.Session() as s:
        first_reply = s.scalar(select(Message.body).where(Message.direction == "out").order_by(Message.id))
    assert "Recibimos su archivo" in first_reply


def test_a_download_that_keeps_failing_is_given_up_with_an_honest_reply(client, rt, fake):
    sid = "SM" + "7" * 32
    url = fake.add_media(sid, b"x", "image/jpeg")
    fake.media_404_first = 100  # never becomes available
    post(client, inbound_form(MARIA, SMS_FROM, "", sid=sid, media=[(url, "image/jpeg")]))
    rt.queue.join()
    for _ in range(3):  # the relay tries again; after three attempts it stops trying
        rt.relay(older_than=timedelta(0))
        rt.queue.join()
    assert count(rt, Document) == 0
    assert any("No pudimos recibir" in m["body"] for m in fake.sent)


def test_a_failure_callback_that_beats_the_send_record_is_still_applied(client, rt, fake):
    from channels.base import SendResult
    from services.db import utcnow

    held = []
    rt.queue = type("Hold", (), {"enqueue": lambda self, job, item: held.append((job, item)) or True, "join": lambda self: None})()
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.process_message(held[0][1])
    # The carrier reports failure for the sid before our worker has recorded that sid as sent.
    early = [("MessageSid", "SM" + "9" * 32), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")]
    assert post(client, early, path="/webhooks/twilio/status").status_code == 204
    with rt.Session.begin() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
        rt._record_send(s, out, SendResult("sent", provider_id="SM" + "9" * 32), utcnow())
    with rt.Session() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
    assert (out.state, out.error) == ("failed", "twilio_30003")


def test_an_unknown_send_is_reconciled_with_twilio_before_anything_is_resent(client, rt, fake):
    fake.timeout_seconds = 3
    rt.channels["sms"].timeout = 1
    fake.fail_next("timeout")  # Twilio got it, our worker did not hear back
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    assert _reply_states(rt) == ["unknown"]
    assert rt.reconcile() == 1
    with rt.Session() as s:
        out = s.scalar(select(Message).where(Message.direction == "out"))
    assert out.state == "sent" and out.provider_id == fake.sent[0]["sid"] and len(fake.sent) == 1


def test_an_unknown_send_that_never_reached_twilio_is_sent_again_once(client, rt, fake):
    from services.db import utcnow

    fake.fail_next("500")  # refused before recording: nothing at Twilio, but we could not know
    post(client, inbound_form(MARIA, SMS_FROM, "hola"))
    rt.queue.join()
    assert _reply_states(rt) == ["unknown"] and fake.sent == []
    assert rt.reconcile() == 0  # too early to call it absent
    assert rt.reconcile(now=utcnow() + timedelta(minutes=3)) == 1
    rt.queue.join()
    assert _reply_states(rt) == ["sent"] and len(fake.sent) == 1


def test_past_the_window_an_approved_template_goes_and_the_reply_follows_when_they_write(client, rt, fake):
    from services.models import FirmSettings

    with rt.Session.begin() as s:
        firm = s.scalar(select(FirmSettings))
        firm.settings = {"whatsapp_templates": {"reply": {"es": "HX" + "1" * 32, "en": "HX" + "2" * 32}}}
    rt.engine.firm_changed()
    _reply_held_past_the_window(client, rt, MARIA)
    assert [(m["to"], m["content_sid"]) for m in fake.sent] == [("whatsapp:" + MARIA, "HX" + "1" * 32)]
    assert "Puente Demo Law Office" in fake.sent[0]["content_variables"]
    post(client, inbound_form(MARIA, WA_FROM, "hola de nuevo", whatsapp=True))  # the window reopens
    rt.queue.join()
    bodies = [m["body"] for m in fake.sent[1:]]
    assert "fecha de nacimiento" in bodies[0]  # the held reply first, then the answer to the new message
    assert len(bodies) == 2 and all(m["content_sid"] is None for m in fake.sent[1:])


@pytest.mark.parametrize("reason, expected", [("payment_receipt", "HX" + "7" * 32),  # its purpose's own template
                                              ("document_rejected", "HX" + "1" * 32)])  # none for documents: reply's
def test_past_the_window_a_notice_goes_as_the_template_of_its_purpose(client, rt, fake, reason, expected):
    from services import outreach
    from services.db import utcnow
    from services.models import ContactPoint, FirmSettings

    with rt.Session.begin() as s:
        firm = s.scalar(select(FirmSettings))
        firm.settings = {"whatsapp_templates": {"reply": {"es": "HX" + "1" * 32}, "payment": {"es": "HX" + "7" * 32}}}
    rt.engine.firm_changed()
    post(client, inbound_form(MARIA, WA_FROM, "hola", whatsapp=True))
    rt.queue.join()
    with rt.Session.begin() as s:  # a day later her WhatsApp window is closed
        s.scalar(select(Conversation).where(Conversation.channel == "whatsapp")).last_inbound_at -= timedelta(hours=25)
    fake.sent.clear()
    with rt.Session.begin() as s:
        maria = s.scalar(select(ContactPoint.client_id).where(ContactPoint.address == MARIA))
        notice = outreach.notify(s, maria, lambda t: "detalles", firm=s.scalar(select(FirmSettings)), now=utcnow(),
                                 reason=reason)
    rt.queue_sends([notice.id])
    rt.queue.join()
    assert [(m["to"], m["content_sid"]) for m in fake.sent] == [("whatsapp:" + MARIA, expected)]
    assert all(m["body"] != "detalles" for m in fake.sent)  # the notice itself waits for her to write


def test_a_verified_client_files_a_document_by_mms_and_hears_what_is_left(client, rt, fake):
    for text in ("hola", "21/03/1988", "qué me falta?"):
        post(client, inbound_form(MARIA, SMS_FROM, text))
        rt.queue.join()
    assert "Por favor, envíe: Documentos financieros en común" in fake.sent[-1]["body"]
    sid = "SM" + "f" * 32
    url = fake.add_media(sid, sample_photo(seed=21), "image/jpeg")
    post(client, inbound_form(MARIA, SMS_FROM, "", sid=sid, media=[(url, "image/jpeg")]))
    rt.queue.join()
    answer = fake.sent[-1]["body"]
    assert "Recibido para «Documentos financieros en común»" in answer and "Faltan" in answer
    with rt.Session() as s:
        doc = s.scalar(select(Document).where(Document.provider_message_id == sid))
    assert doc.item_id and doc.status == "valid" and doc.sha256 == hashlib.sha256(sample_photo(seed=21)).hexdigest()
