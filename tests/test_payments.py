"""Invoices and payment links through the doors: the chat, /pay/<token>, the Stripe webhook, the CLI.

Providers: the embedded test page (the default) and Stripe against tests/fakes/stripe_api.py.
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.runtime import build_runtime
from services.demo import seed
from services.i18n import Translator
from services.models import AuditEvent, Invoice, Matter, Message, OutgoingEvent, Payment, PaymentLink
from tests.conftest import Chat, make_settings, wipe
from tests.fakes.stripe_api import FakeStripe, event, sign
from web import create_app
from web.cli import cli

ES, EN = Translator.for_language("es"), Translator.for_language("en")
MARIA, ROSA, EMILY = "+15555550101", "+15555550104", "+15555550103"
PAY_URL = re.compile(r"(https?://\S+)/pay/([A-Za-z0-9_-]{20,})")
WEBHOOK_SECRET = "whsec_test_secret"


def tokens(text: str) -> list[str]:
    return [m.group(2) for m in PAY_URL.finditer(text)]


def token_for(runtime, text: str, number: str) -> str:
    """The link in `text` that pays invoice `number`."""
    inv = invoice(runtime, number)
    by_token = {l.token: l for l in _links(runtime)}
    return next(t for t in tokens(text) if by_token[t].invoice_id == inv.id)


def verified(runtime, address: str, dob: str, first: str = "hola") -> Chat:
    chat = Chat(runtime, address=address)
    if "nacimiento" in chat.say(first).text:  # not verified yet (or no longer)
        assert "verif" in chat.say(dob).text.lower()
    return chat


def invoice(runtime, number: str) -> Invoice:
    with runtime.Session() as session:
        inv = session.scalar(select(Invoice).where(Invoice.number == number))
        inv.payments  # noqa: B018 (loaded before the session closes)
        session.expunge_all()
        return inv


def ledger(runtime, number: str) -> list[tuple[str, Decimal]]:
    with runtime.Session() as session:
        return [(p.kind, p.amount) for p in session.scalars(
            select(Payment).join(Invoice).where(Invoice.number == number).order_by(Payment.id))]


def outbox(runtime, address: str) -> list[str]:
    from services.models import Conversation

    with runtime.Session() as session:
        return list(session.scalars(select(Message.body).join(Conversation, Conversation.id == Message.conversation_id)
                                    .where(Conversation.address == address, Message.direction == "out")
                                    .order_by(Message.id)))


@pytest.fixture
def web(demo):
    app = create_app(demo.settings, demo)
    return app.test_client()


def pay_in_test_page(web, token: str):
    page = web.get(f"/pay/{token}")
    assert page.status_code == 200, page.data
    html = page.data.decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
    return web.post(f"/pay/{token}", data={"csrf": csrf, "nonce": nonce}), csrf, nonce


# -- balance answers ---------------------------------------------------------------------------------

def test_balance_with_a_partial_payment_in_both_languages(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    es = chat.say("cuánto debo?").text
    assert "Factura INV-1001" in es and "pagado $600.00" in es and "saldo $1,020.00" in es
    assert "saldo $675.00" in es  # the trust invoice, apart
    en = chat.say("how much do I owe?").text
    assert "Invoice INV-1001" in en and "paid $600.00" in en and "balance $1,020.00" in en
    assert EN.gettext("Client trust funds (USCIS fees and costs)") in en


def test_disputed_invoice_is_shown_in_both_languages_and_never_offered(demo):
    chat = verified(demo, ROSA, "30/01/1980")
    es = chat.say("cuánto debo").text
    assert ES.gettext("under review (disputed); a person from our team will contact you about it") in es
    en = chat.say("what do I owe?").text
    assert EN.gettext("under review (disputed); a person from our team will contact you about it") in en
    pay = chat.say("I want to pay")
    offered = [line for line in pay.text.splitlines() if "/pay/" in line]
    assert all(link.invoice_id != invoice(demo, "INV-1005").id for link in _links(demo))
    assert all("INV-1005" not in line for line in offered)
    assert pay.choices[-1] == [EN.gettext("Talk to a person")]


def _links(runtime) -> list[PaymentLink]:
    with runtime.Session() as session:
        rows = session.scalars(select(PaymentLink).order_by(PaymentLink.id)).all()
        session.expunge_all()
        return rows


# -- links from the chat -------------------------------------------------------------------------------

def test_pay_gives_one_link_per_payable_invoice_and_reuses_it(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    first = chat.say("quiero pagar")
    found = tokens(first.text)
    assert len(found) == 2  # INV-1001 (operating) and INV-1002 (trust): never one link for both
    assert "http://127.0.0.1:5000/pay/" in first.text
    assert ES.gettext("Trust funds and legal fees are paid separately, one link for each invoice.") in first.text
    assert "tarjeta" in first.text  # never send card numbers by message
    again = chat.say("quiero pagar")
    assert tokens(again.text) == found  # the live links are reused
    by_token = {l.token: l for l in _links(demo)}
    assert {by_token[t].amount for t in found} == {Decimal("1020.00"), Decimal("675.00")}


def test_a_new_invoice_version_replaces_the_link_and_the_old_one_says_expired(demo, web):
    chat = verified(demo, MARIA, "21/03/1988")
    old = token_for(demo, chat.say("quiero pagar").text, "INV-1001")
    assert web.get(f"/pay/{old}").status_code == 200
    with demo.Session.begin() as session:  # staff change the invoice (a new version)
        inv = session.scalar(select(Invoice).where(Invoice.number == "INV-1001"))
        inv.lines = inv.lines + [{"description": "Courier", "amount": "30.00"}]
        inv.total, inv.version = inv.total + Decimal("30.00"), inv.version + 1
    new = token_for(demo, chat.say("quiero pagar").text, "INV-1001")
    assert new != old
    gone = web.get(f"/pay/{old}")
    assert gone.status_code == 410
    page = html.unescape(gone.data.decode())
    assert ES.gettext("This payment link has expired. Write \"pay\" in the chat to get a new one.") in page
    assert EN.gettext("This payment link has expired. Write \"pay\" in the chat to get a new one.") in page
    assert "$1,050.00" in web.get(f"/pay/{new}").data.decode()


def test_partial_payment_link_when_the_firm_allows_it(demo):
    chat = verified(demo, MARIA, "21/03/1988")
    refused = chat.say("quiero pagar 200")
    assert ES.gettext("Online payments here are for the full balance of each invoice.") in refused.text
    with demo.Session.begin() as session:
        from services.firm import get_firm
        get_firm(session).allow_partial_payments = True
    demo.engine.firm_changed()
    turn = chat.say("quiero pagar 200")  # the invoice due first: INV-1002
    assert "$200.00" in turn.text and "INV-1002" in turn.text and len(tokens(turn.text)) == 1
    link = next(l for l in _links(demo) if l.token == tokens(turn.text)[0])
    assert link.amount == Decimal("200.00")
    capped = chat.say("quiero pagar $900 de la factura INV-1002")
    assert "INV-1002" in capped.text and "$675.00" in capped.text
    assert next(l for l in _links(demo) if l.token == tokens(capped.text)[0]).amount == Decimal("675.00")


def test_unknown_link_is_a_clear_bilingual_page(web):
    page = web.get("/pay/" + "x" * 32)
    assert page.status_code == 404
    assert "Este enlace de pago no es válido" in page.data.decode() and "This payment link is not valid" in page.data.decode()


# -- the embedded test page ------------------------------------------------------------------------------

def test_embedded_payment_records_a_receipt_an_event_and_once_only(demo, web):
    chat = verified(demo, MARIA, "21/03/1988")
    trust = token_for(demo, chat.say("quiero pagar").text, "INV-1002")
    page = web.get(f"/pay/{trust}").data.decode()
    assert "TEST PAYMENT — no money moves" in page and "PAGO DE PRUEBA — no se mueve dinero" in page
    assert "No card surcharge applies" in page
    assert ledger(demo, "INV-1002") == []  # viewing the page records nothing

    assert web.post(f"/pay/{trust}", data={"csrf": "forged", "nonce": "n" * 16}).status_code == 400
    assert ledger(demo, "INV-1002") == []

    done, csrf, nonce = pay_in_test_page(web, trust)
    assert done.status_code == 303 and done.headers["Location"].endswith("?done=1")
    assert ledger(demo, "INV-1002") == [("payment", Decimal("675.00"))]
    assert invoice(demo, "INV-1002").status == "paid"
    again = web.post(f"/pay/{trust}", data={"csrf": csrf, "nonce": nonce})  # the button pressed twice
    assert again.status_code == 409 and ledger(demo, "INV-1002") == [("payment", Decimal("675.00"))]
    assert web.get(f"/pay/{trust}").status_code == 410  # used

    receipt = outbox(demo, MARIA)[-1]
    assert receipt == ES.gettext(
        "We received your payment of %(amount)s for invoice %(number)s. This invoice is now paid in full. Thank you!",
        amount="$675.00", number="INV-1002")
    with demo.Session() as session:
        paid = session.scalars(select(OutgoingEvent).where(OutgoingEvent.event == "invoice_paid")).all()
        assert [(e.data["invoice_id"], e.data["amount"], e.data["status"]) for e in paid] == [("INV-1002", "675.00", "paid")]
    balance = chat.say("cuánto debo").text
    assert "INV-1002" not in balance and "INV-1001" in balance


def test_receipt_of_a_partial_payment_tells_the_remaining_balance_in_english(demo, web):
    with demo.Session.begin() as session:
        from services.firm import get_firm
        get_firm(session).allow_partial_payments = True
    demo.engine.firm_changed()
    chat = verified(demo, MARIA, "21/03/1988")
    chat.say("english please")
    token = tokens(chat.say("I want to pay $200 of INV-1001").text)[0]
    pay_in_test_page(web, token)
    assert invoice(demo, "INV-1001").status == "partial"
    assert outbox(demo, MARIA)[-1] == EN.gettext(
        "We received your payment of %(amount)s for invoice %(number)s. Remaining balance on this invoice: "
        "%(balance)s. Thank you!", amount="$200.00", number="INV-1001", balance="$820.00")


# -- blocked stages ---------------------------------------------------------------------------------------

def _cli(settings, args):
    env = {"DATABASE_URL": settings.database_url, "PUENTE_STORAGE_DIR": str(settings.storage_dir), "REDIS_URL": ""}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_blocked_stage_is_refused_then_taken_when_the_invoice_is_paid(demo, web, settings):
    refused = _cli(settings, ["matters", "stage", "MAT-2001", "ready_to_file"])
    assert refused.exit_code == 1 and "INV-1001" in refused.output and "INV-1002" not in refused.output
    with demo.Session() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        assert (matter.stage, matter.waiting_stage) == ("collecting_evidence", "ready_to_file")
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "stage_change_refused")) is not None

    chat = verified(demo, MARIA, "21/03/1988")
    status = chat.say("cómo va mi caso?").text
    assert "Su caso está listo para presentarse en cuanto se reciba el pago de la factura INV-1001." in status
    assert ES.gettext("Your case is ready to be filed as soon as payment of invoice %(numbers)s is received.",
                      numbers="INV-1001") in status

    operating = token_for(demo, chat.say("quiero pagar").text, "INV-1001")
    pay_in_test_page(web, operating)
    with demo.Session() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        assert (matter.stage, matter.waiting_stage) == ("ready_to_file", None)
        changed = session.scalar(select(OutgoingEvent).where(OutgoingEvent.event == "matter_stage_changed"))
        assert changed.data == {"from": "collecting_evidence", "to": "ready_to_file"}
    moved = _cli(settings, ["matters", "stage", "MAT-2001", "filed"])
    assert moved.exit_code == 1 and "INV-1002" in moved.output  # the trust invoice holds filing


def test_status_in_english_names_the_blocking_invoice(demo, settings):
    assert _cli(settings, ["matters", "stage", "MAT-2001", "attorney_review"]).exit_code == 0
    chat = verified(demo, MARIA, "21/03/1988")
    chat.say("english please")
    assert ("Your case is ready to be filed as soon as payment of invoice INV-1001 is received."
            in chat.say("what's my status?").text)


# -- Stripe -------------------------------------------------------------------------------------------------

@pytest.fixture
def stripe_api():
    with FakeStripe(keys={"sk_test_operating"}) as fake:
        yield fake


@pytest.fixture
def stripe_rt(database_url, tmp_path, clock, stripe_api):
    wipe(database_url)
    settings = make_settings(database_url, tmp_path, PAYMENTS_PROVIDER="stripe", STRIPE_API_KEY="sk_test_operating",
                             STRIPE_API_URL=stripe_api.url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                             STRIPE_TRUST_ACCOUNT="acct_trust123", PUBLIC_BASE_URL="https://puente.example.com")
    rt = build_runtime(settings, in_process=True)
    rt.engine.clock = clock
    with rt.Session.begin() as session:
        seed(session)
    yield rt
    rt.queue.join()
    rt.close()


@pytest.fixture
def stripe_web(stripe_rt):
    return create_app(stripe_rt.settings, stripe_rt).test_client()


def _open_checkouts(rt, web, stripe_api) -> dict[str, dict]:
    """Maria asks to pay; each link is followed to Stripe. Returns invoice number → checkout session."""
    chat = verified(rt, MARIA, "21/03/1988")
    text = chat.say("quiero pagar").text
    assert "https://puente.example.com/pay/" in text
    found = {}
    for token in tokens(text):
        res = web.get(f"/pay/{token}")
        assert res.status_code == 302
        sid = res.headers["Location"].rsplit("/", 1)[1]
        session = stripe_api.sessions[sid]
        found[session["metadata"]["invoice_number"]] = session
    return found


def _deliver(web, body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    return web.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(secret, body, timestamp),
                                                            "Content-Type": "application/json"})


def test_stripe_checkout_goes_to_the_right_account_with_exact_cents(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    creates = [r for r in stripe_api.requests if r["method"] == "POST" and r["path"] == "/v1/checkout/sessions"]
    by_invoice = {r["params"]["metadata"]["invoice_number"]: r for r in creates}
    assert by_invoice["INV-1002"]["account"] == "acct_trust123"  # trust money: the trust account
    assert by_invoice["INV-1001"]["account"] is None  # operating: the platform account itself
    assert by_invoice["INV-1002"]["params"]["line_items"] == [{"quantity": "1", "price_data": {
        "currency": "usd", "unit_amount": "67500", "product_data": {"name": "Invoice INV-1002"}}}]
    inv = invoice(stripe_rt, "INV-1001")
    assert by_invoice["INV-1001"]["idempotency_key"].startswith(f"{inv.id}:{inv.version}:1020.00:")
    assert checkouts["INV-1001"]["amount_total"] == 102000
    # opening the link again reuses the checkout (no second session at Stripe)
    chat_again = verified(stripe_rt, MARIA, "21/03/1988")
    for token in tokens(chat_again.say("quiero pagar").text):
        stripe_web.get(f"/pay/{token}")
    assert len([r for r in stripe_api.requests if r["path"] == "/v1/checkout/sessions"]) == 2


def test_stripe_webhook_forged_replayed_and_duplicate_payment(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    paid = stripe_api.complete(checkouts["INV-1002"]["id"])
    body = event("checkout.session.completed", paid["session"], account="acct_trust123")

    assert _deliver(stripe_web, body, secret="whsec_wrong").status_code == 403
    assert _deliver(stripe_web, body, timestamp=int(datetime.now(timezone.utc).timestamp()) - 3600).status_code == 403
    unsigned = stripe_web.post("/webhooks/stripe", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 403
    altered = body.replace(b'"amount_total": 67500', b'"amount_total": 1')
    res = stripe_web.post("/webhooks/stripe", data=altered, headers={"Stripe-Signature": sign(WEBHOOK_SECRET, body)})
    assert res.status_code == 403
    assert ledger(stripe_rt, "INV-1002") == []

    assert _deliver(stripe_web, body).status_code == 200
    assert _deliver(stripe_web, body).status_code == 200  # Stripe's replay
    intent = event("payment_intent.succeeded", paid["payment_intent"], account="acct_trust123")
    assert _deliver(stripe_web, intent).status_code == 200  # the same payment, told again
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "paid"
    receipts = [b for b in outbox(stripe_rt, MARIA) if "INV-1002" in b and "$675.00" in b and "Recibimos" in b]
    assert len(receipts) == 1


def test_stripe_refund_before_payment_arrives_out_of_order(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    paid = stripe_api.complete(checkouts["INV-1001"]["id"])
    refunded = dict(paid["charge"], amount_refunded=102000, refunded=True)
    assert _deliver(stripe_web, event("charge.refunded", refunded)).status_code == 200
    assert _deliver(stripe_web, event("checkout.session.completed", paid["session"])).status_code == 200
    assert ledger(stripe_rt, "INV-1001")[1:] == [("refund", Decimal("-1020.00")), ("payment", Decimal("1020.00"))]
    inv = invoice(stripe_rt, "INV-1001")
    assert inv.status == "partial"  # the $600 imported payment stands; the card payment was given back


def test_stripe_refund_that_names_no_invoice_waits_for_its_payment(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    paid = stripe_api.complete(checkouts["INV-1002"]["id"])
    refund = event("charge.refunded", dict(paid["charge"], metadata={}, amount_refunded=20000))
    assert _deliver(stripe_web, refund).status_code == 409  # nothing stored: Stripe sends it again
    assert ledger(stripe_rt, "INV-1002") == []
    assert _deliver(stripe_web, event("payment_intent.succeeded", paid["payment_intent"])).status_code == 200
    assert _deliver(stripe_web, refund).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("refund", Decimal("-200.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "partial"


def test_chargeback_disputes_the_invoice_and_alerts_finance(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    paid = stripe_api.complete(checkouts["INV-1002"]["id"])
    assert _deliver(stripe_web, event("checkout.session.completed", paid["session"])).status_code == 200
    dispute = {"id": "dp_" + "1" * 24, "object": "dispute", "amount": 67500, "currency": "usd",
               "charge": paid["charge"]["id"], "payment_intent": paid["payment_intent"]["id"], "reason": "fraudulent",
               "status": "needs_response", "metadata": {}}
    assert _deliver(stripe_web, event("charge.dispute.created", dispute)).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "disputed"
    with stripe_rt.Session() as session:
        alert = session.scalar(select(AuditEvent).where(AuditEvent.action == "finance_alert"))
        assert alert.details["reason"] == "chargeback" and alert.details["invoice"] == "INV-1002"
    chat = verified(stripe_rt, MARIA, "21/03/1988")
    pay = chat.say("quiero pagar")
    assert len(tokens(pay.text)) == 1 and pay.choices[-1] == [ES.gettext("Talk to a person")]
    # a later payment event does not lift the dispute: a person settles it
    again = stripe_api.complete(_open_checkouts(stripe_rt, stripe_web, stripe_api)["INV-1001"]["id"])
    assert _deliver(stripe_web, event("checkout.session.completed", again["session"])).status_code == 200
    assert invoice(stripe_rt, "INV-1002").status == "disputed"


def test_a_new_version_closes_the_old_checkout_at_stripe(stripe_rt, stripe_web, stripe_api):
    old = _open_checkouts(stripe_rt, stripe_web, stripe_api)["INV-1001"]
    with stripe_rt.Session.begin() as session:
        inv = session.scalar(select(Invoice).where(Invoice.number == "INV-1001"))
        inv.total, inv.version = inv.total - Decimal("120.00"), inv.version + 1
        inv.lines = inv.lines[:1]
    new = _open_checkouts(stripe_rt, stripe_web, stripe_api)["INV-1001"]
    assert new["id"] != old["id"] and new["amount_total"] == 90000
    expired = [r for r in stripe_api.requests if r["path"].endswith("/expire")]
    assert [r["path"] for r in expired] == [f"/v1/checkout/sessions/{old['id']}/expire"]
    assert stripe_api.sessions[old["id"]]["status"] == "expired"


def test_superseded_checkouts_are_closed_by_housekeeping(stripe_rt, stripe_web, stripe_api):
    old = _open_checkouts(stripe_rt, stripe_web, stripe_api)["INV-1002"]
    with stripe_rt.Session.begin() as session:
        inv = session.scalar(select(Invoice).where(Invoice.number == "INV-1002"))
        inv.version += 1
    chat = verified(stripe_rt, MARIA, "21/03/1988")
    chat.say("quiero pagar")  # a new link; the old checkout is not followed again
    stripe_rt.payments.housekeeping()
    assert stripe_api.sessions[old["id"]]["status"] == "expired"
    assert any(r["path"] == f"/v1/checkout/sessions/{old['id']}/expire" and r["account"] == "acct_trust123"
               for r in stripe_api.requests)


def test_trust_surcharge_is_refused_at_start(database_url, tmp_path):
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match="PAYMENTS_TRUST_SURCHARGE_PERCENT must be 0"):
        make_settings(database_url, tmp_path, PAYMENTS_TRUST_SURCHARGE_PERCENT="3")
    with pytest.raises(SettingsError, match="STRIPE_TRUST_API_KEY or STRIPE_TRUST_ACCOUNT"):
        make_settings(database_url, tmp_path, STRIPE_API_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")


def test_surcharge_only_on_operating_and_the_ledger_books_the_invoice_part(database_url, tmp_path, clock, stripe_api):
    wipe(database_url)
    settings = make_settings(database_url, tmp_path, STRIPE_API_KEY="sk_test_operating", STRIPE_API_URL=stripe_api.url,
                             STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_TRUST_ACCOUNT="acct_trust123",
                             PAYMENTS_SURCHARGE_PERCENT="3", PUBLIC_BASE_URL="https://puente.example.com")
    assert settings.payments_provider == "stripe"  # the default once a Stripe key is set
    rt = build_runtime(settings, in_process=True)
    rt.engine.clock = clock
    try:
        with rt.Session.begin() as session:
            seed(session)
        web = create_app(settings, rt).test_client()
        checkouts = _open_checkouts(rt, web, stripe_api)
        assert checkouts["INV-1001"]["amount_total"] == 102000 + 3060  # $1,020.00 + 3 % card surcharge
        assert checkouts["INV-1002"]["amount_total"] == 67500  # trust: never a surcharge
        paid = stripe_api.complete(checkouts["INV-1001"]["id"])
        assert _deliver(web, event("checkout.session.completed", paid["session"])).status_code == 200
        assert ledger(rt, "INV-1001")[-1] == ("payment", Decimal("1020.00"))
        assert invoice(rt, "INV-1001").status == "paid"
    finally:
        rt.queue.join()
        rt.close()


def test_embedded_provider_is_refused_in_production(database_url, tmp_path):
    from bot.settings import SettingsError

    from services.vault import new_master_key

    production = {"PUENTE_ENV": "production", "PUENTE_SECRET_KEY": "s" * 32, "PUENTE_ENCRYPTION_KEY": new_master_key()}
    with pytest.raises(SettingsError, match="PAYMENTS_PROVIDER=embedded is a test page"):
        make_settings(database_url, tmp_path, **production, PAYMENTS_PROVIDER="embedded")
    quiet = make_settings(database_url, tmp_path, **production)
    assert quiet.payments_provider == "none"  # production without Stripe: instructions only


def test_without_online_payments_the_firm_instructions_are_given(database_url, tmp_path, clock):
    wipe(database_url)
    rt = build_runtime(make_settings(database_url, tmp_path, PAYMENTS_PROVIDER="none"), in_process=True)
    rt.engine.clock = clock
    try:
        with rt.Session.begin() as session:
            seed(session)
        text = verified(rt, MARIA, "21/03/1988").say("quiero pagar").text
        assert "transferencia" in text and "/pay/" not in text
    finally:
        rt.queue.join()
        rt.close()


# -- refund notices and dispute outcomes ---------------------------------------------------------------------

def _paid_by_card(rt, web, stripe_api, number: str) -> dict:
    """Maria pays invoice `number` at the (fake) Stripe; the payment's webhook is delivered."""
    paid = stripe_api.complete(_open_checkouts(rt, web, stripe_api)[number]["id"])
    assert _deliver(web, event("checkout.session.completed", paid["session"])).status_code == 200
    return paid


