"""Engine throughput and latency: accept → process → outbox (→ send), measured, not asserted.

Runs the same scripted conversations (verification, then status/balance/checklist questions,
in Spanish and English) three ways and prints messages/s and p50/p95 per message:
  1. in process on SQLite, 2. in process on PostgreSQL (if reachable), 3. Redis + one `puente worker`.

    python bench/engine.py [--conversations 60] [--pg URL] [--redis URL]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text  # noqa: E402

from bot.messages import Inbound  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from services.importer import apply, validate  # noqa: E402
from services.migrate import upgrade  # noqa: E402
from services.models import Message  # noqa: E402

SCRIPT_ES = ["hola", "{dob}", "cuánto debo?", "qué documentos me faltan", "cómo va mi caso", "cuándo es mi cita", "gracias"]
SCRIPT_EN = ["hi", "{dob}", "what do I owe?", "what documents are missing", "case status", "when is my appointment", "thanks"]


def synthetic_clients(n: int) -> dict:
    clients, matters = [], []
    for i in range(n):
        dob = date(1960, 1, 1) + timedelta(days=97 * i)
        lang = "es" if i % 3 else "en"
        clients.append({"external_id": f"B-{i}", "first_name": f"Cliente{i}", "last_name": "Prueba",
                        "date_of_birth": dob.isoformat(), "phone": f"+1555556{i:04d}", "preferred_language": lang})
        matters.append({"external_id": f"BM-{i}", "client": f"B-{i}", "type": "I-130", "stage": "collecting_evidence",
                        "deadlines": [{"name": "Biometrics", "due": "2027-03-01"}],
                        "invoices": [{"number": f"BINV-{i}", "account": "operating", "currency": "USD",
                                      "issued": "2026-11-01", "lines": [{"description": "Fees", "amount": "1500.00"}],
                                      "payments": [{"amount": "500.00", "paid_at": "2026-11-10T10:00:00Z"}]}]})
    return {"clients": clients, "matters": matters}


def conversations(data: dict) -> list[tuple[str, list[str]]]:
    out = []
    for c in data["clients"]:
        script = SCRIPT_ES if c["preferred_language"] == "es" else SCRIPT_EN
        dob = date.fromisoformat(c["date_of_birth"]).strftime("%d/%m/%Y" if c["preferred_language"] == "es" else "%m/%d/%Y")
        out.append((c["phone"], [line.format(dob=dob) for line in script]))
    return out


def prepare(url: str, n: int) -> tuple[Settings, dict]:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    settings = Settings.from_env(environ={"DATABASE_URL": url}, load_dotenv=False)
    data = synthetic_clients(n)
    assert not validate(data)
    runtime = build_runtime(settings, in_process=True)
    with runtime.Session.begin() as s:
        apply(s, data)
    runtime.close()
    return settings, data


def interleaved(convs):
    """Round-robin over conversations: message k of every conversation, then k+1 (as real traffic mixes)."""
    for k in range(max(len(lines) for _, lines in convs)):
        for address, lines in convs:
            if k < len(lines):
                yield address, lines[k]


def report(name: str, latencies: list[float], to_outbox: float, to_sent: float) -> None:
    q = statistics.quantiles(latencies, n=100)
    n = len(latencies)
    print(f"{name:<30} {n:>5} msgs  to outbox {n / to_outbox:7.1f} msg/s  (replies sent: {n / to_sent:6.1f} msg/s)   "
          f"p50 {q[49] * 1000:8.2f} ms   p95 {q[94] * 1000:8.2f} ms")


def _drain_and_report(runtime, name: str, producer) -> None:
    """Feeds every message through accept, waits until all are processed and sent, reports.

    Two throughputs: up to the outbox (the last inbound message processed, its replies written:
    the engine's own figure) and up to the last reply sent through the channel.
    """
    started_at = datetime.now(timezone.utc)
    start = time.perf_counter()
    producer()
    while True:
        runtime.queue.join()
        with runtime.Session() as s:
            left = s.scalar(select(Message.id).where(Message.direction == "in", Message.state == "received").limit(1))
            unsent = s.scalar(select(Message.id).where(Message.direction == "out", Message.state.in_(("pending", "sending"))).limit(1))
        if left is None and unsent is None:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    with runtime.Session() as s:
        rows = s.execute(select(Message.received_at, Message.processed_at).where(Message.direction == "in")).all()
    to_outbox = (max(p for _, p in rows) - started_at).total_seconds()
    report(name, [(p - r).total_seconds() for r, p in rows], to_outbox, elapsed)


def run_in_process(url: str, n: int, name: str) -> None:
    settings, data = prepare(url, n)
    runtime = build_runtime(settings, in_process=True)

    def produce():
        for i, (address, line) in enumerate(interleaved(conversations(data))):
            runtime.accept(Inbound("sms", address, f"B{i}", text=line))

    _drain_and_report(runtime, name, produce)
    # Unloaded latency: one message at a time, each waited for (accept → outbox → sent).
    one_by_one = []
    for i, (address, line) in enumerate(list(interleaved(conversations(data)))[:140]):
        t0 = time.perf_counter()
        runtime.accept(Inbound("sms", address, f"S{i}", text=line))
        runtime.queue.join()
        one_by_one.append(time.perf_counter() - t0)
    q = statistics.quantiles(one_by_one, n=100)
    print(f"{'':<30} one at a time: p50 {q[49] * 1000:.2f} ms   p95 {q[94] * 1000:.2f} ms per message (to sent)")
    runtime.close()


def run_redis(url: str, redis_url: str, n: int, name: str) -> None:
    from redis import Redis

    settings, data = prepare(url, n)
    settings = settings.with_(redis_url=redis_url)
    Redis.from_url(redis_url).flushdb()
    runtime = build_runtime(settings)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "puente"), "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)  # worker start-up is not part of the figure

    def produce():
        for i, (address, line) in enumerate(interleaved(conversations(data))):
            runtime.accept(Inbound("sms", address, f"R{i}", text=line))

    _drain_and_report(runtime, name, produce)
    worker.terminate()
    try:
        worker.wait(10)
    except subprocess.TimeoutExpired:  # rq's warm shutdown can wait on its pub/sub thread; not part of the figure
        worker.kill()
        worker.wait(10)
    Redis.from_url(redis_url).flushdb()
    runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=60)
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    n = args.conversations
    print(f"{n} conversations x {len(SCRIPT_ES)} messages, interleaved; latency = accepted → processed; throughput until all replies are sent")
    with tempfile.TemporaryDirectory() as tmp:
        run_in_process(f"sqlite:///{tmp}/bench.db", n, "in process, SQLite")
    try:
        run_in_process(args.pg, n, "in process, PostgreSQL")
        run_redis(args.pg, args.redis, n, "Redis + 1 worker, PostgreSQL")
    except Exception as exc:  # a missing server is reported, not hidden
        print(f"PostgreSQL/Redis runs skipped: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
