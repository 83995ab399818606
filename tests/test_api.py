"""The /api/v1 API through HTTP (Flask's test client), every response validated against the schema
its operation declares in the served OpenAPI document."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from services import api_tokens
from services.db import utcnow
from services.models import AuditEvent, Client, Matter, Payment, Reminder
from tests.conftest import Chat
from web import create_app


class Api:
    """Calls the API and checks each answer against the OpenAPI document the app serves."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.http = create_app(runtime.settings, runtime).test_client()
        self.spec = self.http.get("/api/v1/openapi.json").get_json()
        self.tokens: dict[str, str] = {}
        for scope in ("read", "write"):
            with runtime.Session.begin() as session:
                self.tokens[scope] = api_tokens.issue(session, f"test {scope}", scope, created_by="test", now=utcnow())[1]
        self.checked: set[tuple[str, str, str]] = set()

    def _operation(self, method: str, path: str) -> tuple[str, dict]:
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return template, item[method.lower()]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def call(self, method: str, path: str, json=None, scope: str | None = "write", expect: int | None = None):
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        response = self.http.open("/api/v1" + path, method=method, json=json, headers=headers)
        template, operation = self._operation(method, path.split("?")[0])
        declared = operation["responses"].get(str(response.status_code))
        assert declared, f"{method} {template} answered {response.status_code}, which the document does not declare"
        content_type = response.mimetype
        assert content_type in declared["content"], f"{content_type} not declared for {response.status_code}"
        if content_type.endswith("json"):
            schema = {**declared["content"][content_type]["schema"], "components": self.spec["components"]}
            Draft202012Validator(schema).validate(response.get_json())
        self.checked.add((method, template, str(response.status_code)))
        if expect is not None:
            assert response.status_code == expect, response.get_data(as_text=True)
        return response


@pytest.fixture
def api(demo) -> Api:
    return Api(demo)


def test_the_document_is_openapi_31_and_every_reference_resolves(api):
    assert api.spec["openapi"] == "3.1.0"
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(api.spec).replace("'", '"')))
    assert refs and refs <= set(api.spec["components"]["schemas"])


def test_tokens_scopes_and_problem_details(api, demo):
    missing = api.call("GET", "/clients", scope=None, expect=401)
    assert missing.mimetype == "application/problem+json" and missing.get_json()["status"] == 401
    forbidden = api.call("PUT", "/clients/CL-9", json={"first_name": "A"}, scope="read", expect=403)
    assert "write" in forbidden.get_json()["detail"]
    api.call("GET", "/clients", scope="read", expect=200)
    with demo.Session.begin() as session:
        row = api_tokens.authenticate(session, api.tokens["read"], utcnow())
        api_tokens.revoke(session, row.id, actor="test", now=utcnow())
    api.call("GET", "/clients", scope="read", expect=401)
    api.call("GET", "/matters/NOPE", expect=404)


def test_client_upsert_is_idempotent_and_validated_like_the_importer(api, demo):
    body = {"first_name": "Lucía", "last_name": "Paz", "date_of_birth": "1991-04-02", "phone": "+15555550190",
            "preferred_language": "es", "timezone": "America/Denver"}
    def imports() -> int:
        with demo.Session() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "import_applied"))

    first = api.call("PUT", "/clients/CL-90", json=body, expect=201).get_json()
    before = imports()
    again = api.call("PUT", "/clients/CL-90", json=body, expect=200).get_json()
    assert first == again and first["phone"] == "+15555550190" and "date_of_birth" not in first
    assert imports() == before  # nothing changed, nothing written
    with demo.Session() as session:
        assert session.scalar(select(func.count()).select_from(Client).where(Client.external_id == "CL-90")) == 1
    refused = api.call("PUT", "/clients/CL-91", json={**body, "phone": "not a phone", "preferred_language": "fr"}, expect=422)
    paths = {e["path"] for e in refused.get_json()["errors"]}
    assert {"$.phone", "$.preferred_language"} <= paths
    api.call("GET", "/clients/CL-91", expect=404)  # nothing half-imported


