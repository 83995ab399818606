"""Outgoing webhook deliveries: measured, not asserted.

With one worker (the in-process runtime: 1 job thread on SQLite, 4 on PostgreSQL) and a local
receiver (a threaded HTTP server on 127.0.0.1, tests/fakes/webhook_receiver.py), it prints:
  1. deliveries per second for --events events to a receiver that answers 200 at once;
  2. a receiver outage: --backlog events (default 10,000) recorded while it answers 503 (the first
     attempts, and the 5 s retries of those that come due meanwhile, all fail); then the receiver
     comes back, and the time to drain the whole backlog once the retries are due (the runtime's
     clock is moved on to the last retry's due time rather than sleeping through the schedule).

    python bench/webhooks.py [--events 2000] [--backlog 10000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/auto]

With --pg the database's public schema is dropped and rebuilt; without it a temporary SQLite file is used.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bot.runtime import build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from services import events, importer, webhooks  # noqa: E402
from services.db import utcnow  # noqa: E402
from services.migrate import upgrade  # noqa: E402
from services.models import Matter, WebhookDelivery  # noqa: E402
from tests.conftest import _reset_postgres as reset_postgres  # noqa: E402
from tests.fakes.webhook_receiver import WebhookReceiver  # noqa: E402

SEED = {"clients": [{"external_id": "CL-B1", "first_name": "Bench", "last_name": "Client", "date_of_birth": "1990-01-01",
                     "phone": "+15555550999", "preferred_language": "es"}],
        "matters": [{"external_id": "MAT-B1", "client": "CL-B1", "type": "I-130", "stage": "collecting_evidence"}]}


def _record(runtime, count: int) -> None:
    with runtime.Session.begin() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == "MAT-B1"))
        for i in range(count):
            events.record(session, "document_uploaded", matter=matter, now=runtime.engine.clock(),
                          data={"document_id": i, "item": "birth_certificate", "status": "received"})


def _left(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.state != "delivered"))


def _drain(runtime) -> float:
    """Dispatches due deliveries until none is left undelivered; returns the seconds it took."""
    started = time.perf_counter()
    while _left(runtime):
        if not runtime.dispatch_webhooks():
            time.sleep(0.01)
        runtime.queue.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--pg", help="a PostgreSQL URL (its public schema is rebuilt)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="puente-bench-webhooks-"))
    url = args.pg or f"sqlite:///{tmp / 'bench.db'}"
    if args.pg:
        reset_postgres(url)  # the same reset the test suite does
    upgrade(url)
    settings = Settings.from_env({"DATABASE_URL": url, "PUENTE_STORAGE_DIR": str(tmp / "storage")}, load_dotenv=False)
    runtime = build_runtime(settings, in_process=True)
    offset = timedelta(0)
    runtime.engine.clock = lambda: utcnow() + offset
    with runtime.Session.begin() as session:
        importer.apply(session, SEED)
    threads = 1 if settings.is_sqlite else 4
    print(f"database: {'PostgreSQL' if args.pg else 'SQLite'}; one worker with {threads} job thread(s)")

    with WebhookReceiver() as receiver:
        with runtime.Session.begin() as session:
            webhooks.add_endpoint(session, receiver.url, ["*"], allow_private=True, now=utcnow())
        _record(runtime, args.events)
        seconds = _drain(runtime)
        print(f"throughput: {args.events} deliveries in {seconds:.2f} s = {args.events / seconds:.0f} deliveries/s "
              f"(received {len(receiver.requests)})")

        receiver.requests.clear()
        receiver.default = 503  # the receiver is down
        _record(runtime, args.backlog)
        started = time.perf_counter()
        while runtime.dispatch_webhooks():
            runtime.queue.join()
        failing = time.perf_counter() - started
        print(f"outage: {args.backlog} events recorded; first attempts all failed (503) in {failing:.2f} s")
        receiver.default = 200  # back up
        with runtime.Session() as session:  # move the clock to when the last retry comes due (no sleeping)
            last = session.scalar(select(func.max(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.state == "pending"))
        offset += max(last - runtime.engine.clock(), timedelta(0)) + timedelta(seconds=1)
        seconds = _drain(runtime)
        print(f"recovery: backlog of {args.backlog} drained in {seconds:.2f} s after the retries came due "
              f"= {args.backlog / seconds:.0f} deliveries/s; every event id delivered once: "
              f"{len({r.headers['Puente-Event-Id'] for r in receiver.requests if 'Puente-Event-Id' in r.headers}) >= args.backlog}")
    runtime.close()


if __name__ == "__main__":
    main()
