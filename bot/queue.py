"""Job queues: rq on Redis when REDIS_URL is set, otherwise an in-process worker thread.

Jobs carry one id and nothing else; the database row is the truth, so a lost enqueue is only
a delay (the relay finds the row again), never a lost message.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)
QUEUE_NAME = "puente"
JOBS = ("process_message", "send_message", "build_staff_copy", "summarise_handoff", "notify_staff",
        "deliver_webhook")


class InProcessQueue:
    """Runs jobs on background threads (the embedded default).

    Several threads may run at once; a conversation's messages still go in arrival order because
    processing locks the conversation row and always takes its oldest waiting message.
    """

    def __init__(self, handlers: dict[str, Callable[[int], None]], threads: int = 1):
        self._handlers = handlers
        self._jobs: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"puente-jobs-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def enqueue(self, job: str, item_id: int) -> bool:
        self._jobs.put((job, item_id))
        return True

    def _run(self) -> None:
        while True:
            job, item_id = self._jobs.get()
            try:
                if job is not None:
                    self._handlers[job](item_id)
            except Exception:  # a failing job must not stop the others; the row keeps its state
                log.exception("job %s failed for id %s", job, item_id)
            finally:
                self._jobs.task_done()

    def join(self) -> None:
        """Waits until every job enqueued so far (and those they enqueued) has run."""
        self._jobs.join()


class RQQueue:
    """Enqueues `bot.jobs.<name>(id)` on rq with the JSON serializer."""

    def __init__(self, redis_url: str):
        from redis import Redis
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.queue = Queue(QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)
        self._templates: dict[str, dict] = {}

    def enqueue(self, job: str, item_id: int) -> bool:
        """Returns False (and logs) when Redis is unreachable: the relay will enqueue it later."""
        from redis.exceptions import RedisError

        try:
            # One round trip, no MULTI/EXEC: a broken connection mid-way returns False and the relay
            # writes the same job id again.
            with self.redis.pipeline(transaction=False) as pipe:
                self.write_job(pipe, job, item_id)
                pipe.execute()
            return True
        except RedisError as exc:
            log.warning("queue unavailable, %s %s waits for the relay: %s", job, item_id, type(exc).__name__)
            return False

    def write_job(self, pipe, job: str, item_id: int) -> None:
        """Queues `bot.jobs.<job>(item_id)` on `pipe` exactly as rq's enqueue writes it (queue
        registration, job hash, push: one round trip), without building an rq Job each time.

        The job hash is rq's own, made once per job name by the queue's `create_job` and then
        copied with this job's id, arguments and times (a webhook's hot path; ≈30% less CPU than
        `enqueue_call`). tests/test_redis_workers.py checks it against rq's enqueue field by field.
        """
        import zlib

        from rq.utils import now, utcformat

        func = f"bot.jobs.{job}"
        template = self._templates.get(job)
        if template is None:
            fields = self.queue.create_job(func, args=(0,), job_id=f"{job}-0", result_ttl=0, failure_ttl=86400).to_dict()
            fields["status"] = "queued"
            encoder = self.redis.get_encoder()  # the static fields encoded once, as redis-py would each time
            template = {encoder.encode(k): encoder.encode(v) for k, v in fields.items()}
            self._templates[job] = template
        job_id = f"{job}-{item_id}"
        stamp = utcformat(now())
        mapping = {**template, b"created_at": stamp, b"enqueued_at": stamp, b"description": f"{func}({item_id!r})",
                   b"data": zlib.compress(self.queue.serializer.dumps((func, None, [item_id], {})))}
        pipe.sadd(self.queue.redis_queues_keys, self.queue.key)
        pipe.hset(self.queue.job_class.key_for(job_id), mapping=mapping)
        pipe.rpush(self.queue.key, job_id)

    def enqueue_at(self, job: str, item_id: int, when) -> bool:
        """Runs the job at `when` through rq's scheduler (`puente worker --with-scheduler`)."""
        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_at(when, f"bot.jobs.{job}", item_id, job_id=f"{job}-{item_id}-at", result_ttl=0,
                                  failure_ttl=86400)
            return True
        except RedisError as exc:
            log.warning("scheduler unavailable, %s %s waits for the relay: %s", job, item_id, type(exc).__name__)
            return False

    def schedule_tick(self, interval: int) -> bool:
        """Arms the next automation tick on rq's scheduler (one job id: several workers keep one chain)."""
        from datetime import timedelta

        from redis.exceptions import RedisError

        try:
            self.queue.enqueue_in(timedelta(seconds=interval), "bot.jobs.automation_tick", interval,
                                  job_id="automation_tick", result_ttl=0, failure_ttl=86400)
            return True
        except RedisError as exc:
            log.warning("scheduler unavailable, the relay runs the automation pass: %s", type(exc).__name__)
            return False

    def join(self) -> None:
        """Nothing to wait for here: a separate `puente worker` runs the jobs."""

    def healthy(self) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(self.redis.ping())
        except RedisError:
            return False
