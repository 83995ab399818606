"""The demo's provider sandbox and the simulator's webhooks: the page's messages go in as signed
Twilio and Telegram webhooks through the real routes; replies go out through the channel code to
the sandbox, whose signed status callback marks Twilio messages delivered. Files the page attaches
are held by the sandbox as the provider would hold them and downloaded by the channel code."""
from __future__ import annotations

import hashlib
import io
import threading
import time

import pytest
import requests
from sqlalchemy import select

from bot.runtime import build_runtime
from services.demo import seed
from services.models import Conversation, Document, Message
from tests.samples import pdf, photo
from web import create_app
from web.provider_sandbox import (DEMO_TELEGRAM_BOT_TOKEN, DEMO_TWILIO_ACCOUNT_SID, DEMO_TWILIO_AUTH_TOKEN,
                                  add_telegram_file, add_twilio_media, demo_provider_settings, media_store)

MARIA = "+15555550101"  # demo client, date of birth 21/03/1988


@pytest.fixture
def served_app(settings):
    """The demo app with the sandbox settings, served on an ephemeral port (the sandbox's status
    callback and the channel's media downloads come back over HTTP); yields (base, runtime, app)."""
    from werkzeug.serving import make_server

    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    runtime = build_runtime(demo_provider_settings(settings.with_(demo=True), base), in_process=True)
    with runtime.Session.begin() as session:
        seed(session)
    holder["app"] = create_app(runtime.settings, runtime)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, runtime, holder["app"]
    finally:
        server.shutdown()
        thread.join(timeout=5)
        runtime.queue.join()
        runtime.close()


@pytest.fixture
def served(served_app):
    base, runtime, _app = served_app
    return base, runtime


def _say(base: str, channel: str, text: str, page_id: str, choice: str | None = None, address: str = "+15555550103"):
    resp = requests.post(base + "/simulator/api/messages", timeout=10,
                         json={"channel": channel, "address": address, "text": text, "choice": choice, "id": page_id})
    assert resp.status_code == 202, resp.text
    return resp


def _history(base: str, channel: str, address: str = "+15555550103") -> list[dict]:
    return requests.get(base + "/simulator/api/messages", params={"channel": channel, "address": address},
                        timeout=10).json()["messages"]


def _wait_out(base: str, channel: str, count: int, states=("sent", "delivered")) -> list[dict]:
    for _ in range(150):
        out = [m for m in _history(base, channel) if m["direction"] == "out"]
        if len(out) >= count and all(m["state"] in states for m in out):
            return out
        time.sleep(0.1)
    raise AssertionError(f"{channel}: {out}")


def _inbound(runtime, channel: str) -> list[Message]:
    with runtime.Session() as session:
        return list(session.scalars(select(Message).where(Message.channel == channel, Message.direction == "in")
                                    .order_by(Message.id)))


def test_whatsapp_button_press_is_a_signed_webhook_with_its_payload(served):
    base, runtime = served
    _say(base, "whatsapp", "hi", "w1")
    _say(base, "whatsapp", "12/01/1992", "w2")
    out = _wait_out(base, "whatsapp", 2, states=("delivered",))
    choices = next(m["choices"] for m in reversed(out) if m["choices"])
    _say(base, "whatsapp", choices[0]["label"], "w3", choice=choices[0]["value"])
    _say(base, "whatsapp", choices[0]["label"], "w3", choice=choices[0]["value"])  # a double submit
    _wait_out(base, "whatsapp", 3, states=("delivered",))
    rows = _inbound(runtime, "whatsapp")
    assert len(rows) == 3 and all(r.provider_id.startswith("SM") for r in rows)
    assert (rows[-1].payload or {}).get("choice") == choices[0]["value"]
    # the page still confirms its bubbles by its own ids
    assert [m["provider_id"] for m in _history(base, "whatsapp") if m["direction"] == "in"] == ["w1", "w2", "w3"]


def test_sms_button_press_is_typed_as_its_number(served):
    base, runtime = served
    _say(base, "sms", "hi", "s1")
    _say(base, "sms", "12/01/1992", "s2")
    out = _wait_out(base, "sms", 2, states=("delivered",))
    choices = next(m["choices"] for m in reversed(out) if m["choices"])
    _say(base, "sms", choices[1]["label"], "s3", choice=choices[1]["value"])
    _wait_out(base, "sms", 3, states=("delivered",))
    assert _inbound(runtime, "sms")[-1].body == "2"


def test_telegram_button_press_is_a_callback_query(served):
    base, runtime = served
    _say(base, "telegram", "hola", "t1")
    out = _wait_out(base, "telegram", 1)
    assert "fecha de nacimiento" in out[0]["text"] or "date of birth" in out[0]["text"]
    rows = _inbound(runtime, "telegram")
    assert rows[0].provider_id.startswith("u")
    with runtime.Session() as session:  # the chat id: the picked number's digits
        assert session.get(Conversation, rows[0].conversation_id).address == "15555550103"
    with runtime.Session.begin() as session:  # offer a choice as the last reply did
        last = session.scalars(select(Message).where(Message.channel == "telegram", Message.direction == "out")).first()
        last.payload = {**(last.payload or {}), "choices": [{"value": "menu:balance", "label": "What I owe"}]}
    _say(base, "telegram", "What I owe", "t2", choice="menu:balance")
    rows = _inbound(runtime, "telegram")
    assert len(rows) == 2 and rows[1].body == "What I owe"
    assert (rows[1].payload or {}).get("choice") == "menu:balance"


