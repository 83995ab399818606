"""The staff console in a real (headless) Chromium next to the chat simulator, against the real app.

Two browser contexts: a client (María, on the simulator page, SMS) and a member of staff (the demo
paralegal, on /console). Covers the staff journey: first sign-in with TOTP enrolment, the live queue,
answering a handoff through the client's channel, handing the thread back to the assistant, rejecting
a received document (the client is told), a matter outside the paralegal's assignments (404), and
the Delivery problems page from the navigation.
Writes the screenshots linked from the README to docs/screenshots/.

Needs the `playwright` package and Debian's Chromium at /usr/bin/chromium (no `playwright install`).
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

import pyotp  # noqa: E402  (a dependency of the console, never missing)
from sqlalchemy import select  # noqa: E402

from services.models import Matter  # noqa: E402
from tests.live_demo import chromium, live_demo  # noqa: E402

expect = sync_api.expect
TIMEOUT = 20_000  # ms: replies travel accept → queue → engine → outbox → poll; the queue polls every 3 s
expect.set_options(timeout=TIMEOUT)  # a loaded 2-core CI machine is slower than a laptop
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PARALEGAL = ("paralegal@example.com", "puente-demo-paralegal")
MARIA = "+15555550101"
STAFF_REPLY = "Hola María, soy Pablo. ¿En qué le puedo ayudar?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app with demo data and demo staff (see tests/live_demo.py)."""
    with live_demo(tmp_path_factory.mktemp("console"), staff=True) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as launched:
        yield launched


class Pages:
    """Opens pages and collects JavaScript errors from all of them."""

    def __init__(self):
        self.errors: list[str] = []

    def open(self, context):
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page


@pytest.fixture(scope="module")
def paralegal(browser, server):
    """The demo paralegal's browser, signed in the first time: email and password, then the enrolment
    page (the secret read from its hidden input, the current code typed), then the recovery codes and
    on to the queue. Yields the signed-in context and what the sign-in showed."""
    pages = Pages()
    context = browser.new_context(viewport=VIEWPORT, locale="es-US")
    page = pages.open(context)
    page.goto(server.url + "/console/login")
    page.fill("input[name=email]", PARALEGAL[0])
    page.fill("input[name=password]", PARALEGAL[1])
    page.click("form button[type=submit]")

    expect(page).to_have_url(re.compile(r"/console/login/enrol"))
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("input[name=secret]").get_attribute("value")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret or ""), secret
    expect(page.locator(".secret code")).to_have_text(secret)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("form button[type=submit]")

    codes = page.locator("ul.codes li code")
    expect(codes).to_have_count(8)
    recovery = codes.all_inner_texts()
    page.click("a.button[href='/console/']")
    expect(page.locator("#queue")).to_be_visible()
    landed = SimpleNamespace(url=page.url, heading=page.locator("h1").inner_text(), recovery=recovery,
                             cookies=context.cookies())
    page.close()
    try:
        yield SimpleNamespace(context=context, pages=pages, signed_in=landed)
    finally:
        context.close()


@pytest.fixture
def staff(paralegal):
    page = paralegal.pages.open(paralegal.context)
    yield page
    page.close()
    errors, paralegal.pages.errors[:] = list(paralegal.pages.errors), []
    assert not errors, f"JavaScript errors on the console: {errors}"


@pytest.fixture
def client(browser):
    pages = Pages()
    context = browser.new_context(viewport=VIEWPORT, locale="es-US")
    page = pages.open(context)
    yield page
    context.close()
    assert not pages.errors, f"JavaScript errors on the simulator: {pages.errors}"


# -- the client's side: the chat simulator -------------------------------------------------------
def _open_simulator(page, base_url: str, address: str, channel: str = "sms") -> None:
    page.goto(base_url + "/simulator")
    expect(page.locator("#sim-number")).to_be_visible()
    page.select_option("#sim-number", address)
    page.select_option("#sim-channel", channel)
    expect(page.locator("#sim-badge")).to_have_text(re.compile(channel, re.I))


def _replies(page) -> int:
    return page.locator("#sim-messages .msg-assistant").count()


