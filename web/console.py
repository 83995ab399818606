"""The staff console: sign-in with TOTP, the handoff queue, conversations, matters, documents, audit.

Server-rendered pages with a little JavaScript (the queue polls). Every state change carries a
CSRF token; the session cookie is HttpOnly, SameSite=Strict and Secure behind https. Records
outside a person's access answer 404 and are audited. Staff reads of conversations and documents
are audited too.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from datetime import datetime, timedelta, timezone
from functools import wraps

from flask import (Blueprint, Response, abort, current_app, g, jsonify, make_response, redirect, render_template,
                   request, url_for)
from sqlalchemy import select, update

from services import access, audit, delivery_problems, handoffs, reviews, staff_auth
from services.checklists import item_name
from services.documents import item_documents, progress
from services.i18n import N_, Translator
from services.intake import available, open_document
from services.invoices import balance, paid_amount
from services.matters import StageBlocked, change_stage
from services.stages import STAGE_TEXT
from services.summaries.record import for_reader
from services.models import (STAFF_ROLES, STAGES, AuditEvent, ChecklistItem, Client, Conversation, Document, Handoff,
                             Invoice, Matter, Message, StaffSession, StaffUser)
from services.vault import TamperedFile

bp = Blueprint("console", __name__, url_prefix="/console")
# Words the pages show from data (roles, handoff reasons, states), marked here for the catalogs.
SHOWN_FROM_DATA = (
    N_("admin"), N_("partner"), N_("associate"), N_("paralegal"), N_("finance"),
    N_("asked_for_person"), N_("not_understood"), N_("dispute"), N_("verification_lockout"), N_("upload_trouble"),
    N_("processing_error"), N_("whatsapp_window"),
    N_("required"), N_("received"), N_("accepted"), N_("rejected"),
    N_("pending"), N_("sending"), N_("sent"), N_("delivered"), N_("failed"), N_("unknown"), N_("dead"), N_("cancelled"),
    N_("awaiting_approval"),
    N_("inbound_messages_per_matter"), N_("containment"), N_("handoffs"), N_("time_to_first_staff_reply"),
    N_("document_turnaround"), N_("first_pass_acceptance"), N_("days_to_payment"), N_("intake_time"), N_("opt_outs"),
    N_("messages per matter"), N_("minutes"), N_("days"), N_("opt-outs"), N_("unpaid"), N_("partial"), N_("paid"), N_("disputed"), N_("void"),
    N_("Passwords need at least 12 characters."), N_("Too many attempts. Wait a little and try again."),
    N_("Wrong email or password."), N_("That code did not work. Use the current code from your app, or a recovery code."),
    N_("That code did not work. Check the time on your phone and try the current code."),
    N_("Two-step sign-in is already set up for this account."),
)
COOKIE = "puente_staff"
# Requests that show no navigation (files, polling), so the delivery-problem count is not taken for them.
_NO_NAV_COUNT = ("console.document", "console.thumbnail", "console.queue_json", "console.deliveries")
PRE_COOKIE = "puente_pre"  # binds the sign-in form's CSRF token before there is a session


def _runtime():
    return current_app.extensions["puente"]


def _now() -> datetime:
    return _runtime().engine.clock()


def _secure() -> bool:
    settings = current_app.extensions.get("puente_settings") or _runtime().settings
    return settings.public_base_url.startswith("https") or settings.production


def _csrf_for(seed: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def _csrf_seed() -> str:
    return request.cookies.get(COOKIE) or request.cookies.get(PRE_COOKIE) or ""


def _check_csrf() -> None:
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    seed = _csrf_seed()
    if not seed or not hmac.compare_digest(sent, _csrf_for(seed)):
        abort(400, description="CSRF token missing or wrong")


def _translator() -> Translator:
    user = getattr(g, "staff", None)
    lang = request.args.get("lang") or (user.language if user else None) or request.accept_languages.best_match(["en", "es"]) or "en"
    return Translator.for_language(lang)


@bp.app_context_processor
def _template_helpers():
    if not request.path.startswith("/console"):
        return {}
    t = _translator()
    seed = _csrf_seed() or getattr(g, "pre_token", "")
    return {"_": t.gettext, "lang": t.language, "csrf": _csrf_for(seed) if seed else "", "staff": getattr(g, "staff", None),
            "money": t.money, "fmt_time": _fmt_time, "delivery_problem_count": _delivery_problem_count,
            "stage_label": lambda stage: t.gettext(STAGE_TEXT[stage].label) if stage in STAGE_TEXT else stage,
            "summary_for_reader": lambda stored: for_reader(stored, t)}


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _set_cookie(response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=_secure(), max_age=max_age, path="/console")


@bp.before_request
def _load_session():
    """Finds the signed-in person (idle and absolute limits applied) and checks CSRF on changes."""
    g.staff, g.staff_session = None, None
    settings = _runtime().settings
    with _runtime().Session.begin() as session:
        found = staff_auth.find_session(session, request.cookies.get(COOKIE), _now(),
                                        idle=timedelta(minutes=settings.console_idle_minutes),
                                        absolute=timedelta(hours=settings.console_absolute_hours),
                                        touch=not request.path.endswith(".json"))  # polling is not activity
        if found is not None:
            user = session.get(StaffUser, found.staff_user_id)
            session.expunge(user)
            session.expunge(found)
            g.staff, g.staff_session = user, found
            if found.stage == "active" and request.method == "GET" and request.endpoint not in _NO_NAV_COUNT:
                # Counted here, in this transaction: SQLite takes its lock at BEGIN, so a page must not
                # open a second transaction while it renders inside its own.
                g.delivery_problem_count = _count_delivery_problems(session)
    if request.method == "POST":
        _check_csrf()


def signed_in(view):
    """Requires a fully signed-in person (password and second factor)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.staff is None or g.staff_session.stage != "active":
            if request.path.endswith(".json"):
                return jsonify(error="signed out"), 401
            return redirect(url_for("console.login", next=request.path))
        return view(*args, **kwargs)
    return wrapper


