"""`puente demo` really serves: migrates, seeds, and answers through the simulator API."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post(url: str, data: dict):
    req = urllib.request.Request(url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_demo_serves_the_simulator_with_demo_data(tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/demo.db", "PUENTE_STORAGE_DIR": str(tmp_path / "files")}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "puente"), "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                assert _get(base + "/healthz")["status"] == "ok"
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("demo did not start: " + proc.stdout.read1().decode(errors="replace"))
        page = urllib.request.urlopen(base + "/simulator", timeout=5).read().decode()
        assert "Puente Demo Law Office" in page and "+15555550101" in page
        _post(base + "/simulator/api/messages", {"channel": "sms", "address": "+15555550103", "text": "hi", "id": "d1"})
        _post(base + "/simulator/api/messages", {"channel": "sms", "address": "+15555550103", "text": "12/01/1992", "id": "d2"})
        for _ in range(100):
            texts = [m["text"] for m in _get(base + "/simulator/api/messages?channel=sms&address=%2B15555550103")["messages"]
                     if m["direction"] == "out"]
            if any("Emily" in t for t in texts):
                break
            time.sleep(0.1)
        assert any("date of birth" in t for t in texts) and any("Emily" in t for t in texts)

        # The page's messages went in as signed Twilio webhooks (a MessageSid, not the page's id),
        # and the page still sees its own id (it confirms its pending bubbles by it).
        with sqlite3.connect(tmp_path / "demo.db") as db:
            sids = [row[0] for row in db.execute(
                "SELECT provider_id FROM messages WHERE channel = 'sms' AND direction = 'in' ORDER BY id")]
        assert len(sids) == 2 and all(s.startswith("SM") and len(s) == 34 for s in sids), sids
        inbound = [m for m in _get(base + "/simulator/api/messages?channel=sms&address=%2B15555550103")["messages"]
                   if m["direction"] == "in"]
        assert [m["provider_id"] for m in inbound] == ["d1", "d2"]
        # a double submit is a no-op
        _post(base + "/simulator/api/messages", {"channel": "sms", "address": "+15555550103", "text": "hi", "id": "d1"})
        # Replies went out through the Twilio sandbox, whose signed status callback marks them delivered.
        for _ in range(100):
            states = [m["state"] for m in _get(base + "/simulator/api/messages?channel=sms&address=%2B15555550103")["messages"]
                      if m["direction"] == "out"]
            if states and all(state == "delivered" for state in states):
                break
            time.sleep(0.1)
        assert states and all(state == "delivered" for state in states), states

        # WhatsApp and Telegram go through their webhooks too.
        for channel in ("whatsapp", "telegram"):
            _post(base + "/simulator/api/messages", {"channel": channel, "address": "+15555550103", "text": "hi",
                                                     "id": f"{channel}-1"})
            url = base + f"/simulator/api/messages?channel={channel}&address=%2B15555550103"
            for _ in range(100):
                out = [m for m in _get(url)["messages"] if m["direction"] == "out"]
                if out and out[-1]["state"] in (("delivered",) if channel == "whatsapp" else ("sent", "delivered")):
                    break
                time.sleep(0.1)
            assert out and "date of birth" in out[-1]["text"], (channel, out)
        with sqlite3.connect(tmp_path / "demo.db") as db:
            rows = dict(db.execute("SELECT channel, provider_id FROM messages WHERE direction = 'in' AND channel != 'sms'"))
            assert len(list(db.execute("SELECT id FROM messages WHERE channel = 'sms' AND direction = 'in'"))) == 2
        assert rows["whatsapp"].startswith("SM") and rows["telegram"].startswith("u"), rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)
