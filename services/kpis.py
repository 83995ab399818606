"""The measures firms buy Puente for, computed from the record (never hand-entered).

Every KPI is a total over the date range and a monthly series (UTC months), optionally for one
matter type. Sources: outgoing events (message_received, document_uploaded, document_reviewed,
contact_opted_out), messages (how each was routed), handoffs, matters, invoices and the payments
ledger. Definitions (also in README.md):

- inbound_messages_per_matter: message_received events with a matter ÷ the distinct matters among them.
- containment: of those messages (except verification, opt-out and language turns), the share not
  routed to staff (neither a handoff request nor sent while staff held the thread).
- handoffs: handoffs opened; time_to_first_staff_reply: mean minutes from opening to the first staff reply.
- document_turnaround: per item type, mean days requested (matter opened) → first upload, and first
  upload → accepted; dated by the acceptance.
- first_pass_acceptance: share of items whose first review accepted them; dated by that review.
- days_to_payment: mean days from an invoice's issue date to the payment that completed it.
- intake_time: mean days from first contact (matter opened or the client's first message, whichever
  came first) to a complete checklist (every item uploaded or accepted; the last first upload).
- opt_outs: contact_opted_out events, by channel.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models import Handoff, Invoice, Matter, Message, OutgoingEvent, Payment, ChecklistItem

NOT_QUESTIONS = ("verify", "opt_out", "language")
OPEN_STATUSES = ("required", "rejected")
DAY = 86400.0


def _month(at: datetime | date) -> str:
    return at.strftime("%Y-%m")


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _series(dated: Iterable[tuple[datetime, float]], reduce) -> list[dict[str, Any]]:
    by_month: dict[str, list[float]] = defaultdict(list)
    for at, value in dated:
        by_month[_month(at)].append(value)
    return [{"month": m, "value": reduce(v), "count": len(v)} for m, v in sorted(by_month.items())]


def _share(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


class _Range:
    def __init__(self, start: date | None, end: date | None):
        self.start = datetime.combine(start, time.min, timezone.utc) if start else None
        self.end = datetime.combine(end + timedelta(days=1), time.min, timezone.utc) if end else None

    def __contains__(self, at: datetime | None) -> bool:
        return at is not None and (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def compute(session: Session, *, start: date | None = None, end: date | None = None,
            matter_type: str | None = None) -> dict[str, Any]:
    """Every KPI for the range [start, end] (inclusive days, UTC), optionally for one matter type."""
    span = _Range(start, end)
    matters = {m.id: m for m in session.scalars(select(Matter))}
    wanted = {mid for mid, m in matters.items() if matter_type is None or m.type == matter_type}
    client_ok = {m.client_id for mid, m in matters.items() if mid in wanted}
    evts = session.scalars(select(OutgoingEvent).where(OutgoingEvent.event.in_(
        ("message_received", "document_uploaded", "document_reviewed", "contact_opted_out")))
        .order_by(OutgoingEvent.created_at, OutgoingEvent.id)).all()
    by_kind: dict[str, list[OutgoingEvent]] = defaultdict(list)
    for e in evts:
        by_kind[e.event].append(e)

    report: dict[str, Any] = {}
    report.update(_messages(session, [e for e in by_kind["message_received"] if e.matter_id in wanted and e.created_at in span]))
    report.update(_handoffs(session, span, wanted, matter_type))
    report.update(_documents(by_kind, matters, wanted, span))
    report["days_to_payment"] = _payments(session, span, wanted)
    report["intake_time"] = _intake(session, by_kind, matters, wanted, span)
    outs = [e for e in by_kind["contact_opted_out"] if e.created_at in span and (matter_type is None or e.client_id in client_ok)]
    by_channel: dict[str, int] = defaultdict(int)
    for e in outs:
        by_channel[(e.data or {}).get("channel", "unknown")] += 1
    report["opt_outs"] = {"unit": "opt-outs", "total": len(outs), "by_channel": dict(sorted(by_channel.items())),
                          "series": [dict(p, group=ch) for ch in sorted(by_channel) for p in
                                     _series(((e.created_at, 1.0) for e in outs if (e.data or {}).get("channel", "unknown") == ch), len)]}
    return {"range": {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                      "matter_type": matter_type}, "kpis": report}


def _messages(session: Session, received: list[OutgoingEvent]) -> dict[str, Any]:
    per_month: dict[str, list[int]] = defaultdict(list)
    for e in received:
        per_month[_month(e.created_at)].append(e.matter_id)
    series = [{"month": m, "value": round(len(ids) / len(set(ids)), 2), "count": len(ids)} for m, ids in sorted(per_month.items())]
    ids = [e.matter_id for e in received]
    routed = dict((mid, (intent, dialog)) for mid, intent, dialog in session.execute(
        select(Message.id, Message.intent, Message.dialog).where(
            Message.id.in_([(e.data or {}).get("message_id") for e in received] or [0]))).all())
    questions = []
    for e in received:
        intent, dialog = routed.get((e.data or {}).get("message_id"), (None, None))
        if dialog in NOT_QUESTIONS:
            continue
        questions.append((e.created_at, 0.0 if dialog == "handoff" or intent == "handoff" else 1.0))
    return {
        "inbound_messages_per_matter": {"unit": "messages per matter", "total": round(len(ids) / len(set(ids)), 2) if ids else None,
                                        "count": len(ids), "series": series},
        "containment": {"unit": "share", "total": _share([v for _, v in questions]), "count": len(questions),
                        "series": _series(questions, _share)},
    }


def _handoffs(session: Session, span: _Range, wanted: set[int], matter_type: str | None) -> dict[str, Any]:
    rows = [h for h in session.scalars(select(Handoff)) if h.created_at in span
            and (matter_type is None or h.matter_id in wanted)]
    replies = [(h.created_at, (h.first_reply_at - h.created_at).total_seconds() / 60) for h in rows if h.first_reply_at]
    return {
        "handoffs": {"unit": "handoffs", "total": len(rows), "series": _series(((h.created_at, 1.0) for h in rows), len)},
        "time_to_first_staff_reply": {"unit": "minutes", "total": _mean([v for _, v in replies]), "count": len(replies),
                                      "series": _series(replies, _mean)},
    }


def _first_uploads(by_kind: dict[str, list[OutgoingEvent]]) -> dict[tuple[int, str], datetime]:
    first: dict[tuple[int, str], datetime] = {}
    for e in by_kind["document_uploaded"]:
        first.setdefault((e.matter_id, (e.data or {}).get("item")), e.created_at)
    return first


def _documents(by_kind, matters: dict[int, Matter], wanted: set[int], span: _Range) -> dict[str, Any]:
    uploaded = _first_uploads(by_kind)
    first_review: dict[tuple[int, str], OutgoingEvent] = {}
    accepted: dict[tuple[int, str], datetime] = {}
    for e in by_kind["document_reviewed"]:
        key = (e.matter_id, (e.data or {}).get("item"))
        first_review.setdefault(key, e)
        if (e.data or {}).get("status") == "accepted":
            accepted.setdefault(key, e.created_at)
    per_item: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"to_received": [], "to_accepted": []})
    cycles = []
    for key, at in accepted.items():
        if key[0] not in wanted or at not in span or key not in uploaded:
            continue
        opened = matters[key[0]].created_at
        per_item[key[1]]["to_received"].append((uploaded[key] - opened).total_seconds() / DAY)
        per_item[key[1]]["to_accepted"].append((at - uploaded[key]).total_seconds() / DAY)
        cycles.append((at, (at - opened).total_seconds() / DAY))
    firsts = [(e.created_at, 1.0 if (e.data or {}).get("status") == "accepted" else 0.0)
              for key, e in first_review.items() if key[0] in wanted and e.created_at in span]
    return {
        "document_turnaround": {"unit": "days", "total": _mean([v for _, v in cycles]), "count": len(cycles),
                                "by_item": {k: {"to_received": _mean(v["to_received"]), "to_accepted": _mean(v["to_accepted"]),
                                                "count": len(v["to_accepted"])} for k, v in sorted(per_item.items())},
                                "series": _series(cycles, _mean)},
        "first_pass_acceptance": {"unit": "share", "total": _share([v for _, v in firsts]), "count": len(firsts),
                                  "series": _series(firsts, _share)},
    }


def _payments(session: Session, span: _Range, wanted: set[int]) -> dict[str, Any]:
    rows = session.execute(select(Invoice, Payment.paid_at).join(Payment, Payment.invoice_id == Invoice.id)
                           .where(Invoice.status == "paid", Payment.kind == "payment")).all()
    last: dict[int, tuple[Invoice, datetime]] = {}
    for invoice, paid_at in rows:
        if invoice.id not in last or paid_at > last[invoice.id][1]:
            last[invoice.id] = (invoice, paid_at)
    days = [(paid_at, float((paid_at.date() - invoice.issued).days)) for invoice, paid_at in last.values()
            if invoice.matter_id in wanted and paid_at in span]
    return {"unit": "days", "total": _mean([v for _, v in days]), "count": len(days), "series": _series(days, _mean)}


def _intake(session: Session, by_kind, matters: dict[int, Matter], wanted: set[int], span: _Range) -> dict[str, Any]:
    uploaded = _first_uploads(by_kind)
    first_message: dict[int, datetime] = {}
    for e in by_kind["message_received"]:
        if e.client_id is not None:
            first_message.setdefault(e.client_id, e.created_at)
    items: dict[int, list[ChecklistItem]] = defaultdict(list)
    for item in session.scalars(select(ChecklistItem)):
        items[item.matter_id].append(item)
    done = []
    for mid in wanted:
        checklist = items.get(mid, [])
        times = [uploaded[(mid, i.key)] for i in checklist if (mid, i.key) in uploaded]
        if not checklist or not times or any(i.status in OPEN_STATUSES for i in checklist):
            continue
        completed = max(times)
        if completed not in span:
            continue
        matter = matters[mid]
        first = min(t for t in (matter.created_at, first_message.get(matter.client_id)) if t is not None)
        done.append((completed, (completed - first).total_seconds() / DAY))
    return {"unit": "days", "total": _mean([v for _, v in done]), "count": len(done), "series": _series(done, _mean)}


def rows(report: dict[str, Any]) -> Iterable[tuple]:
    """(kpi, month, group, value, count) rows for CSV: the total ("all") first, then each month."""
    for name, kpi in report["kpis"].items():
        yield name, "all", "", kpi.get("total"), kpi.get("count", "")
        for item, values in (kpi.get("by_item") or {}).items():
            yield name + ".to_received", "all", item, values["to_received"], values["count"]
            yield name + ".to_accepted", "all", item, values["to_accepted"], values["count"]
        for channel, count in (kpi.get("by_channel") or {}).items():
            yield name, "all", channel, count, count
        for point in kpi["series"]:
            yield name, point["month"], point.get("group", ""), point["value"], point["count"]


def charts(report: dict[str, Any]) -> dict[str, str]:
    """An inline SVG line chart per KPI over the months (for the console's dashboard)."""
    from services.charts import line_chart

    out = {}
    for name, kpi in report["kpis"].items():
        points = [(p["month"], p["value"]) for p in kpi["series"] if not p.get("group")]
        if kpi.get("by_channel"):
            months: dict[str, float] = defaultdict(float)
            for p in kpi["series"]:
                months[p["month"]] += p["value"]
            points = sorted(months.items())
        out[name] = line_chart(points, title=name.replace("_", " "), unit=kpi["unit"])
    return out
