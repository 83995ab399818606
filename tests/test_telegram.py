"""Telegram end to end over real HTTP: the webhook (Flask test client) in, a local Bot API server out."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from bot.messages import Choice, Reply
from bot.runtime import build_runtime
from channels.base import SendResult
from channels.telegram import FetchError, FileRefused, TelegramChannel, TooLarge
from services.db import utcnow
from services.models import Document, Message
from tests.conftest import make_settings
from tests.conftest import wipe
from tests.fakes.telegram import FakeTelegram
from tests.samples import pdf as sample_pdf, photo as sample_photo
from web import create_app

TOKEN = "123456:TEST-token"
SECRET = "webhook-secret-0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHAT = 777000111
# python-telegram-bot itself warns, when it builds a RetryAfter, that the int form is going away.
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated since version v22.2")


@pytest.fixture
def fake():
    with FakeTelegram(token=TOKEN) as server:
        yield server


def _telegram_settings(database_url, tmp_path, fake):
    return make_settings(database_url, tmp_path, **{
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET, "TELEGRAM_API_URL": fake.url})


@pytest.fixture
def tg(database_url, tmp_path, fake):
    """A runtime and app with Telegram configured against the fake Bot API server."""
    wipe(database_url)
    settings = _telegram_settings(database_url, tmp_path, fake)
    runtime = build_runtime(settings, in_process=True)
    app = create_app(settings, runtime)
    yield SimpleNamespace(runtime=runtime, app=app, client=app.test_client(), fake=fake, settings=settings)
    runtime.queue.join()
    runtime.close()


# -- updates as Telegram sends them --------------------------------------------------------------
def _sender(chat_id=CHAT):
    return {"id": chat_id, "is_bot": False, "first_name": "María", "language_code": "es"}


def message_update(update_id, text=None, chat_id=CHAT, **fields):
    message = {"message_id": update_id + 5000, "from": _sender(chat_id), "date": int(time.time()),
               "chat": {"id": chat_id, "type": "private", "first_name": "María"}, **fields}
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


def button_update(update_id, data, chat_id=CHAT, keyboard=(("status", "Estado de mi caso"), ("balance", "Saldo"))):
    return {"update_id": update_id, "callback_query": {
        "id": f"cq{update_id}", "from": _sender(chat_id), "chat_instance": "-99", "data": data,
        "message": {"message_id": 4242, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
                    "from": {"id": 123456, "is_bot": True, "first_name": "Puente"}, "text": "¿Qué necesita?",
                    "reply_markup": {"inline_keyboard": [[{"text": label, "callback_data": value}]
                                                         for value, label in keyboard]}}}}


def post(tg, update, secret=SECRET):
    headers = {HEADER: secret} if secret is not None else {}
    return tg.client.post("/webhooks/telegram", json=update, headers=headers)


def inbound_rows(runtime):
    with runtime.Session() as session:
        return session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)).all()


def outbound_rows(runtime):
    with runtime.Session() as session:
        return session.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)).all()


def deliver(tg, update):
    """Posts an update and waits for the in-process jobs (processing and sending) to finish."""
    response = post(tg, update)
    assert response.status_code == 200, response.data
    tg.runtime.queue.join()
    return response


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the webhook door ----------------------------------------------------------------------------
def test_forged_or_missing_secret_is_refused_and_nothing_is_stored(tg):
    assert post(tg, message_update(1, "hola"), secret="not-the-secret").status_code == 403
    assert post(tg, message_update(2, "hola"), secret=None).status_code == 403
    assert post(tg, message_update(3, "hola"), secret="").status_code == 403
    tg.runtime.queue.join()
    assert inbound_rows(tg.runtime) == [] and tg.fake.sent == []


def test_a_text_message_is_stored_processed_and_answered_in_the_same_chat(tg):
    response = deliver(tg, message_update(10, "hola, quiero saber de mi caso"))
    assert response.get_json() == {}
    [row] = inbound_rows(tg.runtime)
    assert (row.channel, row.provider_id, row.state, row.body) == ("telegram", "u10", "processed",
                                                                    "hola, quiero saber de mi caso")
    [sent] = tg.fake.messages_to(CHAT)
    assert "fecha de nacimiento" in sent["text"]  # an unknown sender is asked to verify first
    [out] = outbound_rows(tg.runtime)
    assert out.state == "sent" and out.provider_id == str(sent["message_id"])

    deliver(tg, message_update(11, "hi, what's my balance?", chat_id=CHAT + 1))
    [english] = tg.fake.messages_to(CHAT + 1)
    assert "date of birth" in english["text"] and "$" not in english["text"]


def test_a_replayed_update_is_acknowledged_but_stored_and_answered_once(tg):
    deliver(tg, message_update(20, "hola"))
    again = deliver(tg, message_update(20, "hola"))
    assert again.status_code == 200
    assert len(inbound_rows(tg.runtime)) == 1
    assert len(tg.fake.messages_to(CHAT)) == 1


def test_a_button_press_is_accepted_as_the_choice_and_its_spinner_is_answered(tg):
    response = deliver(tg, button_update(30, "status"))
    assert response.get_json() == {"method": "answerCallbackQuery", "callback_query_id": "cq30"}
    [row] = inbound_rows(tg.runtime)
    assert row.payload == {"choice": "status"} and row.body == "Estado de mi caso"
    assert row.provider_id == "u30" and row.state == "processed" and row.intent == "status"
    assert tg.fake.messages_to(CHAT)  # answered (here: the date-of-birth question)


def test_only_the_largest_photo_size_is_kept_and_can_be_fetched(tg):
    full = sample_photo(seed=2, size=(1280, 960))
    small, large = tg.fake.add_file(b"s" * 900, "photos/s.jpg"), tg.fake.add_file(full, "photos/l.jpg")
    medium = tg.fake.add_file(b"m" * 9_000, "photos/m.jpg")
    photo = [{"file_id": small, "file_unique_id": "a", "width": 90, "height": 67, "file_size": 900},
             {"file_id": large, "file_unique_id": "c", "width": 1280, "height": 960, "file_size": len(full)},
             {"file_id": medium, "file_unique_id": "b", "width": 320, "height": 240, "file_size": 9_000}]
    deliver(tg, message_update(40, photo=photo, caption="mi pasaporte"))
    [row] = inbound_rows(tg.runtime)
    assert row.body == "mi pasaporte"
    [media] = row.media
    assert {k: media[k] for k in ("content_type", "url", "filename", "size")} == {
        "content_type": "image/jpeg", "url": f"tg-file:{large}", "filename": None, "size": len(full)}
    # The runtime's media step fetched the largest size only (getFile, then the download).
    assert [r["params"]["file_id"] for r in tg.fake.requests if r["method"] == "getFile"] == [large]
    with tg.runtime.Session() as session:
        document = session.get(Document, media["document_id"])
        assert document.size == len(full) and document.sha256 == hashlib.sha256(full).hexdigest()
        assert document.status == "valid" and document.mime == "image/jpeg"
    assert any("Recibimos su archivo" in m["text"] for m in tg.fake.messages_to(CHAT))


def test_a_document_keeps_its_type_name_and_size(tg):
    acta = sample_pdf(pages=1)
    file_id = tg.fake.add_file(acta, "documents/acta.pdf")
    document = {"file_id": file_id, "file_unique_id": "d1", "file_name": "acta de nacimiento.pdf",
                "mime_type": "application/pdf", "file_size": len(acta)}
    deliver(tg, message_update(41, document=document))
    [row] = inbound_rows(tg.runtime)
    [media] = row.media
    assert {k: media[k] for k in ("content_type", "url", "filename", "size")} == {
        "content_type": "application/pdf", "url": f"tg-file:{file_id}", "filename": "acta de nacimiento.pdf", "size": len(acta)}
    assert media["document_id"] and row.state == "processed"


def test_a_file_telegram_refuses_is_noted_and_the_message_still_answered(tg):
    document = {"file_id": "expired-file-id", "file_unique_id": "d2", "file_name": "a.pdf",
                "mime_type": "application/pdf", "file_size": 10}
    deliver(tg, message_update(42, document=document))
    [row] = inbound_rows(tg.runtime)
    assert row.state == "processed" and row.media[0]["error"] == "refused" and "document_id" not in row.media[0]
    assert tg.fake.messages_to(CHAT)
    with pytest.raises(PermissionError):
        tg.runtime.channels["telegram"].fetch_media("https://elsewhere.example/file.pdf")


def test_bad_json_is_refused_and_updates_without_a_message_for_us_are_acknowledged(tg):
    bad = tg.client.post("/webhooks/telegram", data=b"{not json", headers={HEADER: SECRET},
                         content_type="application/json")
    assert bad.status_code == 400
    edited = {"update_id": 50, "edited_message": message_update(50, "hola editado")["message"]}
    sticker = message_update(51, sticker={"file_id": "st", "file_unique_id": "st", "width": 512, "height": 512,
                                          "is_animated": False, "is_video": False, "type": "regular"})
    group = message_update(52, "hola a todos")
    group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Familia"}
    channel_post = {"update_id": 53, "channel_post": {"message_id": 1, "date": 0, "text": "x",
                                                      "chat": {"id": -100999, "type": "channel"}}}
    for update_ in (edited, sticker, group, channel_post):
        assert post(tg, update_).status_code == 200
    tg.runtime.queue.join()
    assert inbound_rows(tg.runtime) == [] and tg.fake.sent == []


def test_start_deep_links_and_contact_shares(tg):
    channel = tg.runtime.channels["telegram"]
    [deep] = channel.parse(message_update(60, "/start Abc_123-xyz"))
    assert (deep.text, deep.link, deep.address, deep.provider_id) == ("/start", "start:Abc_123-xyz", str(CHAT), "u60")
    [bare] = channel.parse(message_update(61, "/start"))
    assert (bare.text, bare.link) == ("/start", None)
    for malformed in ("/start " + "a" * 65, "/start bad!token"):
        [dropped] = channel.parse(message_update(62, malformed))
        assert (dropped.text, dropped.link) == ("/start", None)
    own = {"phone_number": "1 (555) 555-0101", "first_name": "María", "user_id": CHAT}
    [shared] = channel.parse(message_update(63, contact=own))
    assert (shared.text, shared.link) == ("", "contact:+15555550101")
    [other] = channel.parse(message_update(64, contact={**own, "user_id": 999}))
    assert (other.text, other.link) == ("", "contact:other")
    # Through the door: a deep link is stored as a link request (never as a choice) and answered.
    deliver(tg, message_update(65, "/start MAT-12345_link"))
    [row] = inbound_rows(tg.runtime)
    assert row.payload == {"link": "start:MAT-12345_link"} and row.body == "/start"
    assert tg.fake.messages_to(CHAT)
    deliver(tg, message_update(66, contact=own))
    shared_row = inbound_rows(tg.runtime)[-1]
    assert shared_row.payload == {"link": "contact:+15555550101"} and shared_row.body == ""
    assert shared_row.state == "processed" and len(tg.fake.messages_to(CHAT)) == 2


def test_telegram_not_configured_is_404(runtime):
    app = create_app(runtime.settings, runtime)
    response = app.test_client().post("/webhooks/telegram", json=message_update(70, "hola"), headers={HEADER: SECRET})
    assert response.status_code == 404


def test_database_down_answers_503_so_telegram_resends(tmp_path, fake):
    # A database file in a directory that does not exist: every connection fails (OperationalError).
    missing = "sqlite:///" + str(tmp_path / "no-such-dir" / "puente.db")
    settings = _telegram_settings(missing, tmp_path, fake)
    runtime = build_runtime(settings, in_process=True)
    try:
        client = create_app(settings, runtime).test_client()
        response = client.post("/webhooks/telegram", json=message_update(80, "hola"), headers={HEADER: SECRET})
        assert response.status_code == 503
        assert fake.sent == []
    finally:
        runtime.queue.join()
        runtime.close()


# -- sending: outcomes recorded in the outbox ---------------------------------------------------
def test_flood_control_makes_the_reply_wait_and_it_is_sent_once_later(tg):
    tg.fake.fail_next("429", method="sendMessage", retry_after=3)
    deliver(tg, message_update(90, "hola"))
    [out] = outbound_rows(tg.runtime)
    assert out.state == "pending" and out.error == "rate_limited" and out.attempts == 1
    assert out.locked_until > utcnow()
    assert tg.fake.sent == [] and [r["method"] for r in tg.fake.requests] == ["sendMessage"]

    tg.runtime.relay()  # still backing off: the relay leaves it alone
    tg.runtime.queue.join()
    assert tg.fake.sent == []

    # Time passes: the backoff and the relay's grace period are over.
    past = utcnow() - timedelta(minutes=5)
    with tg.runtime.Session.begin() as session:
        session.execute(update(Message).where(Message.id == out.id).values(locked_until=past, received_at=past))
    assert tg.runtime.relay() == 1
    tg.runtime.queue.join()
    tg.runtime.relay()
    tg.runtime.queue.join()
    [sent] = tg.fake.messages_to(CHAT)
    [out] = outbound_rows(tg.runtime)
    assert out.state == "sent" and out.provider_id == str(sent["message_id"]) and out.attempts == 2


def test_rate_limits_are_retried_and_server_errors_are_never_resent_blindly(tg):
    channel = tg.runtime.channels["telegram"]
    tg.fake.fail_next("429", retry_after=7)
    assert channel.send(str(CHAT), Reply("hola")) == SendResult("retry", error="rate_limited", retry_after=7.0)
    tg.fake.fail_next("500")
    assert channel.send(str(CHAT), Reply("hola")) == SendResult("unknown", error="server_error")
    unreachable = TelegramChannel(TOKEN, SECRET, f"http://127.0.0.1:{closed_port()}", timeout=2)
    assert unreachable.send(str(CHAT), Reply("hola")).state == "retry"
    assert tg.fake.sent == []


def test_a_timeout_is_unknown_and_never_resent(tg):
    # The fake records the message (Telegram got it), then answers after the client gave up.
    tg.runtime.channels["telegram"] = TelegramChannel(TOKEN, SECRET, tg.fake.url, timeout=0.5)
    tg.fake.fail_next("timeout", method="sendMessage")
    deliver(tg, message_update(100, "hola"))
    [out] = outbound_rows(tg.runtime)
    assert out.state == "unknown" and out.error == "timeout"
    past = utcnow() - timedelta(minutes=5)
    with tg.runtime.Session.begin() as session:
        session.execute(update(Message).where(Message.id == out.id).values(received_at=past))
    tg.runtime.relay()
    tg.runtime.queue.join()
    assert len(tg.fake.messages_to(CHAT)) == 1
    assert [r["method"] for r in tg.fake.requests] == ["sendMessage"]


def test_a_user_who_blocked_the_bot_fails_the_reply(tg):
    tg.fake.fail_next("403", method="sendMessage")
    deliver(tg, message_update(110, "hola"))
    [out] = outbound_rows(tg.runtime)
    assert out.state == "failed" and out.error == "blocked"
    tg.runtime.relay()
    tg.runtime.queue.join()
    assert tg.fake.sent == [] and len(tg.fake.requests) == 1


def test_a_wrong_token_fails_rather_than_retrying_forever(fake):
    wrong = TelegramChannel("999:WRONG-token", SECRET, fake.url)
    assert wrong.send(str(CHAT), Reply("hola")) == SendResult("failed", error="unauthorized")


# -- rendering --------------------------------------------------------------------------------------
def test_long_text_is_split_into_parts_within_telegrams_limit(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    text = " ".join(f"Frase número {i} sobre su caso." for i in range(500))  # ~15,000 chars
    result = channel.send(str(CHAT), Reply(text, (Choice("menu", "Menú"),)))
    parts = fake.messages_to(CHAT)
    assert len(parts) == 4 and all(len(p["text"]) <= 4096 for p in parts)
    assert " ".join(p["text"] for p in parts) == text
    assert [p["reply_markup"] for p in parts[:-1]] == [None] * 3 and parts[-1]["reply_markup"]
    assert result == SendResult("sent", provider_id=str(parts[-1]["message_id"]))
    # Telegram counts UTF-16 units: an emoji is two.
    channel.send("55", Reply("🙂" * 5000))
    assert [len(p["text"].encode("utf-16-le")) // 2 <= 4096 for p in fake.messages_to("55")] == [True, True, True]


def test_a_later_part_waits_out_a_short_flood_control_but_never_resends_earlier_parts(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    text = "Primera parte. " * 200 + "\n" + "Segunda parte. " * 200  # 6,001 characters: two parts
    fake.fail_next("429", method="sendMessage", after=1, retry_after=1)
    assert channel.send("1", Reply(text)).state == "sent"
    assert len(fake.messages_to("1")) == 2
    fake.fail_next("429", method="sendMessage", after=1, retry_after=60)
    assert channel.send("2", Reply(text)) == SendResult("unknown", error="partly_sent")
    assert len(fake.messages_to("2")) == 1


def test_sends_to_one_chat_keep_to_about_one_a_second_after_a_short_burst(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    for i in range(5):
        assert channel.send("31", Reply(f"Mensaje {i}")).state == "sent"
    assert channel.send("32", Reply("Otro chat")).state == "sent"
    times = [m["at"] for m in fake.messages_to("31")]
    assert times[2] - times[0] < 0.5  # a burst of three goes at once
    assert [round(b - a, 1) >= 0.9 for a, b in zip(times[2:], times[3:])] == [True, True]  # then one a second
    assert fake.messages_to("32")[0]["at"] - times[-1] < 0.5  # another chat does not wait for this one


def test_a_reply_facing_a_long_wait_for_its_chat_goes_back_to_the_queue_unsent(fake):
    from channels.base import ChatPacer

    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    channel._pacer = ChatPacer(per_second=0.01, burst=1)  # a chat that just had its message: the next is 100 s away
    assert channel.send("33", Reply("Primero")).state == "sent"
    result = channel.send("33", Reply("Segundo"))
    assert (result.state, result.error) == ("retry", "rate_limited") and result.retry_after > 0
    assert [m["text"] for m in fake.messages_to("33")] == ["Primero"]


def test_choices_become_an_inline_keyboard_without_the_numbered_hint(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    reply = Reply("¿Qué necesita?", (Choice("status", "Estado de mi caso"), Choice("balance", "Saldo")),
                  hint="Responda 1 o 2.")
    channel.send(str(CHAT), reply)
    [sent] = fake.messages_to(CHAT)
    assert sent["text"] == "¿Qué necesita?"
    assert sent["reply_markup"] == {"inline_keyboard": [[{"text": "Estado de mi caso", "callback_data": "status"}],
                                                        [{"text": "Saldo", "callback_data": "balance"}]]}
    # A value too long for callback_data (64 bytes): the choices go out as numbers instead.
    long_value = Reply("Elija:", (Choice("x" * 65, "Uno"), Choice("b", "Dos")), hint="Responda 1 o 2.")
    channel.send("9", long_value)
    [numbered] = fake.messages_to("9")
    assert numbered["text"] == "Elija:\n1. Uno\n2. Dos\nResponda 1 o 2." and numbered["reply_markup"] is None


# -- files and setup --------------------------------------------------------------------------------
def test_fetch_file_is_capped_while_streaming(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    reported = fake.add_file(b"x" * 5000)
    with pytest.raises(TooLarge):
        channel.fetch_file(reported, max_bytes=1000)  # refused from getFile's size, before downloading
    unreported = fake.add_file(b"y" * 300_000, report_size=False)
    with pytest.raises(TooLarge):
        channel.fetch_file(unreported, max_bytes=100_000)
    assert channel.fetch_file(unreported) == b"y" * 300_000
    with pytest.raises(FileRefused) as missing:
        channel.fetch_file("no-such-file")
    assert TOKEN not in str(missing.value)
    unreachable = TelegramChannel(TOKEN, SECRET, f"http://127.0.0.1:{closed_port()}", timeout=2)
    with pytest.raises(FetchError) as down:
        unreachable.fetch_file(reported)
    assert not isinstance(down.value, PermissionError) and TOKEN not in str(down.value)


def test_the_fake_speaks_json_forms_and_telegrams_errors(fake):
    def call(path, body: bytes, content_type: str):
        req = urllib.request.Request(fake.url + path, data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, body = call(f"/bot{TOKEN}/sendMessage", json.dumps({"chat_id": 5, "text": "hi"}).encode(), "application/json")
    assert status == 200 and body["ok"] and body["result"]["chat"]["id"] == 5
    status, body = call(f"/bot{TOKEN}/getMe", b"", "application/x-www-form-urlencoded")
    assert body["result"]["is_bot"] is True
    assert call("/bot1:other/getMe", b"", "application/json") == (
        401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    fake.fail_next("429")
    assert call(f"/bot{TOKEN}/sendMessage", b"chat_id=5&text=x", "application/x-www-form-urlencoded") == (
        429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
              "parameters": {"retry_after": 3}})
    photo = asyncio.run(_send_photo(fake.url))
    assert photo > 0 and fake.sent[-1]["photo"] == {"filename": "passport.jpg", "size": 4}
    assert [m["chat_id"] for m in fake.sent] == ["5", "5"]


async def _send_photo(url: str) -> int:
    from telegram import Bot

    async with Bot(TOKEN, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot") as bot:
        message = await bot.send_photo(chat_id=5, photo=b"\xff\xd8\xff\xe0", filename="passport.jpg", caption="x")
        return message.message_id


def test_set_webhook_sends_the_secret(fake):
    channel = TelegramChannel(TOKEN, SECRET, fake.url)
    assert channel.set_webhook("https://firm.example/webhooks/telegram")
    assert fake.webhooks == [{"url": "https://firm.example/webhooks/telegram", "secret_token": SECRET,
                              "allowed_updates": ["message", "callback_query"]}]


def test_the_token_never_reaches_logs_paths_or_errors(tg, caplog):
    caplog.set_level(logging.DEBUG)
    deliver(tg, message_update(120, "hola"))
    tg.fake.fail_next("429", method="sendMessage")
    deliver(tg, message_update(121, "hola otra vez", chat_id=CHAT + 5))
    channel = tg.runtime.channels["telegram"]
    channel.fetch_file(tg.fake.add_file(b"abc"))
    with pytest.raises(FetchError):
        channel.fetch_file("no-such-file")
    channel.set_webhook("https://firm.example/webhooks/telegram")
    assert any("/bot<token>/sendMessage" in r.getMessage() for r in caplog.records)  # httpx did log the call
    assert TOKEN not in caplog.text and "TEST-token" not in caplog.text
    leaks = [(r.name, r.msg, r.args) for r in caplog.records if TOKEN in r.getMessage()]
    assert not leaks
    assert SECRET not in caplog.text
    assert all("TEST-token" not in rule.rule for rule in tg.app.url_map.iter_rules())
    assert "TEST-token" not in repr(channel)
    with tg.runtime.Session() as session:
        errors = session.scalars(select(Message.error).where(Message.error.is_not(None))).all()
        assert errors and all("TEST-token" not in e for e in errors)
        assert session.scalar(select(func.count()).select_from(Message)) >= 3


def test_button_data_that_was_never_on_our_buttons_is_ignored(tg):
    """A modified client can send any callback data; a forged "contact:…" must not link a phone."""
    forged = button_update(77, "contact:+15555550101", keyboard=(("status", "Estado de mi caso"),))
    assert post(tg, forged).status_code == 200
    assert inbound_rows(tg.runtime) == []
    start = message_update(78, "/start bad!token")
    deliver(tg, start)
    assert [m.payload.get("link") for m in inbound_rows(tg.runtime)] == [None]  # malformed token: no link


def test_the_date_of_birth_question_offers_telegrams_share_phone_button(tg):
    deliver(tg, message_update(90, "hola"))
    [sent] = tg.fake.messages_to(CHAT)
    keyboard = sent["reply_markup"]
    keyboard = json.loads(keyboard) if isinstance(keyboard, str) else keyboard
    assert keyboard["keyboard"][0][0]["request_contact"] is True
    assert keyboard["keyboard"][0][0]["text"] == "Compartir mi número de teléfono"
