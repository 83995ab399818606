"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json (hand-written, kept true
by tests/test_api.py, which validates real responses against the schema of their operation)."""
from __future__ import annotations

_S = "#/components/schemas/"
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": _S + name}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(item: str) -> dict:
    return {"type": "object", "required": ["data", "next_cursor"], "additionalProperties": False,
            "properties": {"data": {"type": "array", "items": _ref(item)}, "next_cursor": NULLABLE_STRING}}


PROBLEM = {"description": "A problem (RFC 9457)", "content": {"application/problem+json": {"schema": _ref("Problem")}}}
ERRORS = {"400": PROBLEM, "401": PROBLEM, "403": PROBLEM, "404": PROBLEM}
WRITE_ERRORS = {**ERRORS, "409": PROBLEM, "422": PROBLEM}
PAGING = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
          {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"}]


def _id(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict = {
    "openapi": "3.1.0",
    "info": {"title": "Puente API", "version": "1.0.0",
             "description": "For case-management systems: upsert clients, matters, checklist items and invoices by "
                            "external id (the rules of `puente import`), record payments made elsewhere, change stages, "
                            "read transcripts, documents' metadata and KPIs. Bearer tokens from `puente api-tokens create` "
                            "(scope read: GET; write: everything)."},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": {
        "/clients": {"get": {"operationId": "listClients", "parameters": PAGING,
                             "responses": {"200": _json(_page("Client")), **ERRORS}}},
        "/clients/{external_id}": {
            "parameters": [_id("external_id", "The client's id in your system")],
            "get": {"operationId": "getClient", "responses": {"200": _json(_ref("Client")), **ERRORS}},
            "put": {"operationId": "upsertClient", "requestBody": _body(_ref("ClientInput")),
                    "responses": {"200": _json(_ref("Client"), "Updated (or unchanged)"),
                                  "201": _json(_ref("Client"), "Created"), **WRITE_ERRORS}}},
        "/matters": {"get": {"operationId": "listMatters",
                             "parameters": PAGING + [{"name": "client", "in": "query", "schema": {"type": "string"}}],
                             "responses": {"200": _json(_page("Matter")), **ERRORS}}},
        "/matters/{external_id}": {
            "parameters": [_id("external_id", "The matter's id in your system")],
            "get": {"operationId": "getMatter", "responses": {"200": _json(_ref("Matter")), **ERRORS}},
            "put": {"operationId": "upsertMatter", "requestBody": _body(_ref("MatterInput")),
                    "responses": {"200": _json(_ref("Matter"), "Updated (or unchanged)"),
                                  "201": _json(_ref("Matter"), "Created"), **WRITE_ERRORS}}},
        "/matters/{external_id}/checklist/{key}": {
            "parameters": [_id("external_id", "The matter's id in your system"), _id("key", "The item's key")],
            "put": {"operationId": "upsertChecklistItem", "requestBody": _body(_ref("ChecklistItemInput")),
                    "responses": {"200": _json(_ref("ChecklistItem")), "201": _json(_ref("ChecklistItem")), **WRITE_ERRORS}}},
        "/matters/{external_id}/stage": {
            "parameters": [_id("external_id", "The matter's id in your system")],
            "post": {"operationId": "changeStage",
                     "requestBody": _body({"type": "object", "required": ["stage"], "properties": {"stage": {"type": "string"}}}),
                     "responses": {"200": _json(_ref("Matter")), **WRITE_ERRORS}}},
        "/matters/{external_id}/transcript": {
            "parameters": [_id("external_id", "The matter's id in your system")],
            "get": {"operationId": "getTranscript", "parameters": PAGING,
                    "responses": {"200": _json(_page("TranscriptMessage")), **ERRORS}}},
        "/matters/{external_id}/documents": {
            "parameters": [_id("external_id", "The matter's id in your system")],
            "get": {"operationId": "listDocuments", "parameters": PAGING,
                    "responses": {"200": _json(_page("Document")), **ERRORS}}},
        "/invoices/{number}": {
            "parameters": [_id("number", "The invoice number")],
            "get": {"operationId": "getInvoice", "responses": {"200": _json(_ref("Invoice")), **ERRORS}},
            "put": {"operationId": "upsertInvoice", "requestBody": _body(_ref("InvoiceInput")),
                    "responses": {"200": _json(_ref("Invoice")), "201": _json(_ref("Invoice")), **WRITE_ERRORS}}},
        "/invoices/{number}/payments": {
            "parameters": [_id("number", "The invoice number")],
            "post": {"operationId": "recordPayment", "requestBody": _body(_ref("PaymentInput")),
                     "responses": {"201": _json(_ref("Invoice"), "Recorded"),
                                   "200": _json(_ref("Invoice"), "Recorded before (same reference)"), **WRITE_ERRORS}}},
        "/metrics": {"get": {
            "operationId": "getMetrics",
            "parameters": [{"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                           {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                           {"name": "matter_type", "in": "query", "schema": {"type": "string"}},
                           {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}],
            "responses": {"200": {"description": "The KPIs", "content": {
                "application/json": {"schema": _ref("Metrics")}, "text/csv": {"schema": {"type": "string"}}}}, **ERRORS}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Problem": {"type": "object", "required": ["type", "title", "status"],
                        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                                       "detail": {"type": "string"},
                                       "errors": {"type": "array", "items": {
                                           "type": "object", "required": ["path", "reason"],
                                           "properties": {"path": {"type": "string"}, "reason": {"type": "string"}}}},
                                       "invoices": {"type": "array", "items": {"type": "string"}}}},
            "Client": {"type": "object", "additionalProperties": False,
                       "required": ["external_id", "first_name", "last_name", "preferred_language", "timezone", "fields"],
                       "properties": {"external_id": {"type": "string"}, "first_name": {"type": "string"},
                                      "last_name": {"type": "string"}, "email": NULLABLE_STRING, "phone": NULLABLE_STRING,
                                      "preferred_language": {"enum": ["en", "es"]}, "timezone": {"type": "string"},
                                      "fields": {"type": "object"}, "created_at": DATE_TIME, "updated_at": DATE_TIME}},
            "ClientInput": {"type": "object", "description": "A client of Import format v1 (external_id from the path).",
                            "properties": {"first_name": {"type": "string"}, "last_name": {"type": "string"},
                                           "date_of_birth": {"type": "string", "format": "date"},
                                           "phone": {"type": "string"}, "email": {"type": "string"},
                                           "preferred_language": {"enum": ["en", "es"]}, "timezone": {"type": "string"},
                                           "fields": {"type": "object"}}},
            "Deadline": {"type": "object", "required": ["name", "due"],
                         "properties": {"name": {"type": "string"}, "due": {"type": "string", "format": "date"},
                                        "kind": {"type": "string"}, "location": NULLABLE_STRING}},
            "ChecklistItem": {"type": "object", "additionalProperties": False, "required": ["key", "status"],
                              "properties": {"key": {"type": "string"},
                                             "status": {"enum": ["required", "received", "accepted", "rejected"]},
                                             "reason": NULLABLE_STRING,
                                             "label": {"type": ["object", "null"]}, "updated_at": DATE_TIME}},
            "ChecklistItemInput": {"type": "object", "required": ["status"],
                                   "properties": {"status": {"enum": ["required", "received", "accepted", "rejected"]},
                                                  "reason": {"type": "string"},
                                                  "label": {"type": "object", "properties": {"en": {"type": "string"},
                                                                                             "es": {"type": "string"}}}}},
            "LedgerEntry": {"type": "object", "required": ["amount", "kind", "source", "paid_at"],
                            "properties": {"amount": {"type": "string"}, "kind": {"type": "string"},
                                           "source": {"type": "string"}, "paid_at": DATE_TIME}},
            "Invoice": {"type": "object", "additionalProperties": False,
                        "required": ["number", "matter", "account", "status", "currency", "total", "balance", "payments"],
                        "properties": {"number": {"type": "string"}, "matter": {"type": "string"},
                                       "account": {"enum": ["trust", "operating"]},
                                       "status": {"enum": ["unpaid", "partial", "paid", "disputed", "void"]},
                                       "currency": {"type": "string"}, "issued": {"type": "string", "format": "date"},
                                       "due": {"type": ["string", "null"], "format": "date"},
                                       "blocks_stage": NULLABLE_STRING,
                                       "total": {"type": "string", "description": "Decimal amount as a string"},
                                       "balance": {"type": "string"}, "lines": {"type": "array"},
                                       "payments": {"type": "array", "items": _ref("LedgerEntry")}}},
            "InvoiceInput": {"type": "object", "required": ["matter", "account", "issued", "lines"],
                             "description": "An invoice of Import format v1, with the matter's external id.",
                             "properties": {"matter": {"type": "string"}, "account": {"enum": ["trust", "operating"]},
                                            "currency": {"type": "string"}, "issued": {"type": "string", "format": "date"},
                                            "due": {"type": ["string", "null"], "format": "date"},
                                            "blocks_stage": {"type": ["string", "null"]}, "lines": {"type": "array"},
                                            "payments": {"type": "array"}, "disputed": {"type": "boolean"},
                                            "void": {"type": "boolean"}}},
            "PaymentInput": {"type": "object", "required": ["amount", "reference"],
                             "properties": {"amount": {"type": "string", "examples": ["200.00"]},
                                            "paid_at": DATE_TIME,
                                            "reference": {"type": "string", "description": "Your id for the payment "
                                                                                           "(idempotency key)"}}},
            "Matter": {"type": "object", "additionalProperties": False,
                       "required": ["external_id", "client", "type", "stage", "deadlines", "checklist", "invoices"],
                       "properties": {"external_id": {"type": "string"}, "client": {"type": "string"},
                                      "type": {"type": "string"}, "stage": {"type": "string"},
                                      "waiting_stage": NULLABLE_STRING, "receipt_number": NULLABLE_STRING,
                                      "stage_changed_at": DATE_TIME, "nudges_paused": {"type": "boolean"},
                                      "deadlines": {"type": "array", "items": _ref("Deadline")},
                                      "checklist": {"type": "array", "items": _ref("ChecklistItem")},
                                      "invoices": {"type": "array", "items": _ref("Invoice")}}},
            "MatterInput": {"type": "object", "required": ["client", "type"],
                            "description": "A matter of Import format v1 (external_id from the path; change the stage "
                                           "of an existing matter with POST /matters/{external_id}/stage).",
                            "properties": {"client": {"type": "string"}, "type": {"type": "string"},
                                           "stage": {"type": "string"}, "receipt_number": {"type": ["string", "null"]},
                                           "deadlines": {"type": "array"}, "checklist": {"type": "array"},
                                           "invoices": {"type": "array"}}},
            "TranscriptMessage": {"type": "object", "additionalProperties": False,
                                  "required": ["id", "direction", "channel", "text", "at", "state"],
                                  "properties": {"id": {"type": "integer"}, "direction": {"enum": ["in", "out"]},
                                                 "channel": {"type": "string"}, "text": {"type": "string"},
                                                 "at": DATE_TIME, "state": {"type": "string"},
                                                 "language": NULLABLE_STRING, "from_staff": {"type": "boolean"},
                                                 "attachments": {"type": "integer"}}},
            "Document": {"type": "object", "additionalProperties": False,
                         "required": ["id", "mime", "size", "sha256", "status"],
                         "properties": {"id": {"type": "integer"}, "item": NULLABLE_STRING, "filename": NULLABLE_STRING,
                                        "mime": {"type": "string"}, "size": {"type": "integer"},
                                        "sha256": {"type": "string"}, "status": {"type": "string"},
                                        "scan_status": {"type": "string"}, "channel": NULLABLE_STRING,
                                        "received_at": DATE_TIME}},
            "SeriesPoint": {"type": "object", "required": ["month", "value", "count"],
                            "properties": {"month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                                           "value": {"type": ["number", "null"]}, "count": {"type": "integer"},
                                           "group": {"type": "string"}}},
            "Kpi": {"type": "object", "required": ["unit", "total", "series"],
                    "properties": {"unit": {"type": "string"}, "total": {"type": ["number", "null"]},
                                   "count": {"type": "integer"},
                                   "series": {"type": "array", "items": _ref("SeriesPoint")},
                                   "by_item": {"type": "object"}, "by_channel": {"type": "object"}}},
            "Metrics": {"type": "object", "required": ["range", "kpis"],
                        "properties": {"range": {"type": "object"},
                                       "kpis": {"type": "object", "additionalProperties": _ref("Kpi"),
                                                "required": ["inbound_messages_per_matter", "containment", "handoffs",
                                                             "time_to_first_staff_reply", "document_turnaround",
                                                             "first_pass_acceptance", "days_to_payment", "intake_time",
                                                             "opt_outs"]}}},
        },
    },
}
