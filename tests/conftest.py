"""Shared fixtures: a real database (TEST_DATABASE_URL or a temporary SQLite file), a runtime
on it, the demo data, and `Chat`, which talks to the engine through its front door."""
from __future__ import annotations

import os
import uuid
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from bot.messages import Inbound, Media
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from services.db import Base
from services.migrate import upgrade
from services.models import Message


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A migrated, empty database for the whole run (PostgreSQL in CI, SQLite otherwise)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "puente.db")
    upgrade(url)
    return url


def make_settings(database_url: str, tmp_path: Path, **extra) -> Settings:
    environ = {"DATABASE_URL": database_url, "PUENTE_STORAGE_DIR": str(tmp_path / "storage")}
    environ.update(extra)
    return Settings.from_env(environ=environ, load_dotenv=False)


def wipe(url: str) -> None:
    """Empties every table (the engine commits in its own sessions, so no rollback trick)."""
    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    wipe(database_url)
    return make_settings(database_url, tmp_path)


class Clock:
    """A settable clock for the engine (verification expiry and lockouts)."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(settings, clock) -> Runtime:
    rt = build_runtime(settings, in_process=True)
    rt.engine.clock = clock
    yield rt
    rt.queue.join()
    rt.close()


@pytest.fixture
def demo(runtime) -> Runtime:
    """The runtime with the demo firm, clients and matters loaded."""
    from services.demo import seed

    with runtime.Session.begin() as session:
        seed(session)
    return runtime


@dataclass
class Turn:
    """What one message produced: the replies (texts and choice labels) and how it was understood."""

    replies: list[str]
    choices: list[list[str]]
    intent: str | None
    language: str | None
    dialog: str | None

    @property
    def text(self) -> str:
        return "\n".join(self.replies)


@dataclass
class Chat:
    """A person texting the assistant: `chat.say("hola")` → Turn."""

    runtime: Runtime
    address: str = "+15555550101"
    channel: str = "sms"
    turns: list[Turn] = field(default_factory=list)
    _n: int = 0

    def say(self, text: str = "", choice: str | None = None, provider_id: str | None = None,
            link: str | None = None, files: list[tuple[bytes, str]] | None = None) -> Turn:
        """Sends text (or a button press), optionally with files as (bytes, declared content type)."""
        self._n += 1
        pid = provider_id or f"test-{uuid.uuid4().hex}"  # unique even when Chat objects are short-lived
        media = tuple(Media(content_type=kind, filename=f"file{i}", size=len(data), content=data)
                      for i, (data, kind) in enumerate(files or []))
        message_id = self.runtime.accept(Inbound(self.channel, self.address, pid, text=text, choice=choice, link=link,
                                                 media=media))
        assert message_id is not None, "message was treated as a replay"
        msg = self.runtime.wait_processed(message_id, timeout=20)
        assert msg is not None, "message was not processed"
        with self.runtime.Session() as session:
            rows = session.scalars(select(Message).where(Message.reply_to_id == message_id).order_by(Message.id)).all()
            turn = Turn([r.body for r in rows], [[c["label"] for c in r.payload.get("choices", [])] for r in rows],
                        msg.intent, msg.language, msg.dialog)
        self.turns.append(turn)
        return turn

    def verify(self, dob: str, first: str = "hola") -> Turn:
        self.say(first)
        return self.say(dob)


@pytest.fixture
def chat(demo) -> Chat:
    return Chat(demo)


def redis_url() -> str | None:
    """REDIS_URL when set, else the local default if something listens there."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.3).close()
        return "redis://127.0.0.1:6379/13"  # CI passes REDIS_URL (db 15); a laptop run stays out of its way
    except OSError:
        return None
