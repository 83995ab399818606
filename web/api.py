"""The JSON API for case-management systems: /api/v1 (OpenAPI 3.1 at /api/v1/openapi.json).

Bearer tokens issued with `puente api-tokens create` (only their SHA-256 is stored); scope `read`
for GET, `write` for everything else. Upserts by external id go through the importer (the same
rules and validation as `puente import`, applied in one transaction); payments made elsewhere go
through the payments ledger like a processor's event; stage changes through
services.matters.change_stage (unpaid blocking invoices: 409). Errors are application/problem+json.
Request bodies and transcripts are never logged.
"""
from __future__ import annotations

import base64
import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from services import api_tokens, importer, kpis
from services import audit
from services.db import utcnow
from services.firm import get_firm
from services.invoices import balance
from services.matters import StageBlocked, change_stage
from services.models import STAGES, ChecklistItem, Client, Conversation, Document, Invoice, Matter, Message
from services.payments.base import PaymentEvent
from services.payments.confirm import apply_events
from web.openapi import OPENAPI

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT, DEFAULT_LIMIT = 200, 50
PROBLEM = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None, **extra):
        super().__init__(title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def _problem(status: int, title: str, detail: str | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    response = jsonify(body)
    response.status_code, response.mimetype = status, PROBLEM
    return response


@bp.errorhandler(Problem)
def _on_problem(exc: Problem):
    return _problem(exc.status, exc.title, exc.detail, **exc.extra)


@bp.errorhandler(HTTPException)
def _on_http(exc: HTTPException):
    return _problem(exc.code or 500, exc.name, exc.description)


def _runtime():
    return current_app.extensions["puente"]


@bp.before_request
def _authenticate():
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    with _runtime().Session.begin() as session:
        row = api_tokens.authenticate(session, token, utcnow())
        if row is None:
            response = _problem(401, "Unauthorized", "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="puente"'
            return response
        needed = "read" if request.method in ("GET", "HEAD") else "write"
        if not api_tokens.allows(row, needed):
            return _problem(403, "Forbidden", f"this token's scope is {row.scope}; {needed} is needed")
        g.api_actor = f"api:{row.id}"
    return None


@bp.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


# -- helpers -----------------------------------------------------------------------------------
def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Problem(400, "Bad Request", "the body must be a JSON object")
    return data


def _page() -> tuple[int, int]:
    """(limit, after_id) from ?limit=&cursor= (the cursor is opaque to clients)."""
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise Problem(400, "Bad Request", "limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, "Bad Request", f"limit must be between 1 and {MAX_LIMIT}")
    cursor = request.args.get("cursor")
    if not cursor:
        return limit, 0
    try:
        return limit, int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode().removeprefix("id:"))
    except ValueError:
        raise Problem(400, "Bad Request", "cursor is not one this API gave out") from None


def _paged(rows: list, limit: int, render) -> Response:
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = base64.urlsafe_b64encode(f"id:{rows[-1].id}".encode()).decode().rstrip("=") if more else None
    return jsonify({"data": [render(r) for r in rows], "next_cursor": cursor})


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _validated(session, data: dict, prefix: str) -> importer.ImportResult:
    problems = importer.validate(data, session)
    if problems:
        raise Problem(422, "Unprocessable Content", "the request was refused; nothing was changed",
                      errors=[{"path": "$" + p.path.removeprefix(prefix), "reason": p.reason} for p in problems])
    return importer.apply(session, data)


def _find(session, column, value: str):
    """The row whose `column` is `value`, or a 404 problem naming what was looked for."""
    row = session.scalar(select(column.class_).where(column == value))
    if row is None:
        raise Problem(404, "Not Found", f"no {column.class_.__tablename__[:-1]} {value}")
    return row


def _matter(session, external_id: str) -> Matter:
    return _find(session, Matter.external_id, external_id)


def _client_json(session, client: Client) -> dict:
    phone = next((cp.address for cp in client.contact_points if cp.kind == "phone"), None)
    return {"external_id": client.external_id, "first_name": client.first_name, "last_name": client.last_name,
            "email": client.email, "phone": phone, "preferred_language": client.preferred_language,
            "timezone": client.timezone, "fields": client.fields or {}, "created_at": _iso(client.created_at),
            "updated_at": _iso(client.updated_at)}


def _invoice_json(invoice: Invoice, matter_external_id: str) -> dict:
    return {"number": invoice.number, "matter": matter_external_id, "account": invoice.account, "status": invoice.status,
            "currency": invoice.currency, "issued": _iso(invoice.issued), "due": _iso(invoice.due),
            "blocks_stage": invoice.blocks_stage, "total": str(invoice.total), "balance": str(balance(invoice)),
            "lines": list(invoice.lines or []),
            "payments": [{"amount": str(p.amount), "kind": p.kind, "source": p.source, "paid_at": _iso(p.paid_at)}
                         for p in invoice.payments]}


def _matter_json(session, matter: Matter) -> dict:
    return {"external_id": matter.external_id, "client": matter.client.external_id, "type": matter.type,
            "stage": matter.stage, "waiting_stage": matter.waiting_stage, "receipt_number": matter.receipt_number,
            "stage_changed_at": _iso(matter.stage_changed_at), "nudges_paused": bool(matter.nudges_paused),
            "deadlines": [{"name": d.name, "due": _iso(d.due), "kind": d.kind, "location": d.location} for d in matter.deadlines],
            "checklist": [_item_json(i) for i in matter.checklist],
            "invoices": [_invoice_json(inv, matter.external_id) for inv in matter.invoices]}


def _item_json(item: ChecklistItem) -> dict:
    return {"key": item.key, "status": item.status, "reason": item.reason, "label": item.label,
            "updated_at": _iso(item.updated_at)}


def _saved(result: importer.ImportResult, kind: str, body: dict) -> tuple[Response, int]:
    return jsonify(body), (201 if result.created.get(kind) else 200)


# -- clients -----------------------------------------------------------------------------------
@bp.get("/clients")
def list_clients():
    limit, after = _page()
    with _runtime().Session() as session:
        rows = session.scalars(select(Client).where(Client.id > after).order_by(Client.id).limit(limit + 1)).all()
        return _paged(rows, limit, lambda c: _client_json(session, c))


@bp.get("/clients/<external_id>")
def get_client(external_id: str):
    with _runtime().Session() as session:
        return jsonify(_client_json(session, _find(session, Client.external_id, external_id)))


@bp.put("/clients/<external_id>")
def put_client(external_id: str):
    entry = {**_body(), "external_id": external_id}
    with _runtime().Session.begin() as session:
        result = _validated(session, {"clients": [entry]}, "$.clients[0]")
        client = session.scalar(select(Client).where(Client.external_id == external_id))
        return _saved(result, "clients", _client_json(session, client))


# -- matters -----------------------------------------------------------------------------------
@bp.get("/matters")
def list_matters():
    limit, after = _page()
    with _runtime().Session() as session:
        query = select(Matter).where(Matter.id > after).order_by(Matter.id).limit(limit + 1)
        if request.args.get("client"):
            query = query.join(Client, Client.id == Matter.client_id).where(Client.external_id == request.args["client"])
        rows = session.scalars(query).all()
        return _paged(rows, limit, lambda m: _matter_json(session, m))


@bp.get("/matters/<external_id>")
def get_matter(external_id: str):
    with _runtime().Session() as session:
        return jsonify(_matter_json(session, _matter(session, external_id)))


@bp.put("/matters/<external_id>")
def put_matter(external_id: str):
    entry = {**_body(), "external_id": external_id}
    with _runtime().Session.begin() as session:
        stored = session.scalar(select(Matter).where(Matter.external_id == external_id))
        if stored is not None and "stage" in entry and entry["stage"] != stored.stage:
            raise Problem(409, "Conflict", "change a matter's stage with POST /matters/{id}/stage "
                                           "(payment blocks and client updates apply there)")
        result = _validated(session, {"matters": [entry]}, "$.matters[0]")
        return _saved(result, "matters", _matter_json(session, _matter(session, external_id)))


@bp.put("/matters/<external_id>/checklist/<key>")
def put_checklist_item(external_id: str, key: str):
    item_in = {**_body(), "key": key}
    with _runtime().Session.begin() as session:
        matter = _matter(session, external_id)
        items = [{"key": i.key, "status": i.status, **({"reason": i.reason} if i.reason else {}),
                  **({"label": i.label} if i.label else {})} for i in matter.checklist if i.key != key]
        position = next((n for n, i in enumerate(matter.checklist) if i.key == key), len(items))
        items.insert(position, item_in)
        entry = {"external_id": external_id, "client": matter.client.external_id, "type": matter.type, "checklist": items}
        result = _validated(session, {"matters": [entry]}, "$.matters[0].checklist[%d]" % position)
        item = session.scalar(select(ChecklistItem).where(ChecklistItem.matter_id == matter.id, ChecklistItem.key == key))
        return _saved(result, "checklist_items", _item_json(item))


@bp.post("/matters/<external_id>/stage")
def post_stage(external_id: str):
    stage = _body().get("stage")
    if stage not in STAGES:
        raise Problem(422, "Unprocessable Content", "stage must be one of: " + ", ".join(STAGES),
                      errors=[{"path": "$.stage", "reason": "unknown stage"}])
    runtime = _runtime()
    refused = None
    with runtime.Session.begin() as session:
        matter = _matter(session, external_id)
        try:
            change_stage(session, matter, stage, g.api_actor, runtime.engine.clock())
        except StageBlocked as exc:
            refused = exc  # committed all the same: the refusal is audited and the stage remembered
        body = _matter_json(session, matter)
    if refused:
        raise Problem(409, "Conflict", f"stage {stage} waits until invoice(s) {', '.join(refused.invoice_numbers)} "
                      "are paid; the matter moves on by itself then", invoices=refused.invoice_numbers)
    return jsonify(body)


@bp.get("/matters/<external_id>/transcript")
def get_transcript(external_id: str):
    limit, after = _page()
    with _runtime().Session.begin() as session:
        matter = _matter(session, external_id)
        audit.record(session, g.api_actor, "api_transcript_read", f"matter:{matter.id}", {})
        # Only this matter's turns: a family phone's thread also holds other clients' matters.
        ours = (Message.matter_id == matter.id) | (Message.matter_id.is_(None) & (Message.client_id == matter.client_id))
        rows = session.scalars(select(Message).where(ours, Message.id > after)
                               .order_by(Message.id).limit(limit + 1)).all()
        channels = dict(session.execute(select(Conversation.id, Conversation.channel)
                                        .where(Conversation.id.in_({m.conversation_id for m in rows}))).all())
        return _paged(rows, limit, lambda m: {
            "id": m.id, "direction": m.direction, "channel": channels.get(m.conversation_id, m.channel), "text": m.body,
            "at": _iso(m.sent_at or m.received_at), "state": m.state, "language": m.language,
            "from_staff": m.staff_user_id is not None, "attachments": len(m.media or [])})


@bp.get("/matters/<external_id>/documents")
def get_documents(external_id: str):
    limit, after = _page()
    with _runtime().Session() as session:
        matter = _matter(session, external_id)
        keys = {i.id: i.key for i in matter.checklist}
        rows = session.scalars(select(Document).where(Document.matter_id == matter.id, Document.role == "original",
                                                      Document.id > after).order_by(Document.id).limit(limit + 1)).all()
        return _paged(rows, limit, lambda d: {
            "id": d.id, "item": keys.get(d.item_id), "filename": d.filename, "mime": d.mime, "size": d.size,
            "sha256": d.sha256, "status": d.status, "scan_status": d.scan_status, "channel": d.channel,
            "received_at": _iso(d.created_at)})


# -- invoices and payments ---------------------------------------------------------------------
@bp.get("/invoices/<number>")
def get_invoice(number: str):
    with _runtime().Session() as session:
        invoice = _find(session, Invoice.number, number)
        return jsonify(_invoice_json(invoice, invoice.matter.external_id))


@bp.put("/invoices/<number>")
def put_invoice(number: str):
    body = _body()
    matter_ext = body.pop("matter", None)
    with _runtime().Session.begin() as session:
        if not isinstance(matter_ext, str):
            raise Problem(422, "Unprocessable Content", "matter is required",
                          errors=[{"path": "$.matter", "reason": "required"}])
        matter = _matter(session, matter_ext)
        entry = {"external_id": matter.external_id, "client": matter.client.external_id, "type": matter.type,
                 "invoices": [{**body, "number": number}]}
        result = _validated(session, {"matters": [entry]}, "$.matters[0].invoices[0]")
        invoice = session.scalar(select(Invoice).where(Invoice.number == number))
        return _saved(result, "invoices", _invoice_json(invoice, matter.external_id))


@bp.post("/invoices/<number>/payments")
def post_payment(number: str):
    """A payment made elsewhere (check, wire, the firm's own terminal): the ledger, receipt and stage
    release exactly as for a processor's event; idempotent on `reference`."""
    body = _body()
    amount, reason = importer.parse_amount(body.get("amount"))
    paid_at = importer.parse_instant(body.get("paid_at")) if body.get("paid_at") is not None else None
    reference = body.get("reference")
    errors = []
    if amount is None or amount <= 0:
        errors.append({"path": "$.amount", "reason": reason or "must be a positive amount like \"200.00\""})
    if body.get("paid_at") is not None and paid_at is None:
        errors.append({"path": "$.paid_at", "reason": "must be a date and time like 2026-11-15T10:00:00Z"})
    if not isinstance(reference, str) or not 1 <= len(reference) <= 80:
        errors.append({"path": "$.reference", "reason": "required: your system's id for this payment (1-80 characters)"})
    if errors:
        raise Problem(422, "Unprocessable Content", "the payment was refused; nothing was recorded", errors=errors)
    runtime = _runtime()
    with runtime.Session.begin() as session:
        invoice = _find(session, Invoice.number, number)
        if invoice.status in ("void", "disputed"):
            raise Problem(409, "Conflict", f"invoice {number} is {invoice.status}; settle it in the console")
        now = runtime.engine.clock()
        event = PaymentEvent(provider="api", event_id=f"api:{reference}", kind="paid", source_ref=reference,
                             amount=Decimal(amount), currency=invoice.currency, invoice_id=invoice.id,
                             occurred_at=paid_at or now)
        applied = apply_events(session, [event], firm=get_firm(session), now=now)
        body_out = _invoice_json(invoice, invoice.matter.external_id)
    runtime.queue_sends(applied.notices)
    return jsonify(body_out), (200 if applied.replays else 201)


# -- metrics -----------------------------------------------------------------------------------
@bp.get("/metrics")
def get_metrics():
    def day(name: str) -> date | None:
        value = request.args.get(name)
        if not value:
            return None
        parsed = importer.parse_date(value)
        if parsed is None:
            raise Problem(400, "Bad Request", f"{name} must be a date like 2026-12-01")
        return parsed

    start, end = day("from"), day("to")
    with _runtime().Session() as session:
        report = kpis.compute(session, start=start, end=end, matter_type=request.args.get("matter_type") or None)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kpi", "month", "group", "value", "count"])
        for row in kpis.rows(report):
            writer.writerow(row)
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="puente-metrics.csv"'})
    return jsonify(report)