def _expect_reply(page, after: int, text: str) -> None:
    """Waits until a message to the client shown after the first `after` ones contains `text`."""
    page.wait_for_function(
        """([after, text]) => Array.from(document.querySelectorAll('#sim-messages .msg-assistant .bubble-text'))
             .slice(after).some(e => e.textContent.includes(text))""",
        arg=[after, text], timeout=TIMEOUT)


def _say(page, text: str, expect_text: str | None = None) -> int:
    """Types a message and presses Enter; waits for the client's bubble and for an answer (containing
    `expect_text` when given). Returns how many assistant messages there were before."""
    before = _replies(page)
    page.fill("#sim-input", text)
    page.press("#sim-input", "Enter")
    expect(page.locator("#sim-messages .msg-client .bubble-text").last).to_have_text(text)
    expect(page.locator("#sim-input")).to_have_value("")
    page.wait_for_function(
        "n => document.querySelectorAll('#sim-messages .msg-assistant').length > n", arg=before, timeout=TIMEOUT)
    if expect_text is not None:
        _expect_reply(page, before, expect_text)
    return before


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.wait_for_timeout(300)  # let the last paint settle
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size < 300_000, f"{path} is {path.stat().st_size} bytes"
    return path


def _es(text: str) -> str:
    """The console's Spanish for an English string (the demo staff read the console in Spanish)."""
    from services.i18n import Translator

    return Translator.for_language("es").gettext(text)


def _matter_id(server, external_id: str) -> int:
    with server.runtime.Session() as s:
        return s.scalar(select(Matter.id).where(Matter.external_id == external_id))


