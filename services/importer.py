"""Import format v1: clients, matters, checklists, deadlines, invoices and payments from one JSON object.

`validate` reads the whole file and lists every problem with its JSON path; `apply` upserts (clients
and matters by external_id, invoices by number) so importing the same file twice changes nothing.
A file with any problem is refused whole: the caller applies only after `validate` returned [].

Field rules: a required key must be present. An optional key that is absent leaves the stored value
as it is (a new row takes the default); an explicit null clears it where the model allows null.
A checklist entry is taken whole (status, reason and label as given). Payments are a ledger: an
imported payment is never edited or removed, only added once (keyed by invoice, time and amount).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services import audit
from services.db import utcnow
from services.invoices import invoice_total, status_from_payments
from services.models import (
    CHECKLIST_STATUSES,
    INVOICE_ACCOUNTS,
    STAGES,
    ChecklistItem,
    Client,
    ContactPoint,
    Deadline,
    Invoice,
    Matter,
    Payment,
)
from services.phones import normalize_phone
from services.receipts import is_known_prefix, normalize_receipt
from services.templates import MATTER_TYPES, load_template

LANGUAGES = ("en", "es")
PAYMENT_SOURCE = "import"
MAX_AMOUNT = Decimal("9999999999.99")  # Numeric(12, 2)
EARLIEST_BIRTH = date(1900, 1, 1)

TOP_KEYS = frozenset({"clients", "matters"})
CLIENT_KEYS = frozenset({"external_id", "first_name", "last_name", "date_of_birth", "phone", "email",
                         "preferred_language", "timezone", "fields"})
MATTER_KEYS = frozenset({"external_id", "client", "type", "stage", "receipt_number", "deadlines",
                         "checklist", "invoices"})
DEADLINE_KEYS = frozenset({"name", "due", "kind", "location"})
CHECKLIST_KEYS = frozenset({"key", "status", "reason", "label"})
INVOICE_KEYS = frozenset({"number", "account", "currency", "issued", "due", "blocks_stage", "lines",
                          "payments", "disputed", "void"})
LINE_KEYS = frozenset({"description", "amount"})
PAYMENT_KEYS = frozenset({"amount", "paid_at"})

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_DECIMAL = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")  # no exponents, underscores or signs like "+"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ITEM_KEY = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")

COUNTED = ("clients", "contact_points", "matters", "deadlines", "checklist_items", "invoices", "payments")


@dataclass(frozen=True)
class Problem:
    """One reason the file is refused (or, in ImportResult.warnings, worth a look)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    """Rows created and updated per kind (see COUNTED), plus warnings that did not refuse the file."""

    created: dict[str, int]
    updated: dict[str, int]
    warnings: tuple[Problem, ...] = ()

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {"created": dict(self.created), "updated": dict(self.updated)}


# --------------------------------------------------------------------------------------------
# Parsing helpers shared by validate and apply (validate guarantees they succeed in apply)


def parse_date(value: object) -> date | None:
    """An ISO calendar date "YYYY-MM-DD" (no week dates or compact forms), else None."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_instant(value: object) -> datetime | None:
    """An ISO date-time with a zone ("…Z" or "…+02:00") as aware UTC, else None."""
    if not isinstance(value, str) or not _DATETIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.astimezone(timezone.utc)


def parse_amount(value: object) -> tuple[Decimal | None, str | None]:
    """A positive money amount with at most 2 decimals, as (Decimal quantized to cents, None) or (None, reason).

    A decimal string is the exact form; a JSON number is accepted through its shortest text
    (str(675.1) == "675.1"), never through binary float arithmetic.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None, "must be a decimal string such as \"675.00\""
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite amount"
    if isinstance(value, Decimal):
        text = format(value, "f")
    else:
        text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _DECIMAL.fullmatch(text):
        return None, "must be a decimal string such as \"675.00\""
    amount = Decimal(text)
    if amount <= 0:
        return None, "must be greater than 0"
    if amount > MAX_AMOUNT:
        return None, "is too large"
    if amount != amount.quantize(Decimal("0.01")):
        return None, "must have at most 2 decimal places"
    return amount.quantize(Decimal("0.01")), None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _template_keys(matter_type: str) -> tuple[str, ...]:
    return tuple(item.key for item in load_template(matter_type).items)


