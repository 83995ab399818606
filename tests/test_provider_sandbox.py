"""The demo's provider sandbox and the simulator's webhooks: the page's messages go in as signed
Twilio and Telegram webhooks through the real routes; replies go out through the channel code to
the sandbox, whose signed status callback marks Twilio messages delivered."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import select

from bot.runtime import build_runtime
from services.demo import seed
from services.models import Conversation, Message
from web import create_app
from web.provider_sandbox import DEMO_TWILIO_ACCOUNT_SID, demo_provider_settings


@pytest.fixture
def served(settings):
    """The demo app with the sandbox settings, served on an ephemeral port (the sandbox's status
    callback comes back over HTTP)."""
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
        yield base, runtime
    finally:
        server.shutdown()
        thread.join(timeout=5)
        runtime.queue.join()
        runtime.close()


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