def _audit(rt, action: str) -> list[dict]:
    with rt.Session() as session:
        return [e.details for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                                   .order_by(AuditEvent.id))]


def test_won_dispute_reinstates_the_funds_and_the_waiting_stage_proceeds(stripe_rt, stripe_web, stripe_api):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1001")
    dispute = stripe_api.dispute(paid["charge"])
    assert _deliver(stripe_web, event("charge.dispute.created", dispute)).status_code == 200
    assert invoice(stripe_rt, "INV-1001").status == "disputed"
    refused = _cli(stripe_rt.settings, ["matters", "stage", "MAT-2001", "ready_to_file"])
    assert refused.exit_code == 1 and "INV-1001" in refused.output  # the disputed invoice holds the stage

    closed = event("charge.dispute.closed", stripe_api.close_dispute(dispute["id"], "won"))
    assert _deliver(stripe_web, closed).status_code == 200
    assert ledger(stripe_rt, "INV-1001") == [("payment", Decimal("600.00")), ("payment", Decimal("1020.00")),
                                             ("chargeback", Decimal("-1020.00")),
                                             ("chargeback_reversal", Decimal("1020.00"))]
    assert invoice(stripe_rt, "INV-1001").status == "paid"
    with stripe_rt.Session() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-2001"))
        assert (matter.stage, matter.waiting_stage) == ("ready_to_file", None)
    assert [d["outcome"] for d in _audit(stripe_rt, "dispute_closed")] == ["won"]
    assert [d["reason"] for d in _audit(stripe_rt, "finance_alert")] == ["chargeback"]  # winning alerts no one

    replay = _deliver(stripe_web, closed)
    assert replay.status_code == 200 and replay.get_json()["replay"] is True
    funds_back = event("charge.dispute.funds_reinstated", stripe_api.disputes[dispute["id"]])  # its own event id
    assert _deliver(stripe_web, funds_back).status_code == 200
    assert ledger(stripe_rt, "INV-1001")[-1] == ("chargeback_reversal", Decimal("1020.00"))
    assert len(ledger(stripe_rt, "INV-1001")) == 4  # credited once
    assert [d["outcome"] for d in _audit(stripe_rt, "dispute_closed")] == ["won"]