def _not_found(session, subject: str):
    access.refuse(session, g.staff, subject)
    session.commit()
    abort(404)


# -- sign-in -------------------------------------------------------------------------------------
@bp.get("/login")
def login():
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    g.pre_token = pre
    response = make_response(render_template("console/login.html", error=None, next=request.args.get("next", "")))
    if request.cookies.get(COOKIE) is None:
        _set_cookie(response, PRE_COOKIE, pre, max_age=3600)
    return response


def _address() -> str:
    return request.remote_addr or "?"


@bp.post("/login")
def login_post():
    email, password = request.form.get("email", ""), request.form.get("password", "")
    with _runtime().Session.begin() as session:
        try:
            started = staff_auth.sign_in_password(session, email, password, _address(), _now())
        except staff_auth.Throttled as exc:
            error, status, retry = str(exc), 429, exc.retry_after
        except staff_auth.AuthError as exc:
            error, status, retry = str(exc), 401, None
        else:
            error = None
    if error:
        g.pre_token = request.cookies.get(PRE_COOKIE, "")
        response = make_response(render_template("console/login.html", error=_translator().gettext(error),
                                                 next=request.form.get("next", "")), status)
        if retry:
            response.headers["Retry-After"] = str(retry)
        return response
    response = redirect(url_for("console.enrol" if started.next == "enrol" else "console.second_factor",
                                next=request.form.get("next", "")))
    _set_cookie(response, COOKIE, started.token)
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    if g.staff is None or g.staff_session.stage != "totp":
        return redirect(url_for("console.login"))
    error = None
    if request.method == "POST":
        with _runtime().Session.begin() as session:
            current = session.get(StaffSession, g.staff_session.id)
            try:
                started = staff_auth.sign_in_second_factor(session, current, request.form.get("code", ""), _address(), _now())
            except staff_auth.AuthError as exc:
                error = str(exc)
        if error is None:
            target = request.form.get("next") or url_for("console.queue")
            response = redirect(target if target.startswith("/console") else url_for("console.queue"))
            _set_cookie(response, COOKIE, started.token)
            return response
    return render_template("console/code.html", error=_translator().gettext(error) if error else None,
                           next=request.values.get("next", "")), (401 if error else 200)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """First sign-in: scan the QR code, confirm one code, keep the recovery codes."""
    import qrcode
    import qrcode.image.svg

    if g.staff is None or g.staff_session.stage != "enrol":
        return redirect(url_for("console.login"))
    error = None
    secret = request.form.get("secret") or staff_auth.new_totp_secret()
    if request.method == "POST":
        with _runtime().Session.begin() as session:
            current = session.get(StaffSession, g.staff_session.id)
            try:
                started, codes = staff_auth.enrol(session, current, secret, request.form.get("code", ""), _address(), _now())
            except staff_auth.AuthError as exc:
                error = str(exc)
        if error is None:
            response = make_response(render_template("console/recovery.html", codes=codes))
            _set_cookie(response, COOKIE, started.token)
            return response
    with _runtime().Session() as session:
        firm = _runtime().engine.firm(session)
        uri = staff_auth.provisioning_uri(g.staff, secret, firm.name)
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="unicode")
    return render_template("console/enrol.html", secret=secret, qr_svg=svg,
                           error=_translator().gettext(error) if error else None), (401 if error else 200)


