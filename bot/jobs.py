"""rq entry points: each takes one id and runs on the worker's runtime (built once per process)."""
from __future__ import annotations

from functools import lru_cache

from bot.runtime import Runtime, build_runtime
from bot.settings import Settings


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return build_runtime(Settings.from_env())


def process_message(message_id: int) -> None:
    runtime().process_message(message_id)


def send_message(message_id: int) -> None:
    runtime().send_message(message_id)


def build_staff_copy(item_id: int) -> None:
    runtime().build_staff_copy(item_id)


def summarise_handoff(handoff_id: int) -> None:
    runtime().summarise_handoff(handoff_id)


def notify_staff(handoff_id: int) -> None:
    runtime().notify_staff(handoff_id)


def deliver_webhook(delivery_id: int) -> None:
    runtime().deliver_webhook(delivery_id)


def automation_tick(interval: int) -> None:
    """rq's scheduler runs this every `interval` seconds (armed by `puente worker --with-scheduler`):
    due reminders and webhook deliveries, then it schedules its own next run."""
    rt = runtime()
    try:
        rt.automation()
    finally:
        rt.queue.schedule_tick(interval)