def payment_ref(invoice_number: str, paid_at: datetime, amount: Decimal) -> str:
    """The idempotency key of an imported payment: the same invoice, instant and amount is one payment."""
    return f"{invoice_number}:{paid_at.astimezone(timezone.utc).isoformat()}:{amount}"


def _today() -> date:
    return utcnow().date()


# --------------------------------------------------------------------------------------------
# validate


class _Checker:
    """Collects problems while walking the file; every check appends, none stops the walk."""

    def __init__(self, session: Session | None) -> None:
        self.session = session
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def obj(self, value: object, path: str, allowed: frozenset[str]) -> bool:
        if not isinstance(value, dict):
            self.add(path, "must be an object")
            return False
        for key in value:
            if key not in allowed:
                self.add(f"{path}.{key}", "unknown key")
        return True

    def items(self, value: object, path: str) -> list[Any]:
        """The entries of an optional list (absent or not a list → [] after noting the problem)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, "must be a list")
            return []
        return value

    def text(self, entry: dict, key: str, path: str, *, required: bool, max_len: int,
             nullable: bool = False) -> str | None:
        where = f"{path}.{key}"
        if key not in entry:
            if required:
                self.add(where, "is required")
            return None
        value = entry[key]
        if value is None:
            if required or not nullable:
                self.add(where, "must not be null")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(where, "must be a non-empty string")
            return None
        if len(value) > max_len:
            self.add(where, f"must be at most {max_len} characters")
            return None
        return value

    def choice(self, entry: dict, key: str, path: str, options: Iterable[str], *, required: bool,
               nullable: bool = False) -> str | None:
        where = f"{path}.{key}"
        if key not in entry:
            if required:
                self.add(where, "is required")
            return None
        value = entry[key]
        if value is None and nullable:
            return None
        options = tuple(options)
        if value not in options:
            self.add(where, f"must be one of {', '.join(options)}")
            return None
        return value

    def day(self, entry: dict, key: str, path: str, *, required: bool, nullable: bool = False) -> date | None:
        where = f"{path}.{key}"
        if key not in entry:
            if required:
                self.add(where, "is required")
            return None
        value = entry[key]
        if value is None and nullable:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.add(where, "must be an ISO date YYYY-MM-DD")
        return parsed

    def flag(self, entry: dict, key: str, path: str) -> None:
        if key in entry and not isinstance(entry[key], bool):
            self.add(f"{path}.{key}", "must be true or false")


def validate(data: object, session: Session | None = None) -> list[Problem]:
    """Lists every problem in an import file (empty when it may be applied).

    With a session, references and upserts are also checked against the database: a matter may
    name a client already stored, a stored matter may not move to another client, and a stored
    invoice may not move to another matter.
    """
    check = _Checker(session)
    if not check.obj(data, "$", TOP_KEYS):
        return check.problems
    assert isinstance(data, dict)
    clients = check.items(data.get("clients"), "$.clients") if "clients" in data else []
    matters = check.items(data.get("matters"), "$.matters") if "matters" in data else []

    file_clients = _validate_clients(check, clients)
    _validate_matters(check, matters, file_clients)
    return check.problems


def warnings_for(data: dict) -> list[Problem]:
    """Things worth a look that do not refuse the file (an unknown receipt-number prefix)."""
    found: list[Problem] = []
    for i, matter in enumerate(data.get("matters") or []):
        receipt = normalize_receipt(matter.get("receipt_number"))
        if receipt and not is_known_prefix(receipt):
            found.append(Problem(f"$.matters[{i}].receipt_number", f"unknown service-centre prefix {receipt[:3]}"))
    return found


def _unique_external_id(check: "_Checker", entry: dict, path: str, seen: dict[str, int], index: int) -> str | None:
    """Checks `external_id` and that no earlier entry of the same list used it."""
    ext = check.text(entry, "external_id", path, required=True, max_len=100)
    if ext is not None:
        if ext in seen:
            listing = path.rsplit("[", 1)[0]
            check.add(f"{path}.external_id", f"duplicate external_id {ext!r} (also {listing}[{seen[ext]}])")
        else:
            seen[ext] = index
    return ext


def _validate_clients(check: _Checker, clients: list[Any]) -> set[str]:
    seen: dict[str, int] = {}
    today = _today()
    for i, entry in enumerate(clients):
        path = f"$.clients[{i}]"
        if not check.obj(entry, path, CLIENT_KEYS):
            continue
        _unique_external_id(check, entry, path, seen, i)
        check.text(entry, "first_name", path, required=True, max_len=100)
        check.text(entry, "last_name", path, required=True, max_len=100)
        born = check.day(entry, "date_of_birth", path, required=True)
        if born is not None and born > today:
            check.add(f"{path}.date_of_birth", "is in the future")
        elif born is not None and born < EARLIEST_BIRTH:
            check.add(f"{path}.date_of_birth", "is before 1900")
        if entry.get("phone") is not None:
            if not isinstance(entry["phone"], str) or normalize_phone(entry["phone"]) is None:
                check.add(f"{path}.phone", "is not a possible phone number (use E.164, e.g. +15555550101)")
        email = check.text(entry, "email", path, required=False, max_len=200, nullable=True)
        if email is not None and not _EMAIL.fullmatch(email.strip()):
            check.add(f"{path}.email", "is not an email address")
        check.choice(entry, "preferred_language", path, LANGUAGES, required=False)
        if "timezone" in entry:
            zone = entry["timezone"]
            if not isinstance(zone, str) or zone not in _zones():
                check.add(f"{path}.timezone", "must be an IANA time zone such as America/Chicago")
        if "fields" in entry:
            fields = entry["fields"]
            if not isinstance(fields, dict):
                check.add(f"{path}.fields", "must be an object")
            else:
                try:
                    json.dumps(fields, allow_nan=False)
                except (TypeError, ValueError):
                    check.add(f"{path}.fields", "must hold only JSON values (no NaN or Infinity)")
    return set(seen)


def _stored_matters(session: Session | None, ext_ids: list[str]) -> dict[str, str]:
    """external_id → its client's external_id, for matters already stored."""
    if session is None or not ext_ids:
        return {}
    found: dict[str, str] = {}
    for chunk in _chunks(ext_ids):
        rows = session.execute(
            select(Matter.external_id, Client.external_id).join(Client, Matter.client_id == Client.id)
            .where(Matter.external_id.in_(chunk))
        )
        found.update({m: c for m, c in rows})
    return found