def test_lost_dispute_leaves_a_balance_and_alerts_finance(stripe_rt, stripe_web, stripe_api, clock):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1002")
    dispute = stripe_api.dispute(paid["charge"])
    assert _deliver(stripe_web, event("charge.dispute.created", dispute)).status_code == 200
    lost = event("charge.dispute.closed", stripe_api.close_dispute(dispute["id"], "lost"))
    assert _deliver(stripe_web, lost).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00"))]
    inv = invoice(stripe_rt, "INV-1002")
    assert inv.status == "unpaid" and inv.account == "trust"  # no money back; no longer disputed
    alerts = _audit(stripe_rt, "finance_alert")
    assert [a["reason"] for a in alerts] == ["chargeback", "dispute_lost"]
    assert alerts[-1]["account"] == "trust" and alerts[-1]["balance"] == "675.00"
    assert [d["outcome"] for d in _audit(stripe_rt, "dispute_closed")] == ["lost"]

    # The client may pay it again when they ask; no automatic overdue reminders: finance follows up.
    chat = verified(stripe_rt, MARIA, "21/03/1988")
    assert token_for(stripe_rt, chat.say("quiero pagar").text, "INV-1002")
    sent_before = len(outbox(stripe_rt, MARIA))
    clock.advance(days=400)
    stripe_rt.payments.run_reminders()
    from services.models import Reminder

    with stripe_rt.Session() as session:
        row = session.scalar(select(Reminder).where(Reminder.subject == f"invoice:{inv.id}"))
        assert (row.state, row.payload["stopped"]) == ("stopped", "dispute_lost")
    assert not [b for b in outbox(stripe_rt, MARIA)[sent_before:] if "INV-1002" in b]


