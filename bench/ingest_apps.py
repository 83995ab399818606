"""Gunicorn app factories for bench/ingest.py, the baselines the real webhook is measured beside.

    gunicorn 'bench.ingest_apps:bare()'      # same route, same TwiML, no work at all
    gunicorn 'bench.ingest_apps:minimal()'   # one Core INSERT + COMMIT + one Redis enqueue, no validation

Both read DATABASE_URL / REDIS_URL from the environment, as the real app does. `minimal()` writes
to the scratch table BENCH_TABLE (created by bench/ingest.py) and enqueues with LPUSH on
BENCH_LIST, or with an rq enqueue of a no-op job when BENCH_ENQUEUE=rq.
"""
from __future__ import annotations

import os

from flask import Flask, Response, request

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SCRATCH_TABLE = "bench_ingest"
SCRATCH_LIST = "bench:ingest"


def _app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


def bare() -> Flask:
    """The same route and answer as the real webhook, doing nothing: the server and framework floor."""
    app = _app()

    @app.post("/webhooks/twilio")
    def twilio_inbound():
        return Response(EMPTY_TWIML, mimetype="text/xml")

    return app


def minimal() -> Flask:
    """A minimal durable ingest: read three form fields, INSERT + COMMIT, enqueue once, answer."""
    from redis import Redis
    from sqlalchemy import Column, MetaData, Table, create_engine, insert
    from sqlalchemy.types import BigInteger, Text

    engine = create_engine(os.environ["DATABASE_URL"], pool_size=10, pool_recycle=1800)  # as services.db.make_engine
    redis = Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5)
    table = Table(os.environ.get("BENCH_TABLE", SCRATCH_TABLE), MetaData(),
                  Column("id", BigInteger, primary_key=True), Column("sid", Text), Column("sender", Text), Column("body", Text))
    stmt = insert(table).returning(table.c.id)
    key = os.environ.get("BENCH_LIST", SCRATCH_LIST)

    if os.environ.get("BENCH_ENQUEUE", "lpush") == "rq":
        from rq import Queue
        from rq.serializers import JSONSerializer

        queue = Queue(key, connection=redis, serializer=JSONSerializer)

        def enqueue(row_id: int) -> None:
            queue.enqueue("builtins.abs", row_id, job_id=f"ingest-{row_id}", result_ttl=0)
    else:
        def enqueue(row_id: int) -> None:
            redis.lpush(key, row_id)

    app = _app()

    @app.post("/webhooks/twilio")
    def twilio_inbound():
        form = request.form
        with engine.begin() as conn:
            row_id = conn.execute(stmt, {"sid": form.get("MessageSid", ""), "sender": form.get("From", ""),
                                         "body": form.get("Body", "")}).scalar_one()
        enqueue(row_id)
        return Response(EMPTY_TWIML, mimetype="text/xml")

    return app
