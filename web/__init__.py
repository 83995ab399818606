"""The Flask app factory: webhooks, payment pages, the /api/v1 API, the staff console, the simulator (demo), health."""
from __future__ import annotations

import logging

from flask import Flask, jsonify

from bot.runtime import Runtime, build_runtime
from bot.settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Builds the app; `settings` default to the environment, `runtime` to one built from them."""
    settings = settings or Settings.from_env()
    runtime = runtime or build_runtime(settings)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=25 * 1024 * 1024)
    app.extensions["puente"] = runtime
    app.extensions["puente_settings"] = settings
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @app.get("/healthz")
    def healthz():
        status, reasons = runtime.health()
        return jsonify(status=status, reasons=reasons), (200 if status == "ok" else 503)

    from web.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)

    from web.pay import bp as pay_bp

    app.register_blueprint(pay_bp)

    from web.console import bp as console_bp

    app.register_blueprint(console_bp)

    from web.api import bp as api_bp

    app.register_blueprint(api_bp)

    if settings.demo:
        from web.provider_sandbox import bp as sandbox_bp
        from web.simulator import bp as simulator_bp

        app.register_blueprint(simulator_bp)
        app.register_blueprint(sandbox_bp)  # the demo's stand-in for Twilio and Telegram

        @app.get("/")
        def index():
            from flask import redirect

            return redirect("/simulator")

    return app