@bp.post("/logout")
def logout():
    if g.staff_session is not None:
        with _runtime().Session.begin() as session:
            staff_auth.sign_out(session, session.get(StaffSession, g.staff_session.id), _now())
    response = redirect(url_for("console.login"))
    response.delete_cookie(COOKIE, path="/console")
    return response


@bp.post("/language")
@signed_in
def language():
    lang = request.form.get("language")
    if lang in ("en", "es"):
        with _runtime().Session.begin() as session:
            session.get(StaffUser, g.staff.id).language = lang
    back = request.form.get("back") or ""
    return redirect(back if back.startswith("/console/") and not back.startswith("//") else url_for("console.queue"))


# -- the handoff queue ---------------------------------------------------------------------------
def _queue_rows(session) -> list[dict]:
    now = _now()
    rows = session.execute(
        select(Handoff, Conversation, Matter, Client)
        .join(Conversation, Conversation.id == Handoff.conversation_id)
        .outerjoin(Matter, Matter.id == Handoff.matter_id)
        .outerjoin(Client, Client.id == Matter.client_id)
        .where(Handoff.status != "resolved").order_by(Handoff.created_at)
    ).all()
    out = []
    for handoff, conv, matter, client in rows:
        if not access.can_see_conversation(session, g.staff, handoff.matter_id):
            continue
        assignee = session.get(StaffUser, handoff.assignee_id) if handoff.assignee_id else None
        out.append({
            "id": handoff.id, "conversation": conv.id,
            "client": f"{client.first_name} {client.last_name}" if client else None,
            "matter": matter.external_id if matter else None, "matter_type": matter.type if matter else None,
            "channel": conv.channel, "language": conv.language or "es", "reason": handoff.reason,
            "waiting_minutes": int((now - handoff.created_at).total_seconds() // 60),
            "assignee": assignee.name if assignee else None, "mine": handoff.assignee_id == g.staff.id,
            "summary_ready": handoff.ai_summary_status in ("ready", "fallback", "off"),
        })
    return out


@bp.get("/")
@signed_in
def queue():
    with _runtime().Session() as session:
        rows = _queue_rows(session)
    return render_template("console/queue.html", rows=rows)


@bp.get("/queue.json")
@signed_in
def queue_json():
    with _runtime().Session() as session:
        return jsonify(handoffs=_queue_rows(session))


# -- conversations -------------------------------------------------------------------------------
def _conversation_or_404(session, conv_id: int) -> Conversation:
    conv = session.get(Conversation, conv_id)
    if conv is None:
        abort(404)
    if not access.can_see_conversation(session, g.staff, conv.matter_id or _handoff_matter(session, conv)):
        _not_found(session, f"conversation:{conv_id}")
    return conv


def _handoff_matter(session, conv: Conversation) -> int | None:
    return session.scalar(select(Handoff.matter_id).where(Handoff.conversation_id == conv.id)
                          .order_by(Handoff.id.desc()).limit(1))


def _open_handoff(session, conv: Conversation) -> Handoff | None:
    return session.scalar(select(Handoff).where(Handoff.conversation_id == conv.id, Handoff.status != "resolved")
                          .order_by(Handoff.id.desc()).limit(1))


@bp.get("/conversations/<int:conv_id>")
@signed_in
def conversation(conv_id: int):
    with _runtime().Session.begin() as session:
        conv = _conversation_or_404(session, conv_id)
        messages = [m for m in session.scalars(select(Message).where(Message.conversation_id == conv.id).order_by(Message.id))
                    if _may_read_turn(session, m)]
        handoff = _open_handoff(session, conv)
        matter_id = conv.matter_id or (handoff.matter_id if handoff else None)
        matter = session.get(Matter, matter_id) if matter_id else None
        audit.record(session, f"staff:{g.staff.id}", "conversation_read", f"conversation:{conv.id}", {})
        documents = {d.id: d for d in session.scalars(select(Document).where(
            Document.message_id.in_([m.id for m in messages if m.media])))} if any(m.media for m in messages) else {}
        window = getattr(_runtime().channels.get(conv.channel), "session_window", None)
        outside_window = bool(window and conv.last_inbound_at and _now() - conv.last_inbound_at > window)
        staff_names = {u.id: u.name for u in session.scalars(select(StaffUser))}
        context = _matter_context(session, matter) if matter and access.can_see_matter(session, g.staff, matter) else None
        page = render_template("console/conversation.html", conv=conv, messages=messages, handoff=handoff,
                               matter=matter, context=context, documents=documents, outside_window=outside_window,
                               staff_names=staff_names, can_see_documents=matter is None or access.can_see_documents(session, g.staff, matter),
                               approver=g.staff.role in access.ATTORNEYS)
    return page


def _may_read_turn(session, message: Message) -> bool:
    """A family phone's thread holds several clients' turns: staff read those of matters open to them,
    and the unverified ones (which disclose nothing about a matter)."""
    if access.sees_all(g.staff):
        return True
    if message.matter_id is None:  # unverified (nothing about a matter), or the client before picking a matter
        return message.client_id is None or access.can_see_client(session, g.staff, message.client_id)
    return access.can_see_matter(session, g.staff, session.get(Matter, message.matter_id))


def _needs_approval(session, conv: Conversation, text: str) -> bool:
    """The firm's optional gate: paralegal replies on RFE matters, or that mention fees, wait for an attorney."""
    firm = _runtime().engine.firm(session)
    if not (firm.settings or {}).get("approval_gate") or g.staff.role != "paralegal":
        return False
    matter = session.get(Matter, conv.matter_id) if conv.matter_id else None
    lowered = text.lower()
    mentions_fees = any(word in lowered for word in ("$", "fee", "fees", "honorario", "honorarios", "pago", "payment", "costo", "cost"))
    return (matter is not None and matter.stage == "rfe_received") or mentions_fees


@bp.post("/conversations/<int:conv_id>/reply")
@signed_in
def reply(conv_id: int):
    text = (request.form.get("text") or "").strip()
    if not text:
        return redirect(url_for("console.conversation", conv_id=conv_id))
    now = _now()
    with _runtime().Session.begin() as session:
        conv = _conversation_or_404(session, conv_id)
        handoff = _open_handoff(session, conv)
        draft = ((handoff.ai_summary or {}).get("draft_reply") if handoff else None) or ""
        quoted = bool(draft) and (draft.strip() in text or request.form.get("from_draft") == "1")
        held = _needs_approval(session, conv, text)
        msg = Message(conversation_id=conv.id, direction="out", channel=conv.channel, body=text,
                      payload={"choices": [], "staff": True, "quoted_ai_draft": quoted}, media=[],
                      state="awaiting_approval" if held else "pending", attempts=0, language=conv.language,
                      staff_user_id=g.staff.id, received_at=now, client_id=conv.client_id,
                      matter_id=conv.matter_id or (handoff.matter_id if handoff else None))
        session.add(msg)
        session.flush()
        if handoff is not None and handoff.first_reply_at is None and not held:
            handoff.first_reply_at = now
        if handoff is not None and handoff.assignee_id is None:
            handoff.assignee_id = g.staff.id
        audit.record(session, f"staff:{g.staff.id}", "staff_reply", f"message:{msg.id}",
                     {"conversation": conv.id, "quoted_ai_draft": quoted, "held_for_approval": held})
        message_id = None if held else msg.id
    _runtime().queue_sends([message_id])
    return redirect(url_for("console.conversation", conv_id=conv_id))


@bp.post("/messages/<int:message_id>/approve")
@signed_in
def approve(message_id: int):
    if g.staff.role not in access.ATTORNEYS:
        abort(403)
    now = _now()
    with _runtime().Session.begin() as session:
        msg = session.get(Message, message_id)
        if msg is None or msg.state != "awaiting_approval":
            abort(404)
        conv = _conversation_or_404(session, msg.conversation_id)
        msg.state, msg.received_at = "pending", now
        msg.payload = {**(msg.payload or {}), "approved_by": g.staff.id}
        handoff = _open_handoff(session, conv)
        if handoff is not None and handoff.first_reply_at is None:
            handoff.first_reply_at = now
        audit.record(session, f"staff:{g.staff.id}", "staff_reply_approved", f"message:{msg.id}", {})
    _runtime().queue_sends([message_id])
    return redirect(url_for("console.conversation", conv_id=conv.id))


@bp.post("/conversations/<int:conv_id>/take")
@signed_in
def take(conv_id: int):
    with _runtime().Session.begin() as session:
        conv = _conversation_or_404(session, conv_id)
        handoff = _open_handoff(session, conv)
        assignee = request.form.get("assignee", type=int) or g.staff.id
        person = session.get(StaffUser, assignee)
        if person is None or not person.active or not access.can_see_conversation(session, person, handoff.matter_id if handoff else None):
            abort(400, description="That person cannot take this conversation.")
        if handoff is not None:
            handoff.assignee_id = assignee
            handoff.status = "assigned"
            audit.record(session, f"staff:{g.staff.id}", "handoff_assigned", f"handoff:{handoff.id}", {"assignee": assignee})
    return redirect(url_for("console.conversation", conv_id=conv_id))


@bp.post("/conversations/<int:conv_id>/return")
@signed_in
def return_to_assistant(conv_id: int):
    with _runtime().Session.begin() as session:
        conv = _conversation_or_404(session, conv_id)
        handoffs.resolve(session, conv, f"staff:{g.staff.id}", _now())
    return redirect(url_for("console.queue"))


# -- delivery problems ---------------------------------------------------------------------------
def _may_see_deliveries(session) -> bool:
    return access.can_see_conversation(session, g.staff, None)  # everyone who reads conversations


def _delivery_rows(session) -> list[delivery_problems.Problem]:
    """The open delivery problems the signed-in person may read (their conversations, their turns)."""
    conversations: dict[int, bool] = {}

    def may_read(msg: Message, conv: Conversation) -> bool:
        if conv.id not in conversations:
            conversations[conv.id] = access.can_see_conversation(session, g.staff,
                                                                 conv.matter_id or _handoff_matter(session, conv))
        return conversations[conv.id] and _may_read_turn(session, msg)

    return delivery_problems.open_problems(session, _now(), may_read)


def _count_delivery_problems(session) -> int:
    """How many delivery problems wait for the signed-in person (for the nav and the queue's banner)."""
    return len(_delivery_rows(session)) if _may_see_deliveries(session) else 0


def _delivery_problem_count() -> int:
    """The count taken when the request began (0 on pages that do not show it)."""
    return g.get("delivery_problem_count", 0)


def _deliveries_page(session, error: str | None = None, status: int = 200):
    t, now = _translator(), _now()
    rows = [{"problem": p, "client": p.client_name, "explained": delivery_problems.explain(t, p.state, p.error),
             "checking": p.state == "unknown" and _runtime().reconciles(p.channel, p.at, now)}
            for p in _delivery_rows(session)]
    g.delivery_problem_count = len(rows)
    audit.record(session, f"staff:{g.staff.id}", "deliveries_read", "deliveries",
                 {"messages": [r["problem"].message_id for r in rows]})
    return render_template("console/deliveries.html", rows=rows, error=error), status


@bp.get("/deliveries")
@signed_in
def deliveries():
    """Outbound messages that did not go out, or may not have: staff settle them here."""
    with _runtime().Session.begin() as session:
        if not _may_see_deliveries(session):
            _not_found(session, "deliveries")
        return _deliveries_page(session)


@bp.post("/deliveries/<int:message_id>")
@signed_in
def delivery_action(message_id: int):
    """It arrived (an unknown send) · Send again (through the outbox) · Dismiss (a failure, reviewed)."""
    action, shown_state = request.form.get("action"), request.form.get("state")
    queued, refusal, now = None, None, _now()
    with _runtime().Session.begin() as session:
        msg = session.get(Message, message_id, with_for_update=True)
        if msg is None or msg.direction != "out":
            abort(404)
        conv = _conversation_or_404(session, msg.conversation_id)
        if not _may_read_turn(session, msg):
            _not_found(session, f"message:{msg.id}")
        try:
            delivery_problems.check_current(msg, shown_state)
            if action == "resend":
                delivery_problems.send_again(session, msg, conv, staff_id=g.staff.id, now=now)
                queued = msg.id
            elif action not in delivery_problems.actions(msg, conv):
                abort(400)
            elif action == "arrived":
                delivery_problems.mark_arrived(session, msg, staff_id=g.staff.id, now=now)
            else:
                delivery_problems.dismiss(session, msg, staff_id=g.staff.id, now=now)
        except delivery_problems.Stale:
            refusal = (delivery_problems.STALE, 409)
        except delivery_problems.Refused as exc:
            refusal = (exc.args[0], 400)
        if refusal:
            session.rollback()  # nothing changes
    if refusal:
        with _runtime().Session.begin() as session:
            return _deliveries_page(session, _translator().gettext(refusal[0]), refusal[1])
    _runtime().queue_sends([queued])
    return redirect(url_for("console.deliveries"))


# -- matters and documents -----------------------------------------------------------------------
def _matter_or_404(session, matter_id: int) -> Matter:
    matter = session.get(Matter, matter_id)
    if matter is None:
        abort(404)
    if not access.can_see_matter(session, g.staff, matter):
        _not_found(session, f"matter:{matter_id}")
    return matter


def _matter_context(session, matter: Matter) -> dict:
    t = _translator()
    items = session.scalars(select(ChecklistItem).where(ChecklistItem.matter_id == matter.id)
                            .order_by(ChecklistItem.position, ChecklistItem.id)).all()
    invoices = session.scalars(select(Invoice).where(Invoice.matter_id == matter.id).order_by(Invoice.id)).all()
    done, total = progress(session, matter)
    return {
        "client": session.get(Client, matter.client_id),
        "checklist": [{"item": i, "name": item_name(t, matter, i),
                   "documents": item_documents(session, i) + [d for d in item_documents(session, i, role="staff_copy") if d.status == "valid"]}
                  for i in items],
        "invoices": [{"invoice": inv, "paid": paid_amount(inv), "balance": balance(inv)} for inv in invoices],
        "progress": (done, total),
    }


@bp.get("/matters")
@signed_in
def matters():
    with _runtime().Session() as session:
        rows = session.execute(select(Matter, Client).join(Client, Client.id == Matter.client_id)
                               .where(Matter.id.in_(access.visible_matter_ids(session, g.staff)))
                               .order_by(Matter.external_id)).all()
        return render_template("console/matters.html", rows=rows)


@bp.get("/matters/<int:matter_id>")
@signed_in
def matter(matter_id: int):
    with _runtime().Session.begin() as session:
        found = _matter_or_404(session, matter_id)
        audit.record(session, f"staff:{g.staff.id}", "matter_read", f"matter:{found.id}", {})
        return render_template("console/matter.html", matter=found, context=_matter_context(session, found),
                               stages=STAGES, reasons=reviews.REASONS,
                               can_see_documents=access.can_see_documents(session, g.staff, found),
                               can_review=g.staff.role != "finance", error=request.args.get("error"))


@bp.post("/matters/<int:matter_id>/stage")
@signed_in
def matter_stage(matter_id: int):
    error = None
    with _runtime().Session.begin() as session:
        found = _matter_or_404(session, matter_id)
        if g.staff.role == "finance":
            abort(403)
        try:
            change_stage(session, found, request.form.get("stage", ""), f"staff:{g.staff.id}", _now())
        except StageBlocked as exc:
            error = _translator().gettext("Refused: this stage waits for payment of invoice %(numbers)s.",
                                          numbers=", ".join(exc.invoice_numbers))
        except ValueError:
            abort(400)
    return redirect(url_for("console.matter", matter_id=matter_id, error=error) if error
                    else url_for("console.matter", matter_id=matter_id))


@bp.post("/items/<int:item_id>/review")
@signed_in
def review_item(item_id: int):
    decision = request.form.get("decision")
    with _runtime().Session.begin() as session:
        item = session.get(ChecklistItem, item_id)
        if item is None:
            abort(404)
        found = _matter_or_404(session, item.matter_id)
        if not access.can_see_documents(session, g.staff, found):
            _not_found(session, f"checklist_item:{item_id}")
        try:
            notice = reviews.review(session, item, decision, actor=f"staff:{g.staff.id}", now=_now(),
                                    firm=_runtime().engine.firm(session), reason_code=request.form.get("reason") or None,
                                    note=request.form.get("note") or None)
        except reviews.ReviewError as exc:
            session.rollback()
            return redirect(url_for("console.matter", matter_id=found.id, error=str(exc)))
        notice_id = notice.id if notice else None
        matter_id = found.id
    _runtime().queue_sends([notice_id])
    return redirect(url_for("console.matter", matter_id=matter_id))


@bp.get("/documents/<int:document_id>/thumbnail")
@signed_in
def thumbnail(document_id: int):
    """A small JPEG of a photo for the transcript (same checks as a download; EXIF-free; audited)."""
    from PIL import Image, ImageOps

    from services.inspection import MAX_PIXELS

    data, mime = _readable_document(document_id, "document_thumbnail_read")
    if not mime.startswith("image/"):
        abort(404)
    image = Image.open(io.BytesIO(data))
    if image.width * image.height > MAX_PIXELS:
        abort(404)
    image.draft("RGB", (640, 640))  # JPEGs decode at a fraction of their size: cheap in a request
    image = ImageOps.exif_transpose(image).convert("RGB")
    image.thumbnail((320, 320), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return Response(out.getvalue(), mimetype="image/jpeg", headers={"Cache-Control": "no-store",
                                                                      "X-Content-Type-Options": "nosniff"})


def _readable_document(document_id: int, action: str) -> tuple[bytes, str]:
    """The bytes of a document the signed-in person may open (404 outside their access, 409 when unavailable)."""
    with _runtime().Session.begin() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            abort(404)
        matter = session.get(Matter, doc.matter_id) if doc.matter_id else None
        if matter is None and doc.message_id:  # not filed yet: judged by the turn it came with, never the thread's
            turn_matter = session.scalar(select(Message.matter_id).where(Message.id == doc.message_id))
            matter = session.get(Matter, turn_matter) if turn_matter else None
        allowed = access.can_see_documents(session, g.staff, matter) if matter else g.staff.role in access.ALL_MATTERS
        if not allowed:
            _not_found(session, f"document:{document_id}")
        if not available(doc):
            abort(409, description="This file is not available (not checked, not scanned clean, or quarantined).")
        try:
            data = open_document(session, _runtime().vault, doc)
        except TamperedFile:
            session.commit()  # keep the "corrupt" mark and its audit event
            abort(409, description="This file failed its integrity check and is marked corrupt.")
        audit.record(session, f"staff:{g.staff.id}", action, f"document:{doc.id}", {"sha256": doc.sha256})
        return data, doc.mime


@bp.get("/documents/<int:document_id>")
@signed_in
def document(document_id: int):
    """Serves a file as an attachment after access, availability and SHA-256 checks (audited)."""
    data, mime = _readable_document(document_id, "document_read")
    with _runtime().Session() as session:
        doc = session.get(Document, document_id)
        name = doc.filename or f"document-{doc.id}"
    extension = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
                 "image/heic": ".heic", "image/heif": ".heif"}.get(mime, "")
    safe = "".join(c for c in name if c.isalnum() or c in "-_.")[:80] or f"document-{document_id}"
    if extension and not safe.lower().endswith(extension):
        safe += extension
    return Response(data, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="{safe}"', "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"})


# -- audit ---------------------------------------------------------------------------------------
def _audit_query():
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    matter = request.args.get("matter", "").strip()
    actor = request.args.get("actor", "").strip()
    since, until = request.args.get("from", ""), request.args.get("to", "")
    if matter:
        with _runtime().Session() as session:
            found = session.scalar(select(Matter).where(Matter.external_id == matter))
        mid = found.id if found else -1
        query = query.where((AuditEvent.subject == f"matter:{mid}") | (AuditEvent.details["matter"].as_string() == matter))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    for value, op in ((since, "ge"), (until, "lt")):
        if value:
            try:
                moment = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
            except ValueError:
                abort(400)
            if op == "lt":
                moment += timedelta(days=1)
            query = query.where(AuditEvent.at >= moment if op == "ge" else AuditEvent.at < moment)
    return query


@bp.get("/audit")
@signed_in
def audit_page():
    if g.staff.role not in access.ALL_MATTERS:
        abort(404)
    fmt = request.args.get("format")
    with _runtime().Session.begin() as session:
        events = session.scalars(_audit_query().limit(None if fmt else 200)).all()
        chain = audit.verify(session)
        rows = [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "subject": e.subject,
                 "details": e.details, "hash": e.hash} for e in events]
        audit.record(session, f"staff:{g.staff.id}", "audit_read", "audit", {"format": fmt or "html"})
    if fmt == "json":
        return Response(json.dumps(rows, ensure_ascii=False, indent=1), mimetype="application/json",
                        headers={"Content-Disposition": 'attachment; filename="audit.json"'})
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "at", "actor", "action", "subject", "details", "hash"])
        for row in rows:
            writer.writerow([row["id"], row["at"], row["actor"], row["action"], row["subject"],
                             json.dumps(row["details"], ensure_ascii=False), row["hash"]])
        return Response(out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    return render_template("console/audit.html", rows=rows, chain=chain, args=request.args)


# -- KPIs ----------------------------------------------------------------------------------------
@bp.get("/dashboard")
@signed_in
def dashboard():
    """The KPIs firms buy this for, with a chart each, filtered by matter type and dates; CSV export."""
    from services import kpis
    if g.staff.role not in access.ALL_MATTERS and g.staff.role != "finance":
        abort(404)
    try:
        start = datetime.fromisoformat(request.args["from"]).date() if request.args.get("from") else None
        end = datetime.fromisoformat(request.args["to"]).date() if request.args.get("to") else None
    except ValueError:
        abort(400)
    matter_type = request.args.get("matter_type") or None
    with _runtime().Session() as session:
        report = kpis.compute(session, start=start, end=end, matter_type=matter_type)
        types = sorted(set(session.scalars(select(Matter.type))))
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kpi", "month", "group", "value", "count"])
        writer.writerows(kpis.rows(report))
        return Response(out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="kpis.csv"'})
    return render_template("console/dashboard.html", report=report, charts=kpis.charts(report), types=types,
                           args=request.args)


# -- admin: integrations ------------------------------------------------------------------------
@bp.route("/admin/integrations", methods=["GET", "POST"])
@signed_in
def integrations():
    """Outgoing webhook endpoints (secret shown once, rotation, delivery log, replay) and API tokens."""
    from services import api_tokens, webhooks
    from services.events import EVENTS
    from services.models import ApiToken, WebhookDelivery, WebhookEndpoint

    if g.staff.role != "admin":
        abort(404)
    shown, error, now = None, None, _now()
    actor = f"staff:{g.staff.id}"
    if request.method == "POST":
        action = request.form.get("action")
        with _runtime().Session.begin() as session:
            try:
                if action == "add_endpoint":
                    events = request.form.getlist("events") or ["*"]
                    endpoint, secret = webhooks.add_endpoint(
                        session, request.form.get("url", "").strip(), events, full=bool(request.form.get("full")),
                        allow_private=bool(request.form.get("allow_private")), now=now)
                    shown = ("secret", endpoint.url, secret)
                elif action == "rotate_secret":
                    endpoint = session.get(WebhookEndpoint, request.form.get("endpoint_id", type=int))
                    if endpoint is None:
                        abort(404)
                    shown = ("secret", endpoint.url, webhooks.rotate_secret(session, endpoint, now))
                elif action in ("disable", "enable"):
                    endpoint = session.get(WebhookEndpoint, request.form.get("endpoint_id", type=int))
                    if endpoint is None:
                        abort(404)
                    endpoint.active = action == "enable"
                    audit.record(session, actor, f"webhook_endpoint_{action}d", f"webhook_endpoint:{endpoint.id}", {})
                elif action == "replay":
                    webhooks.replay(session, request.form.get("delivery_id", type=int), now)
                elif action == "issue_token":
                    row, token = api_tokens.issue(session, request.form.get("name", "").strip() or "token",
                                                  request.form.get("scope", "read"), created_by=actor, now=now)
                    shown = ("token", row.name, token)
                elif action == "revoke_token":
                    api_tokens.revoke(session, request.form.get("token_id", type=int), actor=actor, now=now)
            except (webhooks.EndpointError, ValueError, LookupError) as exc:
                session.rollback()
                error = str(exc)
    with _runtime().Session() as session:
        endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        deliveries = {e.id: session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == e.id)
                                            .order_by(WebhookDelivery.id.desc()).limit(15)).all() for e in endpoints}
        tokens = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
        return render_template("console/integrations.html", endpoints=endpoints, deliveries=deliveries, tokens=tokens,
                               events=EVENTS, shown=shown, error=error)