# -- the tests -----------------------------------------------------------------------------------
def test_first_sign_in_enrols_totp_and_lands_on_the_live_queue(paralegal, staff, server):
    landed = paralegal.signed_in
    assert landed.url == server.url + "/console/"
    assert landed.heading.startswith(_es("Waiting for a person"))  # the paralegal's console is in Spanish
    assert len(landed.recovery) == 8 and all(re.fullmatch(r"[0-9a-f]{10}", c) for c in landed.recovery)
    [cookie] = [c for c in landed.cookies if c["name"] == "puente_staff"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    staff.goto(server.url + "/console/?lang=en")
    expect(staff.locator("h1")).to_contain_text("Waiting for a person")
    expect(staff.locator("#count")).to_have_text("0")
    expect(staff.locator("#queue tbody tr.empty")).to_have_count(1)
    # Queue, Matters, Delivery problems: no audit or staff pages for a paralegal
    expect(staff.locator("header nav a")).to_have_count(3)
    staff.click("#nav-deliveries")
    expect(staff.locator("h1")).to_contain_text(_es("Delivery problems"))
    expect(staff.locator("#deliveries tbody tr.empty")).to_have_text(_es("No delivery problems to check."))


def test_a_handoff_is_answered_from_the_console_and_a_document_rejected(staff, client, server, tmp_path):
    from tests.samples import photo

    # the queue is open (and polling) before María writes
    staff.goto(server.url + "/console/")
    expect(staff.locator("#queue")).to_be_visible()
    expect(staff.locator("#count")).to_have_text("0")
    staff.evaluate("window.__sameQueuePage = true")  # gone if the page reloads

    _open_simulator(client, server.url, MARIA, "sms")
    _say(client, "hola", "fecha de nacimiento")
    _say(client, "21/03/1988", "María")
    _say(client, "quiero hablar con una persona")

    # the new row shows up by the page's own polling, without a reload
    row = staff.locator("#queue tbody tr[data-id]", has_text="María")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("MAT-2001")
    expect(row).to_contain_text("sms")
    expect(staff.locator("#count")).to_have_text("1")
    assert staff.evaluate("window.__sameQueuePage === true"), "the queue page reloaded instead of updating itself"
    _screenshot(staff, "console-queue.png")

    # the conversation: transcript, summary, reply through María's channel
    row.locator("a").click()
    expect(staff).to_have_url(re.compile(r"/console/conversations/\d+$"))
    conversation_url = staff.url
    expect(staff.locator("#summary")).to_be_visible()
    # a page shown while the summary is still being drafted reloads itself (while the reply box is
    # empty): wait for a settled page before typing, so that the reply is not lost to a reload
    expect(staff.locator("#summary")).not_to_contain_text(_es("The summary is being prepared…"))
    expect(staff.locator(".messages li.in", has_text="quiero hablar con una persona")).to_have_count(1)
    before = _replies(client)
    staff.fill("#reply-text", STAFF_REPLY)
    expect(staff.locator("#reply-text")).to_have_value(STAFF_REPLY)
    staff.click("#send-reply")
    expect(staff).to_have_url(conversation_url)
    expect(staff.locator(".messages li.out.staff", has_text=STAFF_REPLY)).to_have_count(1)
    _expect_reply(client, before, STAFF_REPLY)
    staff.reload()  # the delivery state as it is now
    sent = staff.locator(".messages li.out.staff", has_text=STAFF_REPLY)
    expect(sent).to_contain_text("Pablo Paralegal")
    # the thread scrolls inside its box, oldest first: show its end (the reply), as staff would scroll
    staff.locator(".messages").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    staff.evaluate("window.scrollTo(0, 0)")
    expect(sent).to_be_in_viewport()
    _screenshot(staff, "console-conversation.png")

    # back to the assistant: it answers again, and the queue is empty
    staff.click("#return-to-assistant")
    expect(staff).to_have_url(server.url + "/console/")
    expect(staff.locator("#queue tbody tr[data-id]")).to_have_count(0)
    expect(staff.locator("#count")).to_have_text("0")
    _say(client, "¿cuánto debo?", "$")

    # a document: María sends a photo for the item asked for; the paralegal rejects it
    _say(client, "qué me falta", "Por favor, envíe")
    picture = tmp_path / "acta.jpg"
    picture.write_bytes(photo(seed=60))
    before = _replies(client)
    client.locator("#sim-file").set_input_files(str(picture))
    expect(client.locator("#sim-messages .msg-client .bubble-text").last).to_have_text("📎 acta.jpg")
    _expect_reply(client, before, "Recibido para «")

    staff.locator("header nav a[href='/console/matters']").click()
    expect(staff).to_have_url(server.url + "/console/matters")
    staff.get_by_role("link", name="MAT-2001", exact=True).click()
    expect(staff).to_have_url(re.compile(r"/console/matters/\d+$"))
    expect(staff.locator("h1")).to_contain_text("MAT-2001")
    received = staff.locator("ul.checklist > li.status-received").filter(
        has=staff.locator("a[href^='/console/documents/']"))
    expect(received).to_have_count(1)
    key = received.get_attribute("data-key")
    form = received.locator("form.review")
    form.locator("select[name=reason]").select_option("illegible")
    before = _replies(client)
    form.locator("button[name=decision][value=rejected]").click()
    item = staff.locator(f"ul.checklist > li[data-key='{key}']")
    expect(item).to_have_class(re.compile(r"\bstatus-rejected\b"))
    expect(item).to_contain_text("(La copia es difícil de leer.)")
    expect(staff.locator("p.error")).to_have_count(0)
    _expect_reply(client, before, "Necesitamos de nuevo su documento")
    item.evaluate("e => e.scrollIntoView({block: 'center'})")
    expect(item).to_be_in_viewport()
    _screenshot(staff, "console-matter.png")


def test_a_matter_not_assigned_to_the_paralegal_answers_404(staff, server):
    outside = _matter_id(server, "MAT-2003")
    assert outside is not None
    staff.goto(server.url + "/console/matters")
    expect(staff.get_by_role("link", name="MAT-2001", exact=True)).to_be_visible()
    expect(staff.get_by_role("link", name="MAT-2003", exact=True)).to_have_count(0)
    response = staff.goto(server.url + f"/console/matters/{outside}")
    assert response is not None and response.status == 404
    expect(staff.locator("body")).not_to_contain_text("MAT-2003")
    assert staff.goto(server.url + f"/console/matters/{_matter_id(server, 'MAT-2001')}").status == 200
