"""Answers "what do I owe?" and "how do I pay?" from the matter's invoices.

Trust (money held for USCIS fees and costs) and operating (earned fees) are shown apart and
never added into one figure; disputed invoices are marked and never offered for payment.
"""
from __future__ import annotations

from decimal import Decimal

from bot.messages import Choice
from dialogs.base import Context, Outcome, reply
from services.invoices import balance, open_invoices, paid_amount
from services.models import Invoice



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
    """Gives the amounts payable and the firm's payment instructions; disputed invoices go to a person."""
    invoices = open_invoices(ctx.session, ctx.matter.id)
    payable = [inv for inv in invoices if inv.status != "disputed"]
    disputed = [inv for inv in invoices if inv.status == "disputed"]
    replies = []
    if payable:
        lines = [ctx._("You can pay:")] + [_invoice_line(ctx, inv) for inv in payable] + _totals(ctx, payable)
        instructions = (ctx.firm.payment_instructions or {}).get(ctx.language)
        lines.append(instructions or ctx._("To pay, please call our office: %(phone)s.", phone=ctx.firm.phone or ctx.firm.name))
        lines.append(ctx._("For your security, never send card numbers by message."))
        replies.append(reply("\n".join(lines)))
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
