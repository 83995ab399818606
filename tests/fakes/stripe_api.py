"""A fake Stripe API (Checkout Sessions) on a real local HTTP server, plus Stripe's webhook signing.

Point the stripe package at it with STRIPE_API_URL=fake.url. It speaks the real paths and wire
format: form-encoded bodies with bracketed keys (``line_items[0][price_data][unit_amount]``),
``Authorization: Bearer <secret key>``, ``Idempotency-Key`` (a repeated key returns the first
response), ``Stripe-Account`` (recorded), JSON objects shaped like Stripe's, and Stripe's error
shape ``{"error": {"type", "message", "code"}}``.

    with FakeStripe(keys={"sk_test_operating", "sk_test_trust"}) as fake:
        fake.requests        # every request: method, path, params, key, account, idempotency_key
        fake.sessions        # id → the checkout.session object
        fake.complete(id)    # the client pays: the checkout.session, payment_intent and charge objects
        fake.dispute(charge) # the cardholder's bank disputes it: the dispute object (charge.dispute.created)
        fake.close_dispute(dispute_id, "won")  # the dispute ends: the dispute object (charge.dispute.closed)
    sign(secret, payload)    # the Stripe-Signature header value for a webhook body
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def sign(secret: str, payload: bytes | str, timestamp: int | None = None) -> str:
    """Stripe's scheme: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    payload = payload.encode() if isinstance(payload, str) else payload
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def event(kind: str, obj: dict, event_id: str | None = None, account: str | None = None) -> bytes:
    """A webhook body as Stripe sends it."""
    body = {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "api_version": "2024-06-20",
            "created": int(time.time()), "type": kind, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}
    if account:
        body["account"] = account
    return json.dumps(body).encode()


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """Decodes Stripe's bracketed form keys into nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.fake._dispatch(self, "GET")

    def do_POST(self):
        self.server.fake._dispatch(self, "POST")


class FakeStripe:
    def __init__(self, keys: set[str] | None = None):
        self.keys = keys or {"sk_test_fake"}
        self.requests: list[dict] = []
        self.sessions: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self._idempotent: dict[tuple, tuple[int, dict]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "FakeStripe":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ----------------------------------------------------------------------------
    def _send(self, h, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Request-Id", "req_" + secrets.token_hex(8))
        h.end_headers()
        h.wfile.write(data)

    def _error(self, h, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        self._send(h, status, {"error": {"type": kind, "message": message, **({"code": code} if code else {})}})

    def _dispatch(self, h, method: str) -> None:
        path = urlsplit(h.path).path
        length = int(h.headers.get("Content-Length") or 0)
        params = _nest(parse_qsl(h.rfile.read(length).decode(), keep_blank_values=True)) if length else {}
        auth = h.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else None
        record = {"method": method, "path": path, "params": params, "key": key,
                  "account": h.headers.get("Stripe-Account"), "idempotency_key": h.headers.get("Idempotency-Key")}
        with self._lock:
            self.requests.append(record)
        if key not in self.keys:
            return self._error(h, 401, "Invalid API Key provided", kind="invalid_request_error")
        m = re.fullmatch(r"/v1/checkout/sessions(?:/(cs_[A-Za-z0-9_]+))?(/expire)?", path)
        if not m:
            return self._error(h, 404, f"Unrecognized request URL ({method}: {path}).")
        sid, expire = m.group(1), m.group(2)
        if method == "POST" and not sid:
            idem = (key, record["account"], record["idempotency_key"]) if record["idempotency_key"] else None
            with self._lock:
                if idem and idem in self._idempotent:
                    status, body = self._idempotent[idem]
                    return self._send(h, status, body)
            status, body = self._create(params, record["account"])
            with self._lock:
                if idem:
                    self._idempotent[idem] = (status, body)
            return self._send(h, status, body)
        with self._lock:
            session = self.sessions.get(sid)
        if session is None or session["_account"] != record["account"]:
            return self._error(h, 404, f"No such checkout.session: '{sid}'", code="resource_missing")
        if method == "GET" and not expire:
            return self._send(h, 200, self._public(session))
        if method == "POST" and expire:
            if session["status"] != "open":
                return self._error(h, 400, f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                                             f"This Checkout Session has a status of \"{session['status']}\".")
            session["status"] = "expired"
            return self._send(h, 200, self._public(session))
        return self._error(h, 405, "Method not allowed")

    def _create(self, params: dict, account: str | None) -> tuple[int, dict]:
        items = params.get("line_items") or []
        if params.get("mode") != "payment" or not items:
            return 400, {"error": {"type": "invalid_request_error", "message": "Missing required param: line_items."}}
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        sid = "cs_test_" + secrets.token_hex(24)
        session = {
            "id": sid, "object": "checkout.session", "amount_subtotal": total, "amount_total": total,
            "client_reference_id": params.get("client_reference_id"), "created": int(time.time()),
            "currency": items[0]["price_data"]["currency"], "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "livemode": False, "metadata": params.get("metadata") or {}, "mode": "payment", "payment_intent": None,
            "payment_status": "unpaid", "status": "open", "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"), "url": f"{self.url}/c/pay/{sid}",
            "_account": account, "_pi_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        with self._lock:
            self.sessions[sid] = session
        return 200, self._public(session)

    @staticmethod
    def _public(session: dict) -> dict:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # -- what the client and Stripe do --------------------------------------------------------
    def complete(self, sid: str) -> dict:
        """The client pays the checkout: returns (checkout.session object, payment_intent object, charge object)."""
        session = self.sessions[sid]
        pi = "pi_" + secrets.token_hex(12)
        session.update(status="complete", payment_status="paid", payment_intent=pi)
        intent = {"id": pi, "object": "payment_intent", "amount": session["amount_total"],
                  "amount_received": session["amount_total"], "currency": session["currency"], "status": "succeeded",
                  "metadata": dict(session["_pi_metadata"]), "latest_charge": "ch_" + secrets.token_hex(12)}
        charge = {"id": intent["latest_charge"], "object": "charge", "amount": session["amount_total"],
                  "amount_captured": session["amount_total"], "amount_refunded": 0, "currency": session["currency"],
                  "payment_intent": pi, "metadata": dict(session["_pi_metadata"]), "paid": True, "refunded": False}
        return {"session": self._public(session), "payment_intent": intent, "charge": charge}

    def dispute(self, charge: dict, amount: int | None = None, reason: str = "fraudulent",
                inquiry: bool = False) -> dict:
        """The cardholder's bank disputes a charge: the Dispute object as charge.dispute.created carries it.

        A chargeback withdraws the disputed amount (one balance transaction); an inquiry (warning_*)
        withdraws nothing.
        """
        amount = charge["amount"] if amount is None else amount
        did = "dp_" + secrets.token_hex(12)
        now = int(time.time())
        dispute = {
            "id": did, "object": "dispute", "amount": amount, "balance_transactions": [],
            "charge": charge["id"], "created": now, "currency": charge["currency"],
            "evidence": {"customer_name": None, "uncategorized_text": None},
            "evidence_details": {"due_by": now + 7 * 86400, "has_evidence": False, "past_due": False,
                                 "submission_count": 0},
            "is_charge_refundable": inquiry, "livemode": False, "metadata": {},
            "payment_intent": charge.get("payment_intent"), "reason": reason,
            "status": "warning_needs_response" if inquiry else "needs_response",
        }
        if not inquiry:
            dispute["balance_transactions"].append(self._balance_transaction(dispute, -amount, "Chargeback withdrawal"))
        with self._lock:
            self.disputes[did] = dispute
        return json.loads(json.dumps(dispute))

    def close_dispute(self, dispute_id: str, status: str, reinstated: int | None = None) -> dict:
        """The dispute ends (won, lost, warning_closed): the Dispute object as charge.dispute.closed carries it.

        A won chargeback gets its funds back (a second balance transaction); `reinstated` sets another
        amount given back, as Stripe does for a dispute on a partially refunded payment.
        """
        dispute = self.disputes[dispute_id]
        dispute["status"] = status
        dispute["evidence_details"]["has_evidence"] = status == "won"
        back = dispute["amount"] if status == "won" and dispute["balance_transactions"] else (reinstated or 0)
        if back:
            dispute["balance_transactions"].append(self._balance_transaction(dispute, back, "Chargeback reversal"))
        return json.loads(json.dumps(dispute))

    @staticmethod
    def _balance_transaction(dispute: dict, amount: int, what: str) -> dict:
        fee = 1500 if amount < 0 else 0
        return {"id": "txn_" + secrets.token_hex(12), "object": "balance_transaction", "amount": amount,
                "available_on": int(time.time()) + 2 * 86400, "created": int(time.time()), "currency": dispute["currency"],
                "description": f"{what} for {dispute['charge']}", "exchange_rate": None, "fee": fee,
                "fee_details": [{"amount": fee, "application": None, "currency": dispute["currency"],
                                 "description": "Dispute fee", "type": "stripe_fee"}] if fee else [],
                "net": amount - fee, "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
                "source": dispute["id"], "status": "pending", "type": "adjustment"}