def _stored_clients(session: Session | None, ext_ids: list[str]) -> set[str]:
    if session is None or not ext_ids:
        return set()
    found: set[str] = set()
    for chunk in _chunks(ext_ids):
        found.update(session.scalars(select(Client.external_id).where(Client.external_id.in_(chunk))))
    return found


def _stored_invoices(session: Session | None, numbers: list[str]) -> dict[str, Invoice]:
    if session is None or not numbers:
        return {}
    found: dict[str, Invoice] = {}
    for chunk in _chunks(numbers):
        stmt = (select(Invoice).where(Invoice.number.in_(chunk))
                .options(selectinload(Invoice.payments), selectinload(Invoice.matter)))
        found.update({inv.number: inv for inv in session.scalars(stmt)})
    return found


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _strings(entries: list[Any], key: str) -> list[str]:
    return sorted({e[key] for e in entries if isinstance(e, dict) and isinstance(e.get(key), str)})


def _validate_matters(check: _Checker, matters: list[Any], file_clients: set[str]) -> None:
    stored_matters = _stored_matters(check.session, _strings(matters, "external_id"))
    stored_clients = _stored_clients(check.session, _strings(matters, "client"))
    all_invoices = [inv for m in matters if isinstance(m, dict) and isinstance(m.get("invoices"), list)
                    for inv in m["invoices"]]
    stored_invoices = _stored_invoices(check.session, _strings(all_invoices, "number"))
    seen: dict[str, int] = {}
    numbers: dict[str, str] = {}
    for i, entry in enumerate(matters):
        path = f"$.matters[{i}]"
        if not check.obj(entry, path, MATTER_KEYS):
            continue
        ext = _unique_external_id(check, entry, path, seen, i)
        client = check.text(entry, "client", path, required=True, max_len=100)
        if client is not None:
            if client not in file_clients and client not in stored_clients:
                check.add(f"{path}.client", f"refers to unknown client {client!r}")
            elif ext is not None and ext in stored_matters and stored_matters[ext] != client:
                check.add(f"{path}.client", "the stored matter belongs to another client; move it in the console")
        matter_type = check.choice(entry, "type", path, MATTER_TYPES, required=True)
        check.choice(entry, "stage", path, STAGES, required=False)
        receipt = entry.get("receipt_number")
        if receipt is not None and normalize_receipt(receipt) is None:
            check.add(f"{path}.receipt_number", "must be 3 letters and 10 digits, e.g. IOE0912345678")
        _validate_deadlines(check, check.items(entry.get("deadlines"), f"{path}.deadlines"), f"{path}.deadlines")
        _validate_checklist(check, check.items(entry.get("checklist"), f"{path}.checklist"),
                            f"{path}.checklist", matter_type)
        for j, inv in enumerate(check.items(entry.get("invoices"), f"{path}.invoices")):
            _validate_invoice(check, inv, f"{path}.invoices[{j}]", ext, numbers, stored_invoices)


