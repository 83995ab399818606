"""Provider webhooks: verify, parse, store, acknowledge. No network I/O before the answer."""
from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def runtime():
    return current_app.extensions["puente"]


from web.webhooks import stripe, telegram, twilio  # noqa: E402,F401  (each registers its routes on bp)
