"""Outgoing webhooks through their doors: events written by the product, the runtime's delivery
pass and jobs, the `puente webhooks` commands, and a real HTTP receiver on 127.0.0.1."""
from __future__ import annotations

import ipaddress
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from services import webhooks
from services.matters import change_stage
from services.models import AuditEvent, Matter, WebhookDelivery, WebhookEndpoint
from services.webhook_signature import puente_verify_signature
from tests.conftest import Chat
from tests.fakes.webhook_receiver import WebhookReceiver
from web.cli import cli

# The test vectors published in README.md ("Verifying a webhook").
VECTOR_SECRET = "whsec_test_secret"
VECTOR_T = 1767225600
VECTOR_BODY = b'{"event":"document_uploaded","id":"evt_0123456789abcdef01234567"}'
VECTOR_HEADER = "t=1767225600,v1=fa908f69510d3dc92639ce485a800b5d11b10b5637e3c022e717e10340aca053"


def _run(settings, args):
    env = {"DATABASE_URL": settings.database_url, "PUENTE_STORAGE_DIR": str(settings.storage_dir), "REDIS_URL": ""}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def _add(runtime, url, events=("*",), full=False, allow_private=True) -> tuple[int, str]:
    with runtime.Session.begin() as session:
        endpoint, secret = webhooks.add_endpoint(session, url, list(events), full=full, allow_private=allow_private,
                                                 now=runtime.engine.clock())
        return endpoint.id, secret


def _stage(runtime, external_id="MAT-2001", stage="attorney_review"):
    with runtime.Session.begin() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == external_id))
        change_stage(session, matter, stage, "test", runtime.engine.clock())


def _deliver(runtime) -> None:
    runtime.dispatch_webhooks()
    runtime.queue.join()


def _deliveries(runtime) -> list[WebhookDelivery]:
    with runtime.Session() as session:
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        session.expunge_all()
        return rows


def test_published_test_vector_verifies_and_tampering_does_not():
    assert puente_verify_signature(VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY, now=VECTOR_T + 10)
    assert not puente_verify_signature(VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY + b" ", now=VECTOR_T + 10)
    assert not puente_verify_signature("whsec_other", VECTOR_HEADER, VECTOR_BODY, now=VECTOR_T + 10)
    assert not puente_verify_signature(VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY, now=VECTOR_T + 301)  # too old


def test_a_stage_change_reaches_the_endpoint_signed_thin_and_with_a_stable_id(demo, settings):
    with WebhookReceiver() as rx:
        result = _run(settings, ["webhooks", "add", rx.url, "--events", "matter_stage_changed", "--allow-private"])
        assert result.exit_code == 0, result.output
        secret = next(line.split(": ", 1)[1] for line in result.output.splitlines() if line.startswith("secret: "))
        _stage(demo)
        _deliver(demo)
    assert len(rx.requests) == 1
    request = rx.requests[0]
    assert puente_verify_signature(secret, request.headers["Puente-Signature"], request.body)
    body = json.loads(request.body)
    assert body["event"] == "matter_stage_changed" and body["matter_id"] == "MAT-2001" and body["client_id"] == "CL-1001"
    assert body["id"].startswith("evt_") and request.headers["Puente-Event-Id"] == body["id"]
    assert body["data"] == {}  # thin by default: the receiver fetches details through the API
    assert [d.state for d in _deliveries(demo)] == ["delivered"]
    log = _run(settings, ["webhooks", "deliveries", "1", "--json"])
    assert json.loads(log.output.splitlines()[0])["state"] == "delivered"


def test_full_payload_only_where_the_admin_enabled_it(demo):
    with WebhookReceiver() as thin, WebhookReceiver() as full:
        _add(demo, thin.url, ["matter_stage_changed"])
        _add(demo, full.url, ["matter_stage_changed"], full=True)
        _stage(demo)
        _deliver(demo)
    assert thin.bodies()[0]["data"] == {}
    assert full.bodies()[0]["data"] == {"from": "collecting_evidence", "to": "attorney_review"}
    assert thin.bodies()[0]["id"] == full.bodies()[0]["id"]


def test_retries_keep_the_event_id_and_follow_the_schedule(demo, clock):
    with WebhookReceiver(statuses=[503, 500]) as rx:
        _add(demo, rx.url)
        _stage(demo)
        _deliver(demo)
        first = _deliveries(demo)[0]
        assert (first.state, first.attempts, first.last_status) == ("pending", 1, 503)
        wait = first.next_attempt_at - clock.now
        assert timedelta(seconds=4.5) <= wait <= timedelta(seconds=5.5)
        _deliver(demo)  # not due yet: nothing sent
        assert len(rx.requests) == 1
        clock.advance(seconds=6)
        _deliver(demo)
        second = _deliveries(demo)[0]
        assert second.attempts == 2 and timedelta(minutes=4.5) <= second.next_attempt_at - clock.now <= timedelta(minutes=5.5)
        clock.advance(minutes=6)
        _deliver(demo)
    ids = {b["id"] for b in rx.bodies()} | {r.headers["Puente-Event-Id"] for r in rx.requests}
    assert len(rx.requests) == 3 and len(ids) == 1
    assert _deliveries(demo)[0].state == "delivered"


