"""rq's scheduler (Redis deployment): webhook retries and the automation tick are scheduled jobs with
ids only; the rows in the database stay the truth."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.queue import RQQueue
from tests.conftest import redis_url

REDIS = redis_url()
pytestmark = pytest.mark.skipif(REDIS is None, reason="needs Redis (REDIS_URL)")


def _clear(registry) -> None:
    from rq.exceptions import NoSuchJobError

    for job_id in ("automation_tick", "deliver_webhook-42-at"):
        try:
            registry.remove(job_id, delete_job=True)
        except NoSuchJobError:
            pass


def test_retries_and_the_tick_are_scheduled_on_rq():
    from rq.registry import ScheduledJobRegistry

    queue = RQQueue(REDIS)
    registry = ScheduledJobRegistry(queue=queue.queue)
    _clear(registry)
    when = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert queue.enqueue_at("deliver_webhook", 42, when)
    assert queue.schedule_tick(30) and queue.schedule_tick(30)  # two workers arming it: still one chain
    assert sorted(registry.get_job_ids()) == ["automation_tick", "deliver_webhook-42-at"]
    job = queue.queue.fetch_job("deliver_webhook-42-at")
    assert job.func_name == "bot.jobs.deliver_webhook" and job.args == [42]
    _clear(registry)
