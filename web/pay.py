"""/pay/<token>: the short link the chat sends. Redirects to the provider's checkout, or shows the
embedded test page; an expired, used or void link gets a clear page in Spanish and English.

Nothing here records a payment from a page view or a redirect: the test page's "Pay" button
makes a signed event that goes through the same verification and ledger as a processor webhook.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, current_app, redirect, render_template, request, session

from services.i18n import N_, Translator
from services.payments.embedded import new_nonce

bp = Blueprint("pay", __name__, url_prefix="/pay")
LANGUAGES = ("es", "en")  # the page does not know the reader: Spanish first, then English

TEXTS = {
    "title": N_("Payment"),
    "test_banner": N_("TEST PAYMENT — no money moves. This page stands in for a card processor."),
    "invoice": N_("Invoice %(number)s"),
    "amount": N_("Amount to pay: %(amount)s"),
    "trust": N_("Paid into the client trust account (USCIS fees and costs). No card surcharge applies."),
    "operating": N_("Paid to the firm's operating account (legal fees)."),
    "pay": N_("Pay %(amount)s (test)"),
    "never_card": N_("For your security, never send card numbers by message."),
    "expired": N_("This payment link has expired. Write \"pay\" in the chat to get a new one."),
    "used": N_("This payment link has already been used. Thank you!"),
    "void": N_("This invoice cannot be paid online. Please contact our office."),
    "unknown": N_("This payment link is not valid. Write \"pay\" in the chat to get a new one."),
    "done": N_("Thank you! We will send you a receipt by message as soon as the payment is confirmed."),
    "failed": N_("The payment could not be completed. Please try again from the chat."),
}
STATUS = {"expired": 410, "used": 410, "void": 410, "unknown": 404}


def _desk():
    return current_app.extensions["puente"].payments


def _say(key: str, **params) -> list[tuple[str, str]]:
    """The sentence in both languages: [(lang, text), …]."""
    out = []
    for lang in LANGUAGES:
        t = Translator.for_language(lang)
        values = {k: (t.money(*v) if isinstance(v, tuple) else v) for k, v in params.items()}
        out.append((lang, t.gettext(TEXTS[key], **values)))
    return out


def _notice(key: str, status: int):
    return render_template("pay.html", notice=_say(key), title=_say("title")), status


@bp.get("/<token>")
def open_link(token: str):
    """Redirects to the provider's checkout or renders the embedded test page."""
    if len(token) > 64:
        abort(404)
    if request.args.get("done"):
        return _notice("done", 200)
    opened, view = _desk().open(token)
    if opened.state == "redirect":
        return redirect(opened.url, code=302)
    if opened.state != "page":
        return _notice(opened.state, STATUS[opened.state])
    csrf = session.get("pay_csrf") or secrets.token_urlsafe(24)
    session["pay_csrf"] = csrf
    money = (view["amount"], view["currency"])
    return render_template(
        "pay.html", title=_say("title"), test=_say("test_banner"), invoice=_say("invoice", number=view["number"]),
        amount=_say("amount", amount=money), account=_say(view["account"]), button=_say("pay", amount=money),
        never_card=_say("never_card"), lines=view["lines"], csrf=csrf, nonce=new_nonce(), token=token)


@bp.post("/<token>")
def pay(token: str):
    """The embedded page's Pay button (CSRF-checked): a signed test event through the webhook path."""
    expected = session.get("pay_csrf")
    if not expected or not hmac.compare_digest(expected, request.form.get("csrf", "")):
        abort(400)
    nonce = request.form.get("nonce", "")
    if not 8 <= len(nonce) <= 64:
        abort(400)
    received = _desk().test_payment(token, nonce)
    if received.status == 404:
        abort(404)
    if received.status != 200:
        return _notice("failed", 409)
    return redirect(f"/pay/{token}?done=1", code=303)