def test_redirects_are_not_followed_and_are_not_success(demo):
    with WebhookReceiver(statuses=[302], location="http://127.0.0.1:9/elsewhere") as rx:
        _add(demo, rx.url)
        _stage(demo)
        _deliver(demo)
    delivery = _deliveries(demo)[0]
    assert len(rx.requests) == 1 and (delivery.state, delivery.last_status) == ("pending", 302)


def test_410_disables_the_endpoint(demo, clock):
    with WebhookReceiver(statuses=[410]) as rx:
        endpoint_id, _ = _add(demo, rx.url)
        _stage(demo)
        _deliver(demo)
        _stage(demo, stage="collecting_evidence")  # a later event is not even queued for it
        clock.advance(days=2)
        _deliver(demo)
    assert len(rx.requests) == 1
    with demo.Session() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.active is False and endpoint.disabled_reason == "410 Gone"
    assert [d.state for d in _deliveries(demo)] == ["gone"]


def test_a_private_address_target_is_refused(demo, settings):
    with WebhookReceiver() as rx:
        refused = _run(settings, ["webhooks", "add", rx.url, "--events", "*"])
        assert refused.exit_code != 0 and "refused target" in refused.output
        # Allowed when added, then the admin takes the permission away: checked again at delivery time.
        endpoint_id, _ = _add(demo, rx.url)
        with demo.Session.begin() as session:
            session.get(WebhookEndpoint, endpoint_id).allow_private_network = False
        _stage(demo)
        _deliver(demo)
    assert rx.requests == []
    delivery = _deliveries(demo)[0]
    assert delivery.state == "dead" and "refused target" in delivery.last_error


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "100.64.0.1",
                                     "224.0.0.1", "0.0.0.0", "::1", "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1"])
def test_the_guard_refuses_non_public_addresses(address):
    assert webhooks.forbidden(ipaddress.ip_address(address))
    with pytest.raises(webhooks.TargetRefused):
        webhooks.resolve(f"http://[{address}]/x" if ":" in address else f"http://{address}/x", allow_private=False)


def test_metadata_is_refused_even_on_a_private_network():
    with pytest.raises(webhooks.TargetRefused):
        webhooks.resolve("http://169.254.169.254/latest/meta-data/", allow_private=True)
    assert not webhooks.forbidden(ipaddress.ip_address("93.184.216.34"))


def test_a_dead_delivery_alerts_admins_and_can_be_replayed(demo, settings, clock):
    with WebhookReceiver(default=500) as rx:
        endpoint_id, _ = _add(demo, rx.url)
        _stage(demo)
        for _ in range(webhooks.MAX_ATTEMPTS):
            _deliver(demo)
            clock.advance(hours=27)  # past the longest wait: 24 h + 10% jitter
        dead = _deliveries(demo)[0]
        assert (dead.state, dead.attempts) == ("dead", webhooks.MAX_ATTEMPTS) and len(rx.requests) == webhooks.MAX_ATTEMPTS
        with demo.Session() as session:
            alert = session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_delivery_dead"))
            assert alert.subject == f"webhook_delivery:{dead.id}" and alert.details["event_id"] == dead.event_id
        rx.default = 200
        replayed = _run(settings, ["webhooks", "replay", str(dead.id)])
        assert replayed.exit_code == 0, replayed.output
        _deliver(demo)
    assert [d.state for d in _deliveries(demo)] == ["dead", "delivered"]
    assert len({b["id"] for b in rx.bodies()}) == 1  # the replay carries the same event id


def test_during_rotation_both_secrets_verify(demo, settings):
    with WebhookReceiver() as rx:
        endpoint_id, old = _add(demo, rx.url)
        rotated = _run(settings, ["webhooks", "rotate-secret", str(endpoint_id)])
        new = rotated.output.split("secret: ", 1)[1].strip()
        _stage(demo)
        _deliver(demo)
    request = rx.requests[0]
    assert request.headers["Puente-Signature"].count("v1=") == 2
    assert puente_verify_signature(new, request.headers["Puente-Signature"], request.body)
    assert puente_verify_signature(old, request.headers["Puente-Signature"], request.body)


def test_chat_events_reach_the_endpoint(demo):
    with WebhookReceiver() as rx:
        _add(demo, rx.url, ["message_received", "handoff_requested", "contact_opted_out"])
        chat = Chat(demo, address="+15555550102")
        chat.verify("04/07/1975")
        chat.say("quiero hablar con una persona")
        chat.say("STOP")
        _deliver(demo)
    events = [b["event"] for b in rx.bodies()]
    assert "message_received" in events and "handoff_requested" in events and "contact_opted_out" in events
    assert all(b["client_id"] == "CL-1003" for b in rx.bodies())
    assert all("hablar" not in r.body.decode() for r in rx.requests)  # ids and types, never the words


def test_deliveries_are_written_with_the_event_and_survive_without_a_worker(demo):
    with WebhookReceiver() as rx:
        _add(demo, rx.url)
        _stage(demo)
        pending = _deliveries(demo)
        assert [d.state for d in pending] == ["pending"] and rx.requests == []
        demo.automation()  # the relay loop's pass
        demo.queue.join()
    assert len(rx.requests) == 1