# -- admin: staff accounts -----------------------------------------------------------------------
@bp.route("/admin/users", methods=["GET", "POST"])
@signed_in
def users():
    if g.staff.role != "admin":
        abort(404)
    error = created = None
    if request.method == "POST":
        with _runtime().Session.begin() as session:
            action = request.form.get("action")
            if action == "create":
                password = secrets.token_urlsafe(12)
                try:
                    user = staff_auth.create_user(session, request.form.get("email", ""), request.form.get("name", ""),
                                                  request.form.get("role", ""), password, request.form.get("language", "en"),
                                                  actor=f"staff:{g.staff.id}")
                    created = (user.email, password)
                except staff_auth.AuthError as exc:
                    error = str(exc)
                    session.rollback()
            elif action in ("deactivate", "activate", "reset_totp"):
                user = session.get(StaffUser, request.form.get("user_id", type=int))
                if user is None or user.id == g.staff.id:
                    abort(400)
                if action == "reset_totp":
                    user.totp_secret, user.recovery_codes, user.totp_last_step = None, [], None
                if action in ("reset_totp", "deactivate"):  # their open sessions end now
                    session.execute(update(StaffSession).where(StaffSession.staff_user_id == user.id,
                                                               StaffSession.revoked_at.is_(None)).values(revoked_at=_now()))
                else:
                    user.active = action == "activate"
                audit.record(session, f"staff:{g.staff.id}", f"staff_{action}", f"staff:{user.id}", {})
            elif action == "assign":
                matter = session.scalar(select(Matter).where(Matter.external_id == request.form.get("matter", "")))
                user = session.get(StaffUser, request.form.get("user_id", type=int))
                if matter is None or user is None:
                    error = "unknown matter or person"
                elif user not in matter.staff:
                    matter.staff.append(user)
                    audit.record(session, f"staff:{g.staff.id}", "matter_assigned", f"matter:{matter.id}", {"staff": user.id})
    with _runtime().Session() as session:
        people = session.scalars(select(StaffUser).order_by(StaffUser.name)).all()
        return render_template("console/users.html", people=people, roles=STAFF_ROLES, error=error, created=created)