def test_matter_checklist_and_invoice_upserts(api, demo):
    matter = {"client": "CL-1004", "type": "I-765", "stage": "collecting_evidence",
              "deadlines": [{"name": "Biometrics appointment", "due": "2027-03-01"}]}
    created = api.call("PUT", "/matters/MAT-90", json=matter, expect=201).get_json()
    assert created["checklist"] and all(i["status"] == "required" for i in created["checklist"])  # the type's template
    assert api.call("PUT", "/matters/MAT-90", json=matter, expect=200).get_json() == created
    moved = api.call("PUT", "/matters/MAT-90", json={**matter, "stage": "filed"}, expect=409)
    assert "/stage" in moved.get_json()["detail"]

    key = created["checklist"][0]["key"]
    item = api.call("PUT", f"/matters/MAT-90/checklist/{key}", json={"status": "accepted"}, expect=200).get_json()
    assert item["status"] == "accepted"
    extra = api.call("PUT", "/matters/MAT-90/checklist/lease_copy",
                     json={"status": "required", "label": {"en": "Lease", "es": "Contrato de alquiler"}}, expect=201)
    assert extra.get_json()["label"]["es"] == "Contrato de alquiler"
    assert api.call("GET", "/matters/MAT-90", scope="read").get_json()["checklist"][0]["key"] == key  # order kept

    invoice = {"matter": "MAT-90", "account": "operating", "issued": "2026-12-01", "due": "2026-12-31",
               "blocks_stage": "ready_to_file", "lines": [{"description": "Filing fee I-765", "amount": "520.00"}]}
    assert api.call("PUT", "/invoices/INV-90", json=invoice, expect=201).get_json()["balance"] == "520.00"
    assert api.call("PUT", "/invoices/INV-90", json=invoice, expect=200).get_json()["total"] == "520.00"
    bad = api.call("PUT", "/invoices/INV-91", json={**invoice, "account": "savings"}, expect=422)
    assert bad.get_json()["errors"][0]["path"] == "$.account"


def test_payments_made_elsewhere_go_to_the_ledger_once_and_release_the_stage(api, demo):
    blocked = api.call("POST", "/matters/MAT-2001/stage", json={"stage": "ready_to_file"}, expect=409).get_json()
    assert blocked["invoices"] == ["INV-1001"]
    invoice = api.call("GET", "/invoices/INV-1001", scope="read").get_json()
    payment = {"amount": invoice["balance"], "paid_at": "2026-12-04T15:00:00Z", "reference": "check-5521"}
    paid = api.call("POST", "/invoices/INV-1001/payments", json=payment, expect=201).get_json()
    assert paid["status"] == "paid" and paid["balance"] == "0.00"
    assert api.call("POST", "/invoices/INV-1001/payments", json=payment, expect=200).get_json() == paid  # same reference
    with demo.Session() as session:
        entries = session.scalars(select(Payment).where(Payment.source == "api")).all()
        assert [(e.amount, e.source_ref) for e in entries] == [(Decimal(invoice["balance"]), "check-5521")]
    assert api.call("GET", "/matters/MAT-2001", scope="read").get_json()["stage"] == "ready_to_file"  # waited, then moved
    refused = api.call("POST", "/invoices/INV-1001/payments", json={"amount": "-5", "reference": ""}, expect=422)
    assert {e["path"] for e in refused.get_json()["errors"]} == {"$.amount", "$.reference"}


def test_stage_change_schedules_the_clients_update(api, demo):
    api.call("POST", "/matters/MAT-2003/stage", json={"stage": "biometrics_scheduled"}, expect=200)
    with demo.Session() as session:
        assert session.scalar(select(Reminder.purpose).where(Reminder.purpose == "stage_changed")) == "stage_changed"
    api.call("POST", "/matters/MAT-2003/stage", json={"stage": "bogus"}, expect=422)


def test_transcript_documents_and_pagination(api, demo):
    chat = Chat(demo, address="+15555550102")
    chat.verify("04/07/1975")
    chat.say("cuál es el estado de mi caso?")
    transcript = api.call("GET", "/matters/MAT-2003/transcript?limit=2", scope="read", expect=200).get_json()
    assert len(transcript["data"]) == 2 and transcript["next_cursor"]
    rest = api.call("GET", f"/matters/MAT-2003/transcript?limit=200&cursor={transcript['next_cursor']}", scope="read").get_json()
    texts = [m["text"] for m in transcript["data"] + rest["data"]]
    assert "cuál es el estado de mi caso?" in texts and any(m["direction"] == "out" for m in rest["data"])
    assert "1975" not in " ".join(texts)  # the date of birth typed to verify is not kept
    api.call("GET", "/matters/MAT-2003/documents", scope="read", expect=200)

    seen, cursor = [], None
    while True:
        page = api.call("GET", "/clients?limit=2" + (f"&cursor={cursor}" if cursor else ""), scope="read").get_json()
        seen += [c["external_id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["CL-1001", "CL-1002", "CL-1003", "CL-1004", "CL-1005"]
    api.call("GET", "/clients?limit=0", scope="read", expect=400)
    api.call("GET", "/clients?cursor=%%%", scope="read", expect=400)
    assert api.call("GET", "/matters?client=CL-1003", scope="read").get_json()["data"][0]["client"] == "CL-1003"


def test_metrics_json_and_csv(api):
    report = api.call("GET", "/metrics?from=2026-01-01&to=2026-12-31&matter_type=I-130", scope="read", expect=200).get_json()
    assert report["range"] == {"from": "2026-01-01", "to": "2026-12-31", "matter_type": "I-130"}
    csv = api.call("GET", "/metrics?format=csv", scope="read", expect=200)
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).startswith("kpi,month,group,value,count")
    api.call("GET", "/metrics?from=yesterday", scope="read", expect=400)