def test_the_sandbox_refuses_wrong_credentials(served):
    base, _ = served
    url = f"{base}/simulator/provider/twilio/2010-04-01/Accounts/{DEMO_TWILIO_ACCOUNT_SID}/Messages.json"
    form = {"To": "+15555550103", "From": "+15555550100", "Body": "x"}
    assert requests.post(url, data=form, auth=(DEMO_TWILIO_ACCOUNT_SID, "wrong"), timeout=10).status_code == 401
    assert requests.post(base + "/simulator/provider/telegram/bot1:WRONG/sendMessage",
                         json={"chat_id": 1, "text": "x"}, timeout=10).status_code == 401
    # a webhook that is not signed with the demo's credentials is refused by the real route
    assert requests.post(base + "/webhooks/twilio", data=form, timeout=10).status_code == 403


# -- media --------------------------------------------------------------------------------------
def _twilio_media(base: str, content: bytes, content_type: str) -> str:
    message_sid, media_sid = "MM" + "1" * 32, "ME" + hashlib.sha256(content).hexdigest()[:32]
    return add_twilio_media(base + "/simulator/provider/twilio", DEMO_TWILIO_ACCOUNT_SID, message_sid, media_sid,
                            content, content_type)


def test_sandbox_twilio_media_needs_basic_auth_then_redirects_to_the_cdn(served):
    base, runtime = served
    data = photo(seed=31)
    url = _twilio_media(base, data, "image/jpeg")
    auth = (DEMO_TWILIO_ACCOUNT_SID, DEMO_TWILIO_AUTH_TOKEN)
    assert requests.get(url, timeout=10, allow_redirects=False).status_code == 401
    assert requests.get(url, auth=(DEMO_TWILIO_ACCOUNT_SID, "wrong"), timeout=10).status_code == 401
    assert requests.delete(url, timeout=10).status_code == 401

    resp = requests.get(url, auth=auth, timeout=10, allow_redirects=False)
    assert resp.status_code == 307
    cdn = resp.headers["Location"]
    assert cdn.startswith(base) and "/Accounts/" not in cdn
    served_file = requests.get(cdn, timeout=10)
    assert served_file.status_code == 200 and served_file.content == data
    assert served_file.headers["Content-Type"] == "image/jpeg"
    # like S3 behind Twilio's redirect: a request that carries credentials is refused
    assert requests.get(cdn, auth=auth, timeout=10).status_code == 400
    # the Media resource, and the channel's own download (credentials to the API only)
    meta = requests.get(url + ".json", auth=auth, timeout=10).json()
    assert meta["content_type"] == "image/jpeg" and meta["sid"] == url.rsplit("/", 1)[1]
    assert runtime.channels["sms"].fetch_media(url) == data

    # DELETE (what the channel's delete_media sends, at ….json) removes it, CDN copy included
    assert requests.delete(url + ".json", auth=auth, timeout=10).status_code == 204
    assert requests.get(url, auth=auth, timeout=10, allow_redirects=False).status_code == 404
    assert requests.get(cdn, timeout=10).status_code == 404
    assert requests.delete(url, auth=auth, timeout=10).status_code == 404