def test_dispute_closed_before_created_is_not_lost(stripe_rt, stripe_web, stripe_api):
    checkouts = _open_checkouts(stripe_rt, stripe_web, stripe_api)
    paid = stripe_api.complete(checkouts["INV-1002"]["id"])
    dispute = stripe_api.dispute(paid["charge"])
    created = event("charge.dispute.created", dispute)
    closed = event("charge.dispute.closed", stripe_api.close_dispute(dispute["id"], "lost"))
    assert _deliver(stripe_web, closed).status_code == 409  # before its payment: nothing stored, Stripe resends
    assert ledger(stripe_rt, "INV-1002") == []
    assert _deliver(stripe_web, event("checkout.session.completed", paid["session"])).status_code == 200
    assert _deliver(stripe_web, closed).status_code == 200  # before created: the close books the withdrawal
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "unpaid"
    assert _deliver(stripe_web, created).status_code == 200  # created, late: nothing more
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "unpaid"  # not disputed again
    assert [a["reason"] for a in _audit(stripe_rt, "finance_alert")] == ["dispute_lost"]


def test_won_dispute_closed_before_created_ends_paid(stripe_rt, stripe_web, stripe_api):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1002")
    dispute = stripe_api.dispute(paid["charge"])
    created = event("charge.dispute.created", dispute)
    assert _deliver(stripe_web, event("charge.dispute.closed", stripe_api.close_dispute(dispute["id"], "won"))).status_code == 200
    assert _deliver(stripe_web, created).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00")),
                                             ("chargeback_reversal", Decimal("675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "paid"


def test_closed_inquiry_gives_back_what_it_never_took(stripe_rt, stripe_web, stripe_api):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1002")
    inquiry = stripe_api.dispute(paid["charge"], inquiry=True)  # warning_needs_response: no funds withdrawn
    assert _deliver(stripe_web, event("charge.dispute.created", inquiry)).status_code == 200
    assert invoice(stripe_rt, "INV-1002").status == "disputed"
    closed = stripe_api.close_dispute(inquiry["id"], "warning_closed")
    assert closed["balance_transactions"] == []  # no funds moved
    assert _deliver(stripe_web, event("charge.dispute.closed", closed)).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("chargeback", Decimal("-675.00")),
                                             ("chargeback_reversal", Decimal("675.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "paid"
    assert [a["reason"] for a in _audit(stripe_rt, "finance_alert")] == ["chargeback", "dispute_warning_closed"]


def test_lost_dispute_on_a_partly_refunded_payment_books_what_stripe_gives_back_once(stripe_rt, stripe_web, stripe_api):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1002")
    refunded = dict(paid["charge"], amount_refunded=20000, refunded=False)
    assert _deliver(stripe_web, event("charge.refunded", refunded)).status_code == 200
    dispute = stripe_api.dispute(paid["charge"])  # the whole charge, although $200 was refunded
    assert _deliver(stripe_web, event("charge.dispute.created", dispute)).status_code == 200
    early = event("charge.dispute.funds_reinstated", dict(dispute, id="dp_" + "9" * 24))
    assert _deliver(stripe_web, early).status_code == 409  # funds back for a dispute we never saw: resent later
    lost = stripe_api.close_dispute(dispute["id"], "lost", reinstated=20000)
    assert _deliver(stripe_web, event("charge.dispute.funds_reinstated", lost)).status_code == 200
    assert _deliver(stripe_web, event("charge.dispute.closed", lost)).status_code == 200
    assert ledger(stripe_rt, "INV-1002") == [("payment", Decimal("675.00")), ("refund", Decimal("-200.00")),
                                             ("chargeback", Decimal("-675.00")),
                                             ("chargeback_reversal", Decimal("200.00"))]
    assert invoice(stripe_rt, "INV-1002").status == "unpaid"  # the client got all $675 back: it is owed again


def test_refund_notice_in_the_clients_language_and_only_a_teaser_when_unverified(stripe_rt, stripe_web, stripe_api,
                                                                                   clock):
    paid = _paid_by_card(stripe_rt, stripe_web, stripe_api, "INV-1002")
    partial = dict(paid["charge"], amount_refunded=20000)
    assert _deliver(stripe_web, event("charge.refunded", partial)).status_code == 200
    notice = outbox(stripe_rt, MARIA)[-1]
    assert notice == ES.gettext("We refunded %(amount)s on invoice %(number)s. It can take 5–10 business days to show "
                                "on your statement.", amount="$200.00", number="INV-1002")
    assert notice.startswith("Le reembolsamos $200.00") and "INV-1002" in notice
    with stripe_rt.Session() as session:
        queued = session.scalar(select(Message).where(Message.body == notice))
        assert queued.payload["notice"] == "payment_refunded"

    clock.advance(hours=13)  # the verification has expired: the thread is no longer verified for Maria
    full = dict(paid["charge"], amount_refunded=67500, refunded=True)
    assert _deliver(stripe_web, event("charge.refunded", full)).status_code == 200
    from services.firm import get_firm

    with stripe_rt.Session() as session:
        firm = get_firm(session).name
    teaser = outbox(stripe_rt, MARIA)[-1]
    assert teaser == ES.gettext("%(firm)s has an update about your case. Reply to this message to see it.", firm=firm)
    assert "$475.00" not in teaser and "INV-1002" not in teaser
    assert ledger(stripe_rt, "INV-1002")[1:] == [("refund", Decimal("-200.00")), ("refund", Decimal("-475.00"))]