def _validate_deadlines(check: _Checker, deadlines: list[Any], path: str) -> None:
    seen: set[tuple[str, date]] = set()
    for k, entry in enumerate(deadlines):
        where = f"{path}[{k}]"
        if not check.obj(entry, where, DEADLINE_KEYS):
            continue
        name = check.text(entry, "name", where, required=True, max_len=200)
        due = check.day(entry, "due", where, required=True)
        check.text(entry, "kind", where, required=False, max_len=30)
        check.text(entry, "location", where, required=False, max_len=300, nullable=True)
        if name is not None and due is not None:
            if (name, due) in seen:
                check.add(where, f"duplicate deadline {name!r} on {due.isoformat()}")
            seen.add((name, due))


def _validate_checklist(check: _Checker, items: list[Any], path: str, matter_type: str | None) -> None:
    template = set(_template_keys(matter_type)) if matter_type is not None else None
    seen: set[str] = set()
    for k, entry in enumerate(items):
        where = f"{path}[{k}]"
        if not check.obj(entry, where, CHECKLIST_KEYS):
            continue
        key = check.text(entry, "key", where, required=True, max_len=80)
        if key is not None:
            if not _ITEM_KEY.fullmatch(key):
                check.add(f"{where}.key", "must be lower_snake_case, e.g. birth_certificate")
            elif key in seen:
                check.add(f"{where}.key", f"duplicate checklist key {key!r}")
            seen.add(key)
        check.choice(entry, "status", where, CHECKLIST_STATUSES, required=True)
        if entry.get("reason") is not None and not isinstance(entry["reason"], str):
            check.add(f"{where}.reason", "must be a string")
        label = entry.get("label")
        if label is not None:
            if check.obj(label, f"{where}.label", frozenset(LANGUAGES)):
                for lang in LANGUAGES:
                    text = label.get(lang)
                    if not isinstance(text, str) or not text.strip():
                        check.add(f"{where}.label.{lang}", "is required (a non-empty string)")
        elif key is not None and template is not None and key not in template:
            check.add(f"{where}.label", f"is required: {key!r} is not in the {matter_type} template")


