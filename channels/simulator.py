"""The demo's channel: replies stay in the database, where the simulator page and `puente chat` read them.

Used for a channel whose provider is not configured, so the embedded demo needs no account.
"""
from __future__ import annotations

import uuid

from bot.messages import Reply
from channels.base import SendResult


class SimulatorChannel:
    def __init__(self, name: str):
        self.name = name

    def send(self, address: str, reply: Reply) -> SendResult:
        """Marks the reply delivered to the simulator (the outbound row is the message)."""
        return SendResult("sent", provider_id=f"sim-{uuid.uuid4().hex}")
