"""KPIs on a seeded history whose expected values are worked out by hand below (see each comment)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from services import kpis
from services.charts import line_chart
from services.db import make_engine, make_sessionmaker
from services.models import (ChecklistItem, Client, Conversation, Handoff, Invoice, Matter, Message, OutgoingEvent,
                             Payment)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def history(settings):
    """Two clients: A with an I-130 (created 1 Oct), B with an N-400 (created 10 Oct)."""
    engine = make_engine(settings.database_url)
    Session = make_sessionmaker(engine)
    n = iter(range(1, 1000))
    with Session.begin() as s:
        a = Client(external_id="CL-A", first_name="A", last_name="A", date_of_birth=date(1980, 1, 1))
        b = Client(external_id="CL-B", first_name="B", last_name="B", date_of_birth=date(1981, 1, 1))
        s.add_all([a, b])
        s.flush()
        m1 = Matter(external_id="M1", client_id=a.id, type="I-130", stage="collecting_evidence", created_at=at(10, 1))
        m2 = Matter(external_id="M2", client_id=b.id, type="N-400", stage="collecting_evidence", created_at=at(10, 10))
        s.add_all([m1, m2])
        s.flush()
        s.add_all([ChecklistItem(matter_id=m1.id, key="birth_certificate", status="accepted", position=0),
                   ChecklistItem(matter_id=m1.id, key="marriage_certificate", status="accepted", position=1),
                   ChecklistItem(matter_id=m2.id, key="green_card", status="required", position=0)])
        ca = Conversation(channel="sms", address="+15555550901", client_id=a.id, matter_id=m1.id)
        cb = Conversation(channel="whatsapp", address="+15555550902", client_id=b.id, matter_id=m2.id)
        s.add_all([ca, cb])
        s.flush()

        def event(kind, when, matter=None, client=None, **data):
            s.add(OutgoingEvent(event_id=f"evt_{next(n)}", event=kind, matter_id=matter.id if matter else None,
                                client_id=client.id if client else (matter.client_id if matter else None),
                                data=data, created_at=when))

        def inbound(conv, matter, when, intent, dialog):
            msg = Message(conversation_id=conv.id, direction="in", channel=conv.channel, provider_id=f"p{next(n)}",
                          body="…", state="processed", intent=intent, dialog=dialog, received_at=when, processed_at=when)
            s.add(msg)
            s.flush()
            event("message_received", when, matter, message_id=msg.id, channel=conv.channel)

        inbound(ca, m1, at(10, 2), "status", "status")        # 1: a question answered by the bot
        inbound(ca, m1, at(10, 3), "handoff", "handoff")      # 2: asked for a person
        inbound(ca, m1, at(11, 5), "balance", "balance")      # 3: answered by the bot
        inbound(ca, m1, at(11, 6), "unknown", "verify")       # 4: a verification turn, not a question
        inbound(cb, m2, at(10, 12), "status", "status")       # 5: answered by the bot
        inbound(cb, m2, at(10, 20), "documents", "handoff")   # 6: sent while staff held the thread

        s.add_all([Handoff(conversation_id=ca.id, matter_id=m1.id, reason="asked_for_person", created_at=at(10, 3, 10),
                           first_reply_at=at(10, 3, 10, 30)),                           # 30 minutes
                   Handoff(conversation_id=cb.id, matter_id=m2.id, reason="asked_for_person", created_at=at(10, 20, 9),
                           first_reply_at=at(10, 20, 11)),                              # 120 minutes
                   Handoff(conversation_id=ca.id, matter_id=m1.id, reason="not_understood", created_at=at(11, 7, 12))])

        event("document_uploaded", at(10, 4), m1, item="birth_certificate")        # 3 days after the matter opened
        event("document_reviewed", at(10, 5), m1, item="birth_certificate", status="rejected")
        event("document_uploaded", at(10, 6), m1, item="marriage_certificate")     # 5 days
        event("document_reviewed", at(10, 7), m1, item="marriage_certificate", status="accepted")  # 1 day after upload
        event("document_uploaded", at(10, 8), m1, item="birth_certificate")        # a second copy: the first upload counts
        event("document_reviewed", at(10, 9), m1, item="birth_certificate", status="accepted")     # 5 days after upload

        i1 = Invoice(number="I1", matter_id=m1.id, account="operating", status="paid", issued=date(2026, 10, 1), total=Decimal("300"))
        i2 = Invoice(number="I2", matter_id=m2.id, account="trust", status="paid", issued=date(2026, 10, 15), total=Decimal("100"))
        i3 = Invoice(number="I3", matter_id=m2.id, account="operating", status="unpaid", issued=date(2026, 10, 15), total=Decimal("50"))
        s.add_all([i1, i2, i3])
        s.flush()
        s.add_all([Payment(invoice_id=i1.id, amount=Decimal("100"), source="import", source_ref="a", paid_at=at(10, 11, 10)),
                   Payment(invoice_id=i1.id, amount=Decimal("200"), source="import", source_ref="b", paid_at=at(10, 21, 10)),  # 20 days
                   Payment(invoice_id=i2.id, amount=Decimal("100"), source="import", source_ref="c", paid_at=at(11, 14, 9))])  # 30 days

        event("contact_opted_out", at(11, 8), client=a, channel="sms")
        event("contact_opted_out", at(11, 9), client=b, channel="whatsapp")
        event("contact_opted_out", at(12, 1), channel="sms")  # an unverified number
    with Session() as session:
        yield session
    engine.dispose()


def test_every_kpi_over_the_whole_history(history):
    k = kpis.compute(history)["kpis"]
    # 6 message_received events over 2 matters; October 4 over 2, November 2 over 1.
    assert k["inbound_messages_per_matter"]["total"] == 3.0
    assert [(p["month"], p["value"]) for p in k["inbound_messages_per_matter"]["series"]] == [("2026-10", 2.0), ("2026-11", 2.0)]
    # Questions 1, 2, 3, 5, 6 (4 is verification); 2 and 6 went to staff: 3/5. October 2/4, November 1/1.
    assert k["containment"]["total"] == 0.6
    assert [(p["month"], p["value"]) for p in k["containment"]["series"]] == [("2026-10", 0.5), ("2026-11", 1.0)]
    assert k["handoffs"]["total"] == 3
    assert [(p["month"], p["value"]) for p in k["handoffs"]["series"]] == [("2026-10", 2), ("2026-11", 1)]
    assert k["time_to_first_staff_reply"]["total"] == 75.0  # (30 + 120) / 2, the third has no reply yet
    turnaround = k["document_turnaround"]
    assert turnaround["by_item"] == {"birth_certificate": {"to_received": 3.0, "to_accepted": 5.0, "count": 1},
                                     "marriage_certificate": {"to_received": 5.0, "to_accepted": 1.0, "count": 1}}
    assert turnaround["total"] == 7.0  # requested → accepted: 8 and 6 days
    assert k["first_pass_acceptance"]["total"] == 0.5  # birth certificate rejected first, marriage accepted first
    assert k["days_to_payment"]["total"] == 25.0  # I1: 1 Oct → 21 Oct (20), I2: 15 Oct → 14 Nov (30); I3 unpaid
    assert [(p["month"], p["value"]) for p in k["days_to_payment"]["series"]] == [("2026-10", 20.0), ("2026-11", 30.0)]
    assert k["intake_time"]["total"] == 5.0  # M1: opened 1 Oct, last first upload 6 Oct; M2 still open
    assert k["opt_outs"]["total"] == 3 and k["opt_outs"]["by_channel"] == {"sms": 2, "whatsapp": 1}


def test_date_range_and_matter_type_filters(history):
    november = kpis.compute(history, start=date(2026, 11, 1), end=date(2026, 11, 30))["kpis"]
    assert november["inbound_messages_per_matter"]["total"] == 2.0 and november["handoffs"]["total"] == 1
    assert november["days_to_payment"]["total"] == 30.0 and november["document_turnaround"]["total"] is None
    assert november["opt_outs"]["by_channel"] == {"sms": 1, "whatsapp": 1}

    i130 = kpis.compute(history, matter_type="I-130")["kpis"]
    assert i130["inbound_messages_per_matter"]["total"] == 4.0
    assert i130["containment"]["total"] == round(2 / 3, 4)  # questions 1, 2, 3; 2 went to staff
    assert i130["handoffs"]["total"] == 2 and i130["time_to_first_staff_reply"]["total"] == 30.0
    assert i130["days_to_payment"]["total"] == 20.0 and i130["opt_outs"]["total"] == 1


def test_csv_rows_and_charts(history):
    report = kpis.compute(history)
    rows = list(kpis.rows(report))
    assert ("days_to_payment", "all", "", 25.0, 2) in rows and ("days_to_payment", "2026-11", "", 30.0, 1) in rows
    assert ("opt_outs", "all", "whatsapp", 1, 1) in rows
    svgs = kpis.charts(report)
    assert set(svgs) == set(report["kpis"]) and all(svg.startswith("<svg") for svg in svgs.values())
    assert "<polyline" in svgs["days_to_payment"] and "2026-10" in svgs["days_to_payment"]
    assert "&lt;script&gt;" in line_chart([("<script>", 1.0)], title="x")
    assert "no data" in line_chart([], title="empty")
