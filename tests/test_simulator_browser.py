"""The chat simulator page in a real (headless) Chromium against the real app and engine.

Needs the `playwright` package and Debian's Chromium at /usr/bin/chromium (no `playwright install`).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from tests.live_demo import chromium, live_demo  # noqa: E402

expect = sync_api.expect
REPLY_TIMEOUT = 20_000  # ms: the reply travels accept → queue → engine → outbox → poll
expect.set_options(timeout=REPLY_TIMEOUT)  # a loaded 2-core CI machine is slower than a laptop
SCREENSHOT = "/tmp/simulator.png"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The real app (demo mode, in-process jobs, demo data) served on an ephemeral port, with the
    demo's provider sandbox (see tests/live_demo.py)."""
    with live_demo(tmp_path_factory.mktemp("simulator")) as served:
        yield served.url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _open(page, base_url: str, address: str, channel: str = "sms") -> None:
    page.goto(base_url + "/simulator")
    expect(page.locator("#sim-number")).to_be_visible()
    page.select_option("#sim-number", address)
    page.select_option("#sim-channel", channel)
    expect(page.locator("#sim-badge")).to_have_text(re.compile(channel, re.I))


def _say(page, text: str) -> None:
    """Types a message and presses Enter; waits until the page shows it as the client's bubble."""
    before = page.locator("#sim-messages .msg-assistant").count()
    page.fill("#sim-input", text)
    page.press("#sim-input", "Enter")
    expect(page.locator("#sim-messages .msg-client .bubble-text").last).to_have_text(text)
    expect(page.locator("#sim-input")).to_have_value("")
    page.wait_for_function(
        "n => document.querySelectorAll('#sim-messages .msg-assistant').length > n", arg=before,
        timeout=REPLY_TIMEOUT)


def _assistant_text(page) -> str:
    return "\n".join(page.locator("#sim-messages .msg-assistant .bubble-text").all_inner_texts())


def test_spanish_conversation_verifies_and_shows_balance(page, base_url):
    _open(page, base_url, "+15555550101")
    expect(page.locator("#sim-number option:checked")).to_have_text(
        "+15555550101 — María López (es), Daniel López (es)")
    expect(page.get_by_text("Demo: replies stay in this page; no real SMS is sent.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Demostración:"))).to_be_visible()

    _say(page, "hola")
    messages = page.locator("#sim-messages")
    expect(messages.locator(".msg-assistant").last).to_contain_text("fecha de nacimiento", timeout=REPLY_TIMEOUT)

    _say(page, "21/03/1988")
    expect(messages.locator(".msg-assistant", has_text="María").first).to_be_visible(timeout=REPLY_TIMEOUT)

    # the menu comes as tappable, numbered choices; tap the balance
    balance = messages.locator("button.choice:not([disabled])", has_text="Lo que debo")
    expect(balance).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(balance).to_have_text(re.compile(r"^\d+\. Lo que debo$"))
    balance.click()
    expect(messages.locator(".msg-client .bubble-text").last).to_have_text("Lo que debo")
    reply = messages.locator(".msg-assistant", has_text="$1,020.00")
    expect(reply).to_be_visible(timeout=REPLY_TIMEOUT)
    expect(reply.last).to_contain_text("$675.00")
    # newlines of multi-line replies are kept
    assert "\n" in reply.last.locator(".bubble-text").inner_text()
    # choices that were answered no longer take taps
    expect(messages.locator("button.choice", has_text="Lo que debo").first).to_be_disabled()
    expect(page.locator("#sim-typing")).to_be_hidden()

    page.wait_for_timeout(300)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_english_conversation_shows_status(page, base_url):
    _open(page, base_url, "+15555550103")
    _say(page, "hi")
    messages = page.locator("#sim-messages")
    expect(messages.locator(".msg-assistant").last).to_contain_text("date of birth", timeout=REPLY_TIMEOUT)
    _say(page, "12/01/1992")
    expect(messages.locator(".msg-assistant", has_text="Emily").first).to_be_visible(timeout=REPLY_TIMEOUT)
    _say(page, "what's my status?")
    expect(messages.locator(".msg-assistant", has_text="Interview scheduled")).to_be_visible(timeout=REPLY_TIMEOUT)

    # changing the channel shows that channel's (empty) conversation; coming back reloads the history
    page.select_option("#sim-channel", "whatsapp")
    expect(messages.locator(".msg")).to_have_count(0)
    expect(page.locator("#sim-empty")).to_be_visible()
    page.select_option("#sim-channel", "sms")
    expect(messages.locator(".msg-assistant", has_text="Interview scheduled")).to_be_visible(timeout=REPLY_TIMEOUT)
    assert page.locator("#sim-messages .msg-client").count() == 3


def test_attached_photo_is_filed_to_the_checklist(page, base_url, tmp_path):
    """María verifies, asks what is missing and attaches a photo, as from her phone: it travels as a
    Twilio WhatsApp media message through the sandbox and is filed to the item being asked for."""
    from tests.samples import photo

    _open(page, base_url, "+15555550101", channel="whatsapp")
    messages = page.locator("#sim-messages")
    _say(page, "hola")
    expect(messages.locator(".msg-assistant").last).to_contain_text("fecha de nacimiento")
    _say(page, "21/03/1988")
    expect(messages.locator(".msg-assistant", has_text="María").first).to_be_visible()
    _say(page, "qué me falta")
    expect(messages.locator(".msg-assistant", has_text="Por favor, envíe")).to_be_visible()

    attach = page.get_by_role("button", name="Adjuntar foto o PDF · Attach photo or PDF")
    expect(attach).to_be_visible()
    file_input = page.locator("#sim-file")
    expect(file_input).to_have_attribute("accept", "image/*,application/pdf")
    assert file_input.get_attribute("capture") is None  # the phone offers camera or gallery itself

    # something obviously too big never leaves the page
    clients = messages.locator(".msg-client")
    before = clients.count()
    big = tmp_path / "enorme.pdf"
    big.write_bytes(b"\0" * (20 * 1024 * 1024 + 1))
    file_input.set_input_files(str(big))
    expect(page.locator("#sim-attach-note")).to_contain_text("20 MB")
    assert clients.count() == before

    picture = tmp_path / "acta.jpg"
    picture.write_bytes(photo(seed=30))
    file_input.set_input_files(str(picture))
    expect(page.locator("#sim-attach-note")).to_be_hidden()
    expect(messages.locator(".msg-client .bubble-text").last).to_have_text("📎 acta.jpg")
    reply = messages.locator(".msg-assistant", has_text="Recibido para «")
    expect(reply).to_be_visible()
    expect(reply.last).to_contain_text("Faltan")
    expect(messages.locator(".msg-client.msg-pending")).to_have_count(0)
    expect(messages.locator(".msg-client.msg-failed")).to_have_count(0)