def _validate_invoice(check: _Checker, entry: object, path: str, matter_ext: str | None,
                      numbers: dict[str, str], stored: dict[str, Invoice]) -> None:
    if not check.obj(entry, path, INVOICE_KEYS):
        return
    assert isinstance(entry, dict)
    number = check.text(entry, "number", path, required=True, max_len=50)
    existing = None
    if number is not None:
        if number in numbers:
            check.add(f"{path}.number", f"duplicate invoice number {number!r} (also {numbers[number]})")
        else:
            numbers[number] = path
        existing = stored.get(number)
        if existing is not None and matter_ext is not None and existing.matter.external_id != matter_ext:
            check.add(f"{path}.number", f"invoice {number!r} is stored under another matter")
            existing = None
    account = check.choice(entry, "account", path, INVOICE_ACCOUNTS, required=True)
    if existing is not None and account is not None and account != existing.account and existing.payments:
        check.add(f"{path}.account", "cannot change once payments are recorded (trust and operating never mix)")
    if "currency" in entry and (not isinstance(entry["currency"], str) or not _CURRENCY.fullmatch(entry["currency"])):
        check.add(f"{path}.currency", "must be 3 capital letters, e.g. USD")
    issued = check.day(entry, "issued", path, required=True)
    due = check.day(entry, "due", path, required=False, nullable=True)
    if issued is not None and due is not None and due < issued:
        check.add(f"{path}.due", "is before the issue date")
    check.choice(entry, "blocks_stage", path, STAGES, required=False, nullable=True)
    check.flag(entry, "disputed", path)
    check.flag(entry, "void", path)

    total: Decimal | None = Decimal("0.00")
    if "lines" not in entry:
        check.add(f"{path}.lines", "is required")
        total = None
    elif not isinstance(entry["lines"], list) or not entry["lines"]:
        check.add(f"{path}.lines", "must be a non-empty list")
        total = None
    else:
        for k, line in enumerate(entry["lines"]):
            where = f"{path}.lines[{k}]"
            if not check.obj(line, where, LINE_KEYS):
                total = None
                continue
            check.text(line, "description", where, required=True, max_len=500)
            amount = _amount(check, line, where)
            total = None if amount is None or total is None else total + amount
        if total is not None and total > MAX_AMOUNT:
            check.add(f"{path}.lines", "the total is too large")
            total = None

    paid: Decimal | None = Decimal("0.00")
    refs: set[str] = set()
    payments = check.items(entry.get("payments"), f"{path}.payments")
    now = utcnow()
    for k, payment in enumerate(payments):
        where = f"{path}.payments[{k}]"
        if not check.obj(payment, where, PAYMENT_KEYS):
            paid = None
            continue
        amount = _amount(check, payment, where)
        paid_at = None
        if "paid_at" not in payment:
            check.add(f"{where}.paid_at", "is required")
        else:
            paid_at = parse_instant(payment["paid_at"])
            if paid_at is None:
                check.add(f"{where}.paid_at", "must be an ISO date-time with a zone, e.g. 2026-11-15T10:00:00Z")
            elif paid_at > now:
                check.add(f"{where}.paid_at", "is in the future")
        if amount is not None and paid_at is not None and number is not None:
            ref = payment_ref(number, paid_at, amount)
            if ref in refs:
                check.add(where, "duplicate payment (same amount and time)")
            refs.add(ref)
        paid = None if amount is None or paid is None else paid + amount

    if total is not None and paid is not None:
        # Ledger entries stored from other sources (a card payment) stay; they count too.
        elsewhere = Decimal("0.00")
        if existing is not None:
            elsewhere = sum((p.amount for p in existing.payments
                             if not (p.source == PAYMENT_SOURCE and p.source_ref in refs)), Decimal("0.00"))
        if paid + elsewhere > total:
            detail = f" with {elsewhere} already recorded" if elsewhere else ""
            check.add(f"{path}.payments", f"payments {paid + elsewhere}{detail} exceed the invoice total {total}")


def _amount(check: _Checker, entry: dict, where: str) -> Decimal | None:
    if "amount" not in entry:
        check.add(f"{where}.amount", "is required")
        return None
    amount, reason = parse_amount(entry["amount"])
    if reason is not None:
        check.add(f"{where}.amount", reason)
    return amount


# --------------------------------------------------------------------------------------------
# apply


class _Tally:
    def __init__(self) -> None:
        self.created = dict.fromkeys(COUNTED, 0)
        self.updated = dict.fromkeys(COUNTED, 0)

    def new(self, kind: str) -> None:
        self.created[kind] += 1

    def touched(self, kind: str, changed: bool) -> None:
        if changed:
            self.updated[kind] += 1


