"""The real app in demo mode served on an ephemeral port, for browser tests."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from bot.runtime import build_runtime
from bot.settings import Settings
from services.demo import seed, seed_staff
from services.migrate import upgrade
from web import create_app
from web.provider_sandbox import demo_provider_settings

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def live_demo(tmp: Path, *, staff: bool = False):
    """Demo mode, in-process jobs, demo data (and demo staff), with the demo's provider sandbox: pages'
    messages go in as signed webhooks and replies out through the channel code to the app's sandbox.
    Yields .url and .runtime."""
    from werkzeug.serving import make_server

    url = "sqlite:///" + str(tmp / "puente.db")
    environ = {"DATABASE_URL": url, "PUENTE_STORAGE_DIR": str(tmp / "storage")}
    served = {}  # the port is known once the server is bound; the app is built for that address
    server = make_server("127.0.0.1", 0, lambda environ, start: served["app"](environ, start), threaded=True)
    settings = demo_provider_settings(Settings.from_env(environ=environ, load_dotenv=False).with_(demo=True),
                                      f"http://127.0.0.1:{server.server_port}")
    upgrade(url)
    runtime = build_runtime(settings, in_process=True)
    with runtime.Session.begin() as session:
        seed(session)
        if staff:
            seed_staff(session)
    served["app"] = create_app(settings, runtime)
    thread = threading.Thread(target=server.serve_forever, name="live-demo-server", daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", runtime=runtime)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        runtime.queue.join()
        runtime.close()


@contextmanager
def chromium(sync_api):
    """Debian's headless Chromium through Playwright (never `playwright install`)."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
