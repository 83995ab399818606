"""`puente demo` really serves: migrates, seeds, and answers through the simulator API."""
from __future__ import annotations

import json
import os
import socket
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
    finally:
        proc.terminate()
        proc.wait(timeout=10)