def _assign(obj: object, values: Mapping[str, Any]) -> bool:
    """Sets each attribute that differs; True when any did (equal values are left untouched,
    so an unchanged row is never written and its updated_at never moves)."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _present(entry: Mapping[str, Any], mapping: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """The model values for the file keys that are present: file key → (attribute, converter)."""
    values: dict[str, Any] = {}
    for key, (attr, convert) in mapping.items():
        if key in entry:
            raw = entry[key]
            values[attr] = None if raw is None else convert(raw)
    return values


def _same(value: Any) -> Any:
    return value


CLIENT_FIELDS: dict[str, tuple[str, Any]] = {
    "first_name": ("first_name", str.strip),
    "last_name": ("last_name", str.strip),
    "date_of_birth": ("date_of_birth", parse_date),
    "email": ("email", str.strip),
    "preferred_language": ("preferred_language", _same),
    "timezone": ("timezone", _same),
    "fields": ("fields", _same),
}
MATTER_FIELDS: dict[str, tuple[str, Any]] = {
    "type": ("type", _same),
    "stage": ("stage", _same),
    "receipt_number": ("receipt_number", normalize_receipt),
}


def apply(session: Session, data: dict) -> ImportResult:
    """Upserts a validated file in the caller's transaction (never commits); one audit event when anything changed."""
    tally = _Tally()
    now = utcnow()
    clients_in = data.get("clients") or []
    matters_in = data.get("matters") or []

    wanted = sorted({c["external_id"] for c in clients_in} | {m["client"] for m in matters_in})
    clients: dict[str, Client] = {}
    for chunk in _chunks(wanted):
        stmt = select(Client).where(Client.external_id.in_(chunk)).options(selectinload(Client.contact_points))
        clients.update({c.external_id: c for c in session.scalars(stmt)})

    for entry in clients_in:
        _apply_client(session, entry, clients, tally, now)

    matter_ids = sorted({m["external_id"] for m in matters_in})
    matters: dict[str, Matter] = {}
    for chunk in _chunks(matter_ids):
        stmt = (select(Matter).where(Matter.external_id.in_(chunk))
                .options(selectinload(Matter.checklist), selectinload(Matter.deadlines)))
        matters.update({m.external_id: m for m in session.scalars(stmt)})
    numbers = sorted({inv["number"] for m in matters_in for inv in m.get("invoices") or []})
    invoices = _stored_invoices(session, numbers)

    for entry in matters_in:
        matter = _apply_matter(session, entry, clients, matters, tally, now)
        for inv in entry.get("invoices") or []:
            _apply_invoice(session, inv, matter, invoices, tally)

    session.flush()
    result = ImportResult(tally.created, tally.updated, tuple(warnings_for(data)))
    if result.changed:
        audit.record(session, "import", "import_applied", "import", result.counts())
    return result


def _apply_client(session: Session, entry: dict, clients: dict[str, Client], tally: _Tally, now: datetime) -> None:
    values = _present(entry, CLIENT_FIELDS)
    client = clients.get(entry["external_id"])
    if client is None:
        client = Client(external_id=entry["external_id"], **values)
        session.add(client)
        clients[client.external_id] = client
        tally.new("clients")
    else:
        tally.touched("clients", _assign(client, values))

    phone = normalize_phone(entry["phone"]) if entry.get("phone") is not None else None
    if phone is None:
        return
    phones = [cp for cp in client.contact_points if cp.kind == "phone"]
    current = next((cp for cp in phones if cp.address == phone), None)
    if current is None:
        # A new number from the firm's records: consented (the firm collected it) and preferred.
        # Older numbers stay (conversations point at them) but are no longer preferred.
        for cp in phones:
            if _assign(cp, {"preferred": False}):
                tally.touched("contact_points", True)
        client.contact_points.append(
            ContactPoint(kind="phone", address=phone, consent=True, consent_at=now, preferred=True))
        tally.new("contact_points")


def _apply_matter(session: Session, entry: dict, clients: dict[str, Client], matters: dict[str, Matter],
                  tally: _Tally, now: datetime) -> Matter:
    values = _present(entry, MATTER_FIELDS)
    matter = matters.get(entry["external_id"])
    if matter is None:
        matter = Matter(external_id=entry["external_id"], client=clients[entry["client"]], stage_changed_at=now, **values)
        session.add(matter)
        matters[matter.external_id] = matter
        tally.new("matters")
    else:
        stage_before = matter.stage
        changed = _assign(matter, values)
        if matter.stage != stage_before:
            matter.stage_changed_at = now
        tally.touched("matters", changed)

    for entry_deadline in entry.get("deadlines") or []:
        _apply_deadline(matter, entry_deadline, tally)

    if "checklist" in entry and entry["checklist"] is not None:
        by_key = {item.key: item for item in matter.checklist}
        for position, item_in in enumerate(entry["checklist"]):
            wanted = {"position": position, "status": item_in["status"], "reason": item_in.get("reason"),
                      "label": item_in.get("label")}
            item = by_key.get(item_in["key"])
            if item is None:
                matter.checklist.append(ChecklistItem(key=item_in["key"], **wanted))
                tally.new("checklist_items")
            else:
                tally.touched("checklist_items", _assign(item, wanted))
    elif not matter.checklist:
        for position, key in enumerate(_template_keys(matter.type)):
            matter.checklist.append(ChecklistItem(key=key, position=position, status="required"))
            tally.new("checklist_items")
    return matter


