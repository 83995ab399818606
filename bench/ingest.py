"""Webhook ingest throughput and ack latency, and webhook → reply seconds: measured, not asserted.

Drives POST /webhooks/twilio with signed requests (unique MessageSid, 200 senders of which the demo
clients are some) from a separate load-generator process against three gunicorn servers in turn,
all with the Procfile's config (`-w 2 --threads 4`, gthread), on PostgreSQL + Redis:
  1. the real app, `web:create_app()`: signature check, parse, atomic insert + commit, rq enqueue;
  2. a bare Flask endpoint answering the same TwiML (the server + framework floor);
  3. a minimal durable ingest: one Core INSERT + COMMIT + one Redis enqueue, no validation (the
     practical ceiling for a store-then-ack webhook; see bench/ingest_apps.py).
For each it prints requests/s and p50/p99 ack latency over a fixed window after a warm-up. Then,
with the real app and one `puente worker`, it sends --messages webhooks at --rate per second and
prints the seconds from each POST to its reply arriving at the fake Twilio (tests/fakes/twilio.py).

    python bench/ingest.py [--seconds 10] [--concurrency 16] [--messages 100] [--rate 20]
                           [--pg URL] [--redis URL] [--minimal-enqueue lpush|rq]

The PostgreSQL database (default `bench`) has its public schema dropped and rebuilt; the Redis
database (default 14) is flushed. Everything listens on and talks to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.twilio import inbound_form, sign  # noqa: E402

BIN = Path(sys.executable).parent
PATH = "/webhooks/twilio"
FIRM_NUMBER = "+15555550100"
DEMO_NUMBERS = ["+15555550101", "+15555550102", "+15555550103", "+15555550104"]
BODIES = ["hola", "cuánto debo?", "qué documentos me faltan", "cómo va mi caso", "hi", "what do I owe?",
          "when is my appointment", "case status", "gracias", "necesito hablar con mi abogado"]
WORKERS, THREADS = 2, 4  # the Procfile's web process
SETTINGS_ENV = ("DATABASE_URL", "REDIS_URL", "PUENTE_SECRET_KEY", "PUENTE_ENCRYPTION_KEY", "PUENTE_STORAGE_DIR",
                "PUBLIC_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SMS_FROM", "TWILIO_WHATSAPP_FROM",
                "TWILIO_API_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_API_URL", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "OPENAI_MODEL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_URL",
                "CLAMD_ADDRESS", "PUENTE_ENV")
MAX_REQUESTS_PER_THREAD = 500_000
MAX_ERRORS_PER_THREAD = 2_000


# --------------------------------------------------------------------------- the load generator (its own process)

def senders(n: int = 200) -> list[str]:
    """`n` distinct sender numbers, the demo clients among them."""
    return DEMO_NUMBERS + [f"+1555700{i:04d}" for i in range(n - len(DEMO_NUMBERS))]


def percentile(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def client_main(cfg: dict) -> None:
    """Keeps `concurrency` keep-alive connections busy for warm-up + seconds; prints one JSON line.

    Requests completing inside the measured window count; a thread starts no request after it."""
    host, port, token, account_sid = cfg["host"], cfg["port"], cfg["token"], cfg["account_sid"]
    url = cfg["signed_url"]
    numbers = senders(cfg["senders"])
    tag = secrets.token_hex(4)  # 8 hex digits: SIDs unique across runs too
    start = time.perf_counter()
    measure_from, end = start + cfg["warmup"], start + cfg["warmup"] + cfg["seconds"]
    results: list[list] = []
    lock = threading.Lock()

    def run(tid: int) -> None:
        latencies, statuses, errors, acked = [], {}, 0, 0
        conn = http.client.HTTPConnection(host, port, timeout=10)
        for seq in range(MAX_REQUESTS_PER_THREAD):
            if time.perf_counter() >= end or errors >= MAX_ERRORS_PER_THREAD:
                break
            sid = f"SM{tag}{tid:04x}{seq:020x}"
            sender = numbers[(seq * cfg["concurrency"] + tid) % len(numbers)]
            form = inbound_form(sender, FIRM_NUMBER, BODIES[(seq + tid) % len(BODIES)], sid=sid, account_sid=account_sid)
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sign(token, url, form)}
            data = urlencode(form)
            t0 = time.perf_counter()
            try:
                conn.request("POST", PATH, body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = str(resp.status)
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            t1 = time.perf_counter()
            if status == "200":
                acked += 1
            else:
                errors += 1
                time.sleep(0.01)
            if measure_from <= t1 <= end:
                statuses[status] = statuses.get(status, 0) + 1
                if status == "200":
                    latencies.append(t1 - t0)
        conn.close()
        with lock:
            results.append([latencies, statuses, acked])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(cfg["concurrency"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(cfg["warmup"] + cfg["seconds"] + 30)
    latencies = sorted(x for lat, _, _ in results for x in lat)
    statuses: dict[str, int] = {}
    for _, st, _ in results:
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
    cpu = os.times()
    print(json.dumps({"errors": {k: v for k, v in statuses.items() if k != "200"}, "window": cfg["seconds"],
                      "latencies": [round(x, 6) for x in latencies], "threads_done": len(results),
                      "acked_total": sum(a for _, _, a in results),
                      "client_cpu": (cpu.user + cpu.system) / (time.perf_counter() - start)}))


def summarize(runs: list[dict]) -> dict:
    """Pools the rounds of one server: requests/s over all windows, percentiles over all latencies."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    window = sum(r["window"] for r in runs)
    return {"ok": len(latencies), "rps": len(latencies) / window if window else 0.0, "errors": errors,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else float("nan"), "acked_total": sum(r["acked_total"] for r in runs),
            "durable": all(r.get("durable", True) for r in runs), "client_cpu": max(r["client_cpu"] for r in runs)}


