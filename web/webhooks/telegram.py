"""Telegram webhook: check the secret header, store each update's message, answer at once.

Telegram resends an update until it gets a 2xx (for up to 24 hours), so a database that cannot
store it answers 503, and a replayed update_id is simply acknowledged again.
"""
from __future__ import annotations

import logging

from flask import abort, jsonify, request
from sqlalchemy.exc import DBAPIError

from channels.telegram import TelegramChannel
from web.webhooks import bp, runtime

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@bp.post("/telegram")
def telegram_update():
    """Stores the update's message (if any) and acknowledges; no network I/O before the answer."""
    rt = runtime()
    channel = rt.channels.get("telegram")
    if not isinstance(channel, TelegramChannel):
        abort(404)  # Telegram is not configured here
    if not channel.verify(request.headers.get(SECRET_HEADER)):
        abort(403)
    update = request.get_json(force=True, silent=True)
    if not isinstance(update, dict):
        abort(400)
    try:
        for inbound in channel.parse(update):
            rt.accept(inbound)  # None for a replayed update: acknowledged all the same
    except DBAPIError as exc:  # OperationalError included: Telegram will resend the update
        log.warning("telegram update not stored, database unavailable: %s", type(exc.orig).__name__)
        return jsonify(ok=False), 503
    return jsonify(channel.acknowledgement(update)), 200