def _apply_deadline(matter: Matter, entry: dict, tally: _Tally) -> None:
    due = parse_date(entry["due"])
    values = {attr: entry[key] for key, attr in (("kind", "kind"), ("location", "location")) if key in entry}
    found = next((d for d in matter.deadlines if d.name == entry["name"] and d.due == due), None)
    if found is None:
        matter.deadlines.append(Deadline(name=entry["name"], due=due, **values))
        tally.new("deadlines")
    else:
        tally.touched("deadlines", _assign(found, values))


def _apply_invoice(session: Session, entry: dict, matter: Matter, invoices: dict[str, Invoice], tally: _Tally) -> None:
    lines = [{"description": line["description"], "amount": str(parse_amount(line["amount"])[0])}
             for line in entry["lines"]]
    values: dict[str, Any] = {
        "account": entry["account"],
        "issued": parse_date(entry["issued"]),
        "lines": lines,
        "total": invoice_total(lines),
    }
    if "currency" in entry:
        values["currency"] = entry["currency"]
    if "due" in entry:
        values["due"] = parse_date(entry["due"]) if entry["due"] is not None else None
    if "blocks_stage" in entry:
        values["blocks_stage"] = entry["blocks_stage"]

    inv = invoices.get(entry["number"])
    created = inv is None
    if created:
        values.setdefault("currency", "USD")  # set now: the payments below copy it before any flush
        inv = Invoice(number=entry["number"], matter=matter, version=1, status="unpaid", **values)
        session.add(inv)
        invoices[inv.number] = inv
        changed = False
    else:
        before = (inv.lines, inv.total)
        changed = _assign(inv, values)
        if (inv.lines, inv.total) != before:
            inv.version = (inv.version or 1) + 1

    known = {p.source_ref for p in inv.payments if p.source == PAYMENT_SOURCE}
    for payment in entry.get("payments") or []:
        amount = parse_amount(payment["amount"])[0]
        paid_at = parse_instant(payment["paid_at"])
        ref = payment_ref(inv.number, paid_at, amount)
        if ref in known:
            continue
        inv.payments.append(Payment(amount=amount, currency=inv.currency, kind="payment", source=PAYMENT_SOURCE,
                                    source_ref=ref, paid_at=paid_at))
        known.add(ref)
        tally.new("payments")

    void = entry["void"] if "void" in entry else inv.status == "void"
    is_disputed = entry["disputed"] if "disputed" in entry else inv.status == "disputed"
    status = "void" if void else "disputed" if is_disputed else status_from_payments(inv)
    changed = _assign(inv, {"status": status}) or changed
    if created:
        tally.new("invoices")
    else:
        tally.touched("invoices", changed)


# --------------------------------------------------------------------------------------------
# the file


def load_json(path: str | Path) -> tuple[object, list[Problem]]:
    """The parsed file and [], or None and one Problem at "$" (with line and column for a syntax error)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        return None, [Problem("$", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [Problem("$", "the file is not UTF-8 text")]
    try:
        return json.loads(text, parse_constant=_refuse_constant), []
    except json.JSONDecodeError as exc:
        return None, [Problem("$", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    except ValueError as exc:
        return None, [Problem("$", str(exc))]


def _refuse_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"invalid JSON: {name} is not a JSON value")


def import_file(session: Session, path: str | Path) -> ImportResult | list[Problem]:
    """Reads, validates (against the database too) and applies a file; the problems when it is refused."""
    data, problems = load_json(path)
    if problems:
        return problems
    problems = validate(data, session)
    if problems:
        return problems
    assert isinstance(data, dict)
    return apply(session, data)
