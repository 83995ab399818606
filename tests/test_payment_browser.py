"""Paying from the chat in a real (headless) Chromium: the simulator sends the link, the embedded
test page takes the payment, the receipt arrives in the same chat.

Needs the `playwright` package and Debian's Chromium at /usr/bin/chromium (no `playwright install`).
"""
from __future__ import annotations

import re


# (skips with its reason, as that module does, when Chromium or playwright is missing)
from tests.test_simulator_browser import (REPLY_TIMEOUT, _open, _say, base_url, browser, page,  # noqa: F401
                                          sync_api)

expect = sync_api.expect


def test_client_pays_with_the_link_the_chat_sent(page, base_url):  # noqa: F811
    _open(page, base_url, "+15555550101")
    _say(page, "hola")
    _say(page, "21/03/1988")
    messages = page.locator("#sim-messages")
    expect(messages.locator(".msg-assistant", has_text="María").first).to_be_visible()
    _say(page, "quiero pagar")
    offer = messages.locator(".msg-assistant", has_text="/pay/").last
    expect(offer).to_be_visible()
    text = offer.locator(".bubble-text").inner_text()
    trust_line = next(i for i, line in enumerate(text.splitlines()) if "INV-1002" in line)
    link = re.search(r"https?://\S+/pay/[A-Za-z0-9_-]+", text.splitlines()[trust_line + 1]).group(0)
    assert link.startswith(base_url)

    page.goto(link)
    expect(page.locator("#pay-test")).to_contain_text("TEST PAYMENT — no money moves")
    expect(page.locator("#pay-test")).to_contain_text("PAGO DE PRUEBA")
    expect(page.locator("#pay-invoice")).to_have_text("Factura INV-1002")
    page.click("#pay-button")
    expect(page.locator("#pay-notice")).to_contain_text("Le enviaremos un recibo")

    page.goto(link)  # the link is used now
    expect(page.locator("#pay-notice")).to_contain_text("Este enlace de pago ya se usó")

    _open(page, base_url, "+15555550101")
    expect(page.locator("#sim-messages .msg-assistant", has_text="Recibimos su pago de $675.00")).to_be_visible(
        timeout=REPLY_TIMEOUT)
    expect(page.locator("#sim-messages .msg-assistant", has_text="Recibimos su pago").last).to_contain_text(
        "Esta factura ya está pagada por completo")
