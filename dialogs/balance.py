"""Answers "what do I owe?" and "how do I pay?" from the matter's invoices.

"How do I pay?" gets one payment link per payable invoice (PUBLIC_BASE_URL/pay/<token>) when
online payments are configured; card numbers are never asked for in chat.

Trust (money held for USCIS fees and costs) and operating (earned fees) are shown apart and
never added into one figure; disputed invoices are marked and never offered for payment.
"""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from bot.messages import Choice
from dialogs.base import Context, Outcome, reply
from services.invoices import balance, open_invoices, paid_amount
from services.models import Invoice
from services.payments.links import MIN_AMOUNT, PAYABLE_STATUSES, link_url, payment_link


def _account_label(ctx: Context, account: str) -> str:
    # The msgids are literal so that extraction finds them.
    return ctx._("Legal fees") if account == "operating" else ctx._("Client trust funds (USCIS fees and costs)")


def _invoice_line(ctx: Context, inv: Invoice) -> str:
    t = ctx.t
    paid = paid_amount(inv)
    parts = [ctx._("Invoice %(number)s (%(account)s): total %(total)s", number=inv.number,
                   account=_account_label(ctx, inv.account), total=t.money(inv.total, inv.currency))]
    if paid > 0:
        parts.append(ctx._("paid %(paid)s", paid=t.money(paid, inv.currency)))
    parts.append(ctx._("balance %(balance)s", balance=t.money(balance(inv), inv.currency)))
    if inv.due:
        parts.append(ctx._("due %(date)s", date=t.date(inv.due)))
    line = "• " + ", ".join(parts)
    if inv.status == "disputed":
        line += " — " + ctx._("under review (disputed); a person from our team will contact you about it")
    return line


def _totals(ctx: Context, invoices: list[Invoice]) -> list[str]:
    """One total per account and currency, disputed invoices left out."""
    totals: dict[tuple[str, str], Decimal] = {}
    for inv in invoices:
        if inv.status != "disputed":
            key = (inv.account, inv.currency)
            totals[key] = totals.get(key, Decimal("0")) + balance(inv)
    return [
        ctx._("Total to pay — %(account)s: %(amount)s", account=_account_label(ctx, account), amount=ctx.t.money(amount, currency))
        for (account, currency), amount in sorted(totals.items())
    ]


def answer(ctx: Context) -> Outcome:
    """Lists each open invoice with payments and balance, then totals per account."""
    invoices = open_invoices(ctx.session, ctx.matter.id)
    if not invoices:
        return Outcome([reply(ctx._("You have no balance due on this case. Thank you!"))])
    lines = [ctx._("Your open invoices:")] + [_invoice_line(ctx, inv) for inv in invoices] + _totals(ctx, invoices)
    return Outcome([reply("\n".join(lines))])


def pay(ctx: Context) -> Outcome:
    """Lists what can be paid with one payment link per invoice (or the firm's instructions when
    online payment is off); a partial amount when the firm allows it; disputed invoices go to a person."""
    invoices = open_invoices(ctx.session, ctx.matter.id)
    payable = [inv for inv in invoices if inv.status in PAYABLE_STATUSES and balance(inv) > 0]
    disputed = [inv for inv in invoices if inv.status == "disputed"]
    replies = []
    if payable and ctx.pay is None:
        lines = [ctx._("You can pay:")] + [_invoice_line(ctx, inv) for inv in payable] + _totals(ctx, payable)
        instructions = (ctx.firm.payment_instructions or {}).get(ctx.language)
        lines.append(instructions or ctx._("To pay, please call our office: %(phone)s.", phone=ctx.firm.phone or ctx.firm.name))
        lines.append(ctx._("For your security, never send card numbers by message."))
        replies.append(reply("\n".join(lines)))
    elif payable:
        replies.append(reply("\n".join(_links(ctx, payable))))
    elif not disputed:
        replies.append(reply(ctx._("You have no balance due on this case. Thank you!")))
    if disputed:
        numbers = ", ".join(inv.number for inv in disputed)
        replies.append(reply(
            ctx._("Invoice %(numbers)s is under review, so it cannot be paid here. Would you like to talk to a person?", numbers=numbers),
            Choice("handoff", ctx._("Talk to a person")),
        ))
        return Outcome(replies, step="menu.offer_person", state={"reason": "dispute"})
    return Outcome(replies)


_INVOICE_NUMBER = re.compile(r"\b[a-z]{1,6}-?\d{2,}\b", re.I)
_AMOUNT = re.compile(r"(?<![\w.,])\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:[.,](\d{2}))?(?![\w,])")


def requested_amount(text: str) -> Decimal | None:
    """The amount in "pay $200 now" / "quiero pagar 200,50" (invoice numbers are not amounts)."""
    found = _AMOUNT.search(_INVOICE_NUMBER.sub(" ", text or ""))
    if not found:
        return None
    whole, cents = found.group(1).replace(",", ""), found.group(2) or "00"
    return Decimal(f"{whole}.{cents}")


def _links(ctx: Context, payable: list[Invoice]) -> list[str]:
    """One link per payable invoice for its balance, or one link for the partial amount asked for."""
    t, pay = ctx.t, ctx.pay
    lifetime = timedelta(days=pay.link_days)
    asked = None if ctx.choice else requested_amount(ctx.text)
    lines: list[str] = []
    if asked is not None and ctx.firm.allow_partial_payments:
        named = [inv for inv in payable if inv.number.lower() in ctx.text.lower()]
        inv = (named or payable)[0]
        left = balance(inv)
        if asked < MIN_AMOUNT:
            lines.append(ctx._("The smallest amount you can pay online is %(amount)s.", amount=t.money(MIN_AMOUNT, inv.currency)))
        else:
            amount = min(asked, left)
            if asked > left:
                lines.append(ctx._("The balance of invoice %(number)s is %(balance)s, so this link is for that amount.",
                                   number=inv.number, balance=t.money(left, inv.currency)))
            link = payment_link(ctx.session, inv, amount, pay.provider, now=ctx.now, lifetime=lifetime)
            lines.append(ctx._("To pay %(amount)s of invoice %(number)s (%(account)s), open this secure link: %(url)s",
                               amount=t.money(amount, inv.currency), number=inv.number,
                               account=_account_label(ctx, inv.account), url=link_url(pay.base_url, link)))
            lines.append(ctx._("The link is valid for %(days)s days. For your security, never send card numbers by message.",
                               days=pay.link_days))
            return lines
    elif asked is not None:
        lines.append(ctx._("Online payments here are for the full balance of each invoice."))
    lines.append(ctx._("You can pay:"))
    for inv in payable:
        link = payment_link(ctx.session, inv, balance(inv), pay.provider, now=ctx.now, lifetime=lifetime)
        lines.append(_invoice_line(ctx, inv))
        lines.append("  " + ctx._("Pay securely here: %(url)s", url=link_url(pay.base_url, link)))
    lines += _totals(ctx, payable)
    if len({inv.account for inv in payable}) > 1:
        lines.append(ctx._("Trust funds and legal fees are paid separately, one link for each invoice."))
    instructions = (ctx.firm.payment_instructions or {}).get(ctx.language)
    if instructions:
        lines.append(ctx._("Other ways to pay: %(instructions)s", instructions=instructions))
    lines.append(ctx._("The link is valid for %(days)s days. For your security, never send card numbers by message.",
                       days=pay.link_days))
    return lines