def load(port: int, fake, args) -> dict:
    """Runs the load generator in a separate process against 127.0.0.1:port."""
    cfg = {"host": "127.0.0.1", "port": port, "signed_url": f"http://127.0.0.1:{port}{PATH}", "token": fake.auth_token,
           "account_sid": fake.account_sid, "seconds": args.seconds, "warmup": args.warmup,
           "concurrency": args.concurrency, "senders": args.senders}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_client", json.dumps(cfg)], cwd=ROOT,
                          capture_output=True, text=True, timeout=args.warmup + args.seconds + 60)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"load generator failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- servers, database, queue

def guard(pg: str, redis_url: str) -> None:
    """CI owns PostgreSQL `test` and Redis db 15: never touch them."""
    from redis import Redis
    from sqlalchemy.engine import make_url

    if make_url(pg).database in (None, "", "test"):
        sys.exit(f"refusing to use PostgreSQL database {make_url(pg).database!r} (CI's); use e.g. .../bench")
    if int(Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)) == 15:
        sys.exit("refusing to use Redis db 15 (CI's); use e.g. redis://127.0.0.1:6379/14")


def ensure_database(pg: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(pg)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}) is None:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def prepare(pg: str, redis_url: str) -> None:
    """Empty schema, migrations, demo firm and clients, the scratch table; an empty Redis db."""
    from redis import Redis
    from sqlalchemy import create_engine, text

    from bench.ingest_apps import SCRATCH_TABLE
    from services.db import make_engine, make_sessionmaker
    from services.demo import seed
    from services.migrate import upgrade

    engine = create_engine(pg)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(pg)
    db = make_engine(pg)
    with make_sessionmaker(db).begin() as session:
        seed(session)
    with db.begin() as conn:
        conn.execute(text(f"CREATE TABLE {SCRATCH_TABLE} (id bigserial PRIMARY KEY, sid text, sender text, body text)"))
    db.dispose()
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    redis.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(pg: str, redis_url: str, port: int, fake, storage: str, **extra: str) -> dict:
    """The environment the servers and the worker run with. Every setting is set (empty = unset),
    so neither the caller's environment nor a .env file changes what is measured."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update({k: "" for k in SETTINGS_ENV})
    env.update(DATABASE_URL=pg, REDIS_URL=redis_url, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
               TWILIO_ACCOUNT_SID=fake.account_sid, TWILIO_AUTH_TOKEN=fake.auth_token, TWILIO_SMS_FROM=FIRM_NUMBER,
               TWILIO_API_URL=fake.url, PUENTE_STORAGE_DIR=storage, PUENTE_ENV="development",
               PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra)
    return env


class Server:
    """One gunicorn with the Procfile's config; stopped by its own pid (and its own process group)."""

    def __init__(self, target: str, port: int, env: dict, log: Path):
        self.target, self.port, self.env, self.log = target, port, env, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        cmd = [str(BIN / "gunicorn"), "-w", str(WORKERS), "--threads", str(THREADS), "-b", f"127.0.0.1:{self.port}",
               "--chdir", str(ROOT), "--graceful-timeout", "5", "--log-level", "warning", self.target]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.target} exited ({self.proc.returncode}):\n{tail(self.log)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    time.sleep(0.5)  # let the second worker finish booting too; the warm-up covers the rest
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.target} not ready in {timeout:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
        except ProcessLookupError:
            pass
        proc.wait(5)


def tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- the runs

def stored_and_queued(kind: str, args) -> tuple[int, int] | None:
    """Rows stored and jobs waiting, after a run: every acknowledged request must be both."""
    from redis import Redis
    from rq import Queue
    from sqlalchemy import create_engine, text

    from bench.ingest_apps import SCRATCH_LIST, SCRATCH_TABLE
    from bot.queue import QUEUE_NAME

    if kind == "bare":
        return None
    engine, redis = create_engine(args.pg), Redis.from_url(args.redis)
    try:
        with engine.connect() as conn:
            if kind == "full":
                rows = conn.scalar(text("SELECT count(*) FROM messages WHERE direction = 'in'"))
                queued = Queue(QUEUE_NAME, connection=redis).count
            else:
                rows = conn.scalar(text(f"SELECT count(*) FROM {SCRATCH_TABLE}"))
                queued = (Queue(SCRATCH_LIST, connection=redis).count if args.minimal_enqueue == "rq"
                          else redis.llen(SCRATCH_LIST))
        return rows, queued
    finally:
        engine.dispose()
        redis.close()


def throughput(name: str, kind: str, target: str, args, fake, tmp: Path, done: dict, **extra: str) -> dict:
    port = free_port()
    server = Server(target, port, app_env(args.pg, args.redis, port, fake, str(tmp / "storage"), **extra),
                    tmp / f"gunicorn-{kind}.log")
    try:
        server.start()
        result = load(port, fake, args)
    finally:
        server.stop()
    check = stored_and_queued(kind, args)
    if check is not None:  # counts are cumulative over rounds, as is what the server acknowledged
        done[kind] = done.get(kind, 0) + result["acked_total"]
        rows, queued = check
        result["durable"] = rows >= done[kind] and queued >= done[kind]
    s = summarize([result])
    errors = ", ".join(f"{k}×{v}" for k, v in sorted(s["errors"].items())) or "0"
    print(f"  {name:<44} {s['rps']:8.1f} req/s   p50 {s['p50'] * 1000:6.2f} ms   p99 {s['p99'] * 1000:7.2f} ms   "
          f"max {s['max'] * 1000:7.1f} ms   errors {errors}   (load generator {s['client_cpu'] * 100:.0f}% of a core)",
          flush=True)
    if check is not None:
        print(f"  {'':<44} {done[kind]} acknowledged so far (warm-ups included): {rows} rows stored, "
              f"{queued} jobs queued{'' if result['durable'] else '  <-- MISSING'}", flush=True)
    return result


def wait_for_worker(redis_url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"puente worker exited ({proc.returncode}):\n{tail(log)}")
            if Worker.count(connection=redis) > 0:
                return
            time.sleep(0.1)
    finally:
        redis.close()
    raise RuntimeError(f"puente worker not registered in {timeout:.0f} s:\n{tail(log)}")


def end_to_end(args, fake, tmp: Path) -> dict:
    """Real app + one `puente worker`: POST → reply recorded by the fake Twilio, per sender, in order."""
    prepare(args.pg, args.redis)  # fresh rows and queue: no backlog from the throughput runs
    port = free_port()
    env = app_env(args.pg, args.redis, port, fake, str(tmp / "storage"))
    server = Server("web:create_app()", port, env, tmp / "gunicorn-e2e.log")
    worker_log = tmp / "worker.log"
    worker = None
    numbers = DEMO_NUMBERS + [f"+1555800{i:04d}" for i in range(max(0, args.messages - len(DEMO_NUMBERS)))]
    numbers = numbers[:args.messages]
    warm = [f"+1555900{i:04d}" for i in range(args.e2e_warmup)]
    posted: dict[str, list[float]] = {}
    replied: dict[str, list[float]] = {}
    acks, bad = [], {}
    stop = threading.Event()
    base = len(fake.sent)

    def watch() -> None:  # stamps each reply when it shows up in fake.sent
        seen = base
        hard_stop = time.monotonic() + (args.messages + args.e2e_warmup) / args.rate + 2 * args.e2e_timeout + 60
        while not stop.is_set() and time.monotonic() < hard_stop:
            now, records = time.perf_counter(), fake.sent[seen:]
            for rec in records:
                replied.setdefault(rec["to"], []).append(now)
            seen += len(records)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, name="e2e-watch", daemon=True)
    try:
        server.start()
        with open(worker_log, "ab") as out:
            worker = subprocess.Popen([str(BIN / "puente"), "worker"], cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_worker(args.redis, worker, worker_log)
        watcher.start()
        url = f"http://127.0.0.1:{port}{PATH}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def send(batch: list[str], record: bool):
            nonlocal conn
            start = time.perf_counter()
            for i, number in enumerate(batch):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                form = inbound_form(number, FIRM_NUMBER, BODIES[i % len(BODIES)], sid=f"SM{secrets.token_hex(16)}",
                                    account_sid=fake.account_sid)
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Twilio-Signature": sign(fake.auth_token, url, form)}
                t0 = time.perf_counter()
                posted.setdefault(number, []).append(t0)
                try:
                    conn.request("POST", PATH, body=urlencode(form), headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    status = str(resp.status)
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if not record:
                    continue
                if status == "200":
                    acks.append(time.perf_counter() - t0)
                else:
                    bad[status] = bad.get(status, 0) + 1
            deadline = time.monotonic() + args.e2e_timeout
            while time.monotonic() < deadline:
                if all(len(replied.get(n, ())) >= len(posted.get(n, ())) for n in batch):
                    return
                time.sleep(0.05)

        send(warm, record=False)  # lazy loads and first connections in the server and the worker
        send(numbers, record=True)
        conn.close()
    finally:
        stop.set()
        stop_process(worker)
        server.stop()
        if watcher.is_alive():
            watcher.join(2)
    seconds = [r - p for n in numbers for p, r in zip(posted.get(n, []), replied.get(n, []))]
    result = {"sent": len(numbers), "answered": len(seconds), "errors": bad,
              "replies": sum(len(replied.get(n, ())) for n in numbers),
              "p50": percentile(seconds, 50), "p95": percentile(seconds, 95),
              "max": max(seconds) if seconds else float("nan"), "ack_p50": percentile(acks, 50),
              "ack_p99": percentile(acks, 99)}
    errors = ", ".join(f"{k}×{v}" for k, v in sorted(bad.items())) or "0"
    print(f"  {result['answered']}/{result['sent']} answered ({result['replies']} replies captured)   "
          f"p50 {result['p50']:.3f} s   p95 {result['p95']:.3f} s   max {result['max']:.3f} s   "
          f"(ack p50 {result['ack_p50'] * 1000:.1f} ms, p99 {result['ack_p99'] * 1000:.1f} ms; errors {errors})", flush=True)
    if result["answered"] < result["sent"]:
        print(f"  worker log tail:\n{tail(worker_log, 1500)}")
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per server")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the three servers (every other round in reverse order); figures pool the rounds")
    parser.add_argument("--senders", type=int, default=200, help="distinct sender numbers")
    parser.add_argument("--messages", type=int, default=100, help="end-to-end webhooks (one per sender)")
    parser.add_argument("--rate", type=float, default=20.0, help="end-to-end webhooks per second")
    parser.add_argument("--e2e-warmup", type=int, default=10, help="end-to-end webhooks sent first, not measured")
    parser.add_argument("--e2e-timeout", type=float, default=30.0, help="wait for replies after the last webhook")
    parser.add_argument("--minimal-enqueue", choices=("lpush", "rq"), default="lpush",
                        help="the minimal durable ingest's enqueue: a Redis LPUSH, or an rq enqueue of a no-op")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 1 <= args.rounds <= 10 and 0 <= args.warmup <= 60 and 1 <= args.concurrency <= 256
            and len(DEMO_NUMBERS) <= args.senders <= 10_000 and 1 <= args.messages <= 10_000 and 0 <= args.e2e_warmup <= 1_000
            and 0 < args.rate <= 1000 and 0 < args.e2e_timeout <= 600):
        parser.error("an argument is out of its bounds")
    guard(args.pg, args.redis)

    from tests.fakes.twilio import FakeTwilio

    ensure_database(args.pg)
    print(f"Webhook ingest on {os.cpu_count()} cores (servers, load generator, PostgreSQL and Redis share them); "
          f"gunicorn -w {WORKERS} --threads {THREADS}; PostgreSQL {args.pg.rsplit('/', 1)[-1]!r}, Redis {args.redis}")
    print(f"Throughput: {args.concurrency} keep-alive connections from a separate process, signed POST {PATH}, "
          f"unique MessageSid, {args.senders} senders; {args.seconds:g} s measured after {args.warmup:g} s warm-up "
          f"per server{f', {args.rounds} rounds' if args.rounds > 1 else ''} (no worker running)", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="puente-ingest-") as tmp_name, FakeTwilio() as fake:
        tmp = Path(tmp_name)
        try:
            prepare(args.pg, args.redis)
            servers = [("full", "full path (web:create_app)", "web:create_app()"),
                       ("bare", "bare Flask endpoint", "bench.ingest_apps:bare()"),
                       ("minimal", f"minimal durable (INSERT+COMMIT+{args.minimal_enqueue})", "bench.ingest_apps:minimal()")]
            runs: dict[str, list[dict]] = {kind: [] for kind, _, _ in servers}
            done: dict[str, int] = {}
            for r in range(args.rounds):
                if args.rounds > 1:
                    print(f" round {r + 1}/{args.rounds}", flush=True)
                for kind, name, target in (servers if r % 2 == 0 else servers[::-1]):  # every other round reversed
                    runs[kind].append(throughput(name, kind, target, args, fake, tmp, done,
                                                 BENCH_ENQUEUE=args.minimal_enqueue))
            for kind in runs:
                results[kind] = summarize(runs[kind])
            print(f"End to end: real app + Redis + one `puente worker`, {args.messages} webhooks at {args.rate:g}/s "
                  f"(after {args.e2e_warmup} unmeasured), one per sender; seconds from POST to the reply at the fake Twilio",
                  flush=True)
            results["e2e"] = end_to_end(args, fake, tmp)
        finally:
            from redis import Redis

            redis = Redis.from_url(args.redis)
            redis.flushdb()
            redis.close()

    full, bare, minimal, e2e = results["full"], results["bare"], results["minimal"], results["e2e"]
    share = full["rps"] / minimal["rps"] * 100 if minimal["rps"] else float("nan")
    print()
    pooled = f", {args.rounds} rounds pooled" if args.rounds > 1 else ""
    print(f"{'at ' + str(args.concurrency) + ' connections' + pooled:<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}  "
          f"vs minimal durable")
    for label, r in (("full path (signature, parse, insert, enqueue)", full), ("bare Flask endpoint", bare),
                     (f"minimal durable ingest ({args.minimal_enqueue})", minimal)):
        pct = r["rps"] / minimal["rps"] * 100 if minimal["rps"] else float("nan")
        print(f"{label:<44} {r['rps']:9.1f} {r['p50'] * 1000:8.2f} {r['p99'] * 1000:8.2f}  {pct:6.1f}%")
    print()
    full_clean = not full["errors"] and full.get("durable", False)
    print(f"full / minimal durable throughput: {share:.1f}% (target ≥ 70%: {verdict(share >= 70 and full_clean)})")
    print(f"full path ack p99 at {args.concurrency} connections: {full['p99'] * 1000:.1f} ms "
          f"(target < 50 ms: {verdict(full['p99'] < 0.050 and full_clean)})")
    all_answered = e2e["answered"] == e2e["sent"] and not e2e["errors"]
    print(f"end-to-end p95 (Redis + 1 worker): {e2e['p95']:.3f} s, {e2e['answered']}/{e2e['sent']} answered "
          f"(target < 1 s: {verdict(e2e['p95'] < 1.0 and all_answered)})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        client_main(json.loads(sys.argv[2]))
    else:
        main()