def test_sandbox_telegram_get_file_and_download(served):
    base, runtime = served
    data = pdf()
    ref = add_telegram_file("BQAC" + "7" * 40, data, "application/pdf", photo=False)
    api = base + "/simulator/provider/telegram"
    assert requests.post(f"{api}/bot1:WRONG/getFile", json={"file_id": ref["file_id"]}, timeout=10).status_code == 401
    bad = requests.post(f"{api}/bot{DEMO_TELEGRAM_BOT_TOKEN}/getFile", json={"file_id": "nope"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["ok"] is False
    info = requests.post(f"{api}/bot{DEMO_TELEGRAM_BOT_TOKEN}/getFile", data={"file_id": ref["file_id"]}, timeout=10).json()
    assert info["ok"] is True
    result = info["result"]
    assert result["file_id"] == ref["file_id"] and result["file_size"] == len(data)
    assert result["file_unique_id"] == ref["file_unique_id"] and result["file_path"].endswith(".pdf")
    download = requests.get(f"{api}/file/bot{DEMO_TELEGRAM_BOT_TOKEN}/{result['file_path']}", timeout=10)
    assert download.status_code == 200 and download.content == data
    assert requests.get(f"{api}/file/bot1:WRONG/{result['file_path']}", timeout=10).status_code == 401
    # the channel's own path: getFile through the SDK, then the capped download
    assert runtime.channels["telegram"].fetch_media("tg-file:" + ref["file_id"]) == data


def test_sandbox_media_store_is_bounded():
    from web.provider_sandbox import _File, _MediaStore

    store = _MediaStore(max_files=3, max_bytes=10)
    for i in range(5):
        store.put(f"k{i}", _File(content=b"x" * 3, content_type="text/plain", owner="o", token=f"t{i}"))
    assert [store.get(f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert store.by_token("t0") is None and store.by_token("t4") is not None
    store.put("big", _File(content=b"y" * 8, content_type="text/plain", owner="o"))
    assert store.get("big") is not None and store.get("k3") is None and store.get("k4") is None


def _post_file(client, channel: str, address: str, page_id: str, content: bytes, filename: str, content_type: str,
               text: str = ""):
    return client.post("/simulator/api/messages", content_type="multipart/form-data", data={
        "channel": channel, "address": address, "text": text, "id": page_id,
        "file": (io.BytesIO(content), filename, content_type)})


def _verify_maria(client, runtime, channel: str) -> None:
    for i, text in enumerate(("hola", "21/03/1988", "qué me falta")):
        resp = client.post("/simulator/api/messages", json={"channel": channel, "address": MARIA, "text": text,
                                                           "id": f"{channel}-m{i}"})
        assert resp.status_code == 202, resp.get_data(as_text=True)
        runtime.queue.join()


def _replies_to(runtime, message: Message) -> list[str]:
    with runtime.Session() as session:
        return list(session.scalars(select(Message.body).where(Message.reply_to_id == message.id)
                                    .order_by(Message.id)))


def test_simulator_multipart_pdf_travels_through_the_twilio_sandbox(served_app):
    base, runtime, app = served_app
    client = app.test_client()
    _verify_maria(client, runtime, "whatsapp")
    data = pdf(pages=2)
    resp = _post_file(client, "whatsapp", MARIA, "wa-file-1", data, "estado_de_cuenta.pdf", "application/pdf")
    assert resp.status_code == 202 and resp.get_json() == {"accepted": True}
    runtime.queue.join()

    inbound = _inbound(runtime, "whatsapp")[-1]
    assert inbound.provider_id.startswith("MM")
    [item] = inbound.media
    assert item["content_type"] == "application/pdf"
    assert item["url"].startswith(base + "/simulator/provider/twilio/2010-04-01/Accounts/")
    with runtime.Session() as session:
        doc = session.scalar(select(Document).where(Document.message_id == inbound.id))
        assert doc is not None
        assert doc.sha256 == hashlib.sha256(data).hexdigest() and doc.size == len(data)
        assert doc.status == "valid" and doc.mime == "application/pdf"
    assert any("Recibido para «" in r for r in _replies_to(runtime, inbound))
    # the app deleted the provider's copy once its own was stored
    media_sid = item["url"].rsplit("/", 1)[1]
    assert media_store.get(media_sid) is None
    # the page still confirms its bubble by its own id, and sees the attachment in the history
    history = client.get("/simulator/api/messages", query_string={"channel": "whatsapp", "address": MARIA}).get_json()
    sent = [m for m in history["messages"] if m["direction"] == "in"][-1]
    assert sent["provider_id"] == "wa-file-1" and sent["media"] == [{"content_type": "application/pdf", "filename": None}]


def test_simulator_multipart_photo_travels_through_the_telegram_sandbox(served_app):
    """A JPEG goes as a Telegram photo with its caption; the channel fetches it with getFile. (A chat
    id is no phone number: this chat is not linked to María, so the bot keeps the file for later.)"""
    base, runtime, app = served_app
    client = app.test_client()
    data = photo(seed=30)
    resp = _post_file(client, "telegram", MARIA, "tg-file-1", data, "acta.jpg", "image/jpeg", text="mi acta")
    assert resp.status_code == 202
    runtime.queue.join()
    inbound = _inbound(runtime, "telegram")[-1]
    assert inbound.provider_id.startswith("u") and inbound.body == "mi acta"
    assert inbound.media[0]["url"].startswith("tg-file:") and inbound.media[0]["content_type"] == "image/jpeg"
    with runtime.Session() as session:
        doc = session.scalar(select(Document).where(Document.message_id == inbound.id))
        assert doc.sha256 == hashlib.sha256(data).hexdigest() and doc.status == "valid"
    assert any("archivo" in r for r in _replies_to(runtime, inbound))


def test_simulator_refuses_an_oversized_upload(served_app):
    _base, _runtime, app = served_app
    resp = _post_file(app.test_client(), "sms", MARIA, "big-1", b"\0" * (21 * 1024 * 1024 + 1), "huge.pdf",
                      "application/pdf")
    assert resp.status_code == 413
    assert resp.get_json()["error"] == "too_large"
    # a file without a number, or nothing at all, is a bad request
    assert _post_file(app.test_client(), "sms", "", "x", b"%PDF", "a.pdf", "application/pdf").status_code == 400
