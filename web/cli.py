"""The `puente` command line (a FlaskGroup): demo, run, worker, db, import, chat, audit, documents."""
from __future__ import annotations

import json
import logging
import sys
import uuid
from pathlib import Path

import click
from flask.cli import FlaskGroup

from bot.settings import Settings, SettingsError


def _settings(**changes) -> Settings:
    try:
        return Settings.from_env().with_(**changes) if changes else Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _app_factory():
    from web import create_app

    return create_app(_settings())


@click.group(cls=FlaskGroup, create_app=_app_factory, add_default_commands=False, add_version_option=False)
def cli() -> None:
    """Puente: a bilingual messaging assistant for immigration law firms."""


def _prepare_database(settings: Settings) -> None:
    from services.migrate import upgrade

    if settings.is_sqlite:
        Path(settings.database_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


def _serve(app, host: str, port: int) -> None:
    """Serves with werkzeug directly (Flask's app.run refuses to run inside its own CLI)."""
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


@cli.command("demo")
@click.option("--port", default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def demo(port: int, host: str) -> None:
    """The embedded default: SQLite, in-process jobs, demo data, the simulator at /simulator."""
    from bot.runtime import build_runtime
    from services.demo import DEMO_STAFF, seed, seed_staff
    from web import create_app
    from web.provider_sandbox import demo_provider_settings

    # Providers the user has not configured get the demo's credentials and the app's own sandbox,
    # so the simulator's messages travel as signed webhooks and replies through the channel code.
    settings = demo_provider_settings(_settings(demo=True, redis_url=None), f"http://{host}:{port}")
    _prepare_database(settings)
    runtime = build_runtime(settings)
    with runtime.Session.begin() as session:
        seed(session)
        seed_staff(session)
    runtime.start_relay()
    app = create_app(settings, runtime)
    # The simulator's polling URLs carry phone numbers: keep request lines out of the log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # each sandbox send, at INFO
    click.echo(f"Puente demo: open http://{host}:{port}/simulator  (Ctrl+C to stop)")
    click.echo(f"Staff console: http://{host}:{port}/console  — demo accounts (two-step set-up at first sign-in):")
    for email, _name, role, password, _lang, _matters in DEMO_STAFF:
        click.echo(f"    {role:10} {email}  /  {password}")
    _serve(app, host, port)


@cli.command("run")
@click.option("--port", default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def run(port: int, host: str) -> None:
    """Serves the app with the configured settings (use gunicorn in production)."""
    from web import create_app

    _serve(create_app(_settings()), host, port)


AUTOMATION_TICK_SECONDS = 30


@cli.command("worker")
@click.option("--with-scheduler", is_flag=True, help="Also run rq's scheduler in this worker.")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (tests, benchmarks).")
def worker(with_scheduler: bool, burst: bool) -> None:
    """Runs jobs from Redis (rq SimpleWorker: no fork per job) plus the relay that re-enqueues lost work.

    With --with-scheduler it also runs rq's scheduler: webhook retries at their due time and the
    automation tick (due reminders and deliveries) every 30 s. Reminders are database rows, so a
    restart or a Redis flush loses none; the relay loop runs the same pass as a fallback."""
    from redis import Redis
    from rq import Queue, SimpleWorker
    from rq.serializers import JSONSerializer

    from bot import jobs
    from bot.queue import QUEUE_NAME

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is required for `puente worker` (without it jobs run inside the web process)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redis = Redis.from_url(settings.redis_url)
    runtime = jobs.runtime()
    runtime.engine.warm_up()
    if not burst:
        runtime.start_relay()
    queue = Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    if with_scheduler:
        runtime.queue.schedule_tick(AUTOMATION_TICK_SECONDS)  # reminders and webhook retries on rq's scheduler
    SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(
        burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")


@cli.group("db")
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Applies the migrations (Alembic) to DATABASE_URL."""
    _prepare_database(_settings())
    click.echo("database is up to date")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_(file: str) -> None:
    """Imports clients, matters and invoices (Import format v1); refuses the whole file on any problem."""
    from services.db import make_engine, make_sessionmaker
    from services.importer import import_file

    settings = _settings()
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine).begin() as session:
        result = import_file(session, file)
        if isinstance(result, list):
            session.rollback()
            click.echo(f"Refused {file}: {len(result)} problem(s); nothing was imported.", err=True)
            for problem in result:
                click.echo(f"  {problem.path}: {problem.reason}", err=True)
            sys.exit(1)
    click.echo(f"Imported {file}: {result.summary() if hasattr(result, 'summary') else result}")


@cli.command("chat")
@click.option("--channel", type=click.Choice(["sms", "whatsapp", "telegram"]), default="sms", show_default=True)
@click.option("--from", "address", required=True, help="The sender: a phone number or a Telegram chat id.")
@click.option("--attach", "attachments", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.argument("text", required=False)
def chat(channel: str, address: str, attachments: tuple[str, ...], as_json: bool, text: str | None) -> None:
    """Talks to the assistant through the same engine as a webhook; without TEXT, one message per stdin line."""
    from bot.runtime import build_runtime

    settings = _settings()
    runtime = build_runtime(settings)
    lines = [text] if text is not None else (line.rstrip("\n") for line in sys.stdin)
    for i, line in enumerate(lines):
        media = _attachments(runtime, attachments) if i == 0 else ()
        _chat_one(runtime, channel, address, line, media, as_json)


def _attachments(runtime, paths):
    from bot.messages import Media

    import mimetypes

    return tuple(Media(content_type=mimetypes.guess_type(p)[0] or "application/octet-stream",
                       filename=Path(p).name, size=Path(p).stat().st_size, content=Path(p).read_bytes()) for p in paths)


def _chat_one(runtime, channel: str, address: str, text: str, media, as_json: bool) -> None:
    from sqlalchemy import select

    from bot.messages import Inbound
    from services.models import Message

    inbound = Inbound(channel=channel, address=address, provider_id=f"cli-{uuid.uuid4().hex}", text=text, media=media)
    message_id = runtime.accept(inbound)
    msg = runtime.wait_processed(message_id)
    if msg is None:
        raise click.ClickException("no answer in time: is `puente worker` running?")
    with runtime.Session() as session:
        replies = session.scalars(select(Message).where(Message.reply_to_id == message_id).order_by(Message.id)).all()
        out = [{"text": r.body, "choices": [c["label"] for c in (r.payload or {}).get("choices", [])]} for r in replies]
    if as_json:
        click.echo(json.dumps({"language": msg.language, "intent": msg.intent, "dialog": msg.dialog, "replies": out},
                              ensure_ascii=False))
        return
    for r in out:
        click.echo(r["text"])
        for n, label in enumerate(r["choices"], 1):
            click.echo(f"  {n}. {label}")


@cli.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Checks the hash chain of the audit trail; exits 1 at the first broken link."""
    from services import audit
    from services.db import make_engine, make_sessionmaker

    engine = make_engine(_settings().database_url)
    with make_sessionmaker(engine)() as session:
        report = audit.verify(session)
    if report.ok:
        click.echo(f"audit chain intact: {report.events} events")
    else:
        click.echo(f"audit chain BROKEN at event {report.broken_at} (after {report.events - 1} good events)", err=True)
        sys.exit(1)


@cli.command("firm")
@click.option("--name")
@click.option("--phone")
@click.option("--email")
@click.option("--timezone")
@click.option("--payment-instructions-en")
@click.option("--payment-instructions-es")
@click.option("--whatsapp-template", "templates", multiple=True, metavar="PURPOSE:LANG:CONTENT_SID",
              help="An approved WhatsApp template (e.g. reply:es:HX…), used past the 24-hour window. Purposes: "
                   "reply (any message), case_update (stage changes, deadlines), documents (missing or reviewed "
                   "documents), payment (overdue invoices, receipts); a purpose without one uses reply's.")
def firm(name, phone, email, timezone, payment_instructions_en, payment_instructions_es, templates) -> None:
    """Shows or sets the firm's name, contact, payment instructions and WhatsApp templates."""
    from services.db import make_engine, make_sessionmaker
    from services.firm import get_firm
    from services.outreach import TEMPLATE_PURPOSES

    engine = make_engine(_settings().database_url)
    with make_sessionmaker(engine).begin() as session:
        f = get_firm(session)
        for attr, value in (("name", name), ("phone", phone), ("email", email), ("timezone", timezone)):
            if value:
                setattr(f, attr, value)
        instructions = dict(f.payment_instructions or {})
        if payment_instructions_en:
            instructions["en"] = payment_instructions_en
        if payment_instructions_es:
            instructions["es"] = payment_instructions_es
        f.payment_instructions = instructions
        extra = dict(f.settings or {})
        for spec in templates:
            parts = spec.split(":")
            if len(parts) != 3 or parts[1] not in ("en", "es") or not parts[2].startswith("HX"):
                raise click.ClickException(f"--whatsapp-template wants PURPOSE:LANG:HX…, got {spec!r}")
            if parts[0] not in TEMPLATE_PURPOSES:
                raise click.ClickException(f"--whatsapp-template purpose must be one of {', '.join(TEMPLATE_PURPOSES)}; "
                                           f"got {parts[0]!r}")
            purpose, lang, sid = parts
            extra.setdefault("whatsapp_templates", {}).setdefault(purpose, {})[lang] = sid
        f.settings = extra
        click.echo(json.dumps({"name": f.name, "phone": f.phone, "email": f.email, "timezone": f.timezone,
                               "payment_instructions": instructions,
                               "whatsapp_templates": extra.get("whatsapp_templates", {})}, ensure_ascii=False, indent=2))


@cli.group("telegram")
def telegram_group() -> None:
    """Telegram: register the webhook, hand out account links."""


@telegram_group.command("set-webhook")
def telegram_set_webhook() -> None:
    """Registers {PUBLIC_BASE_URL}/webhooks/telegram with the secret token and the updates Puente reads."""
    from channels.telegram import TelegramChannel

    settings = _settings()
    if not settings.telegram_bot_token:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is required")
    channel = TelegramChannel(settings.telegram_bot_token, settings.telegram_webhook_secret, settings.telegram_api_url)
    url = settings.public_base_url + "/webhooks/telegram"
    if not url.startswith("https://"):
        raise click.ClickException("PUBLIC_BASE_URL must be https:// for Telegram webhooks")
    channel.set_webhook(url)
    click.echo(f"Telegram webhook set to {url}")


@telegram_group.command("link")
@click.argument("client_external_id")
@click.option("--bot-username", help="Your bot's @username, to print a t.me link.")
def telegram_link(client_external_id: str, bot_username: str | None) -> None:
    """A one-time link (15 minutes) that connects a client's Telegram account; they still verify."""
    from sqlalchemy import select

    from services.db import make_engine, make_sessionmaker, utcnow
    from services.linking import TOKEN_LIFETIME, issue_token
    from services.models import Client

    engine = make_engine(_settings().database_url)
    with make_sessionmaker(engine).begin() as session:
        client = session.scalar(select(Client).where(Client.external_id == client_external_id))
        if client is None:
            raise click.ClickException(f"no client with external id {client_external_id}")
        token = issue_token(session, client, "telegram", "cli", utcnow())
    minutes = int(TOKEN_LIFETIME.total_seconds() // 60)
    if bot_username:
        click.echo(f"https://t.me/{bot_username.lstrip('@')}?start={token}")
    else:
        click.echo(f"/start {token}")
    click.echo(f"(single use, valid {minutes} minutes)", err=True)


@cli.group("matters")
def matters_group() -> None:
    """Matters: stage changes (held while an invoice that blocks the stage is unpaid)."""


@matters_group.command("stage")
@click.argument("external_id")
@click.argument("stage")
@click.option("--actor", default="cli", show_default=True, help="Who asks (recorded in the audit trail).")
def matters_stage(external_id: str, stage: str, actor: str) -> None:
    """Moves a matter to STAGE, or says which unpaid invoices hold it (the matter then moves on when they are paid)."""
    from sqlalchemy import select

    from services.db import make_engine, make_sessionmaker, utcnow
    from services.matters import StageBlocked, change_stage
    from services.models import STAGES, Matter

    if stage not in STAGES:
        raise click.ClickException(f"unknown stage {stage!r}; one of: {', '.join(STAGES)}")
    engine = make_engine(_settings().database_url)
    refused = None
    with make_sessionmaker(engine).begin() as session:
        matter = session.scalar(select(Matter).where(Matter.external_id == external_id))
        if matter is None:
            raise click.ClickException(f"no matter with external id {external_id}")
        try:
            change_stage(session, matter, stage, f"cli:{actor}", utcnow())
        except StageBlocked as exc:
            refused = exc  # committed all the same: the refusal is audited and the stage remembered
    if refused:
        click.echo(f"Refused: {external_id} cannot move to {stage} until invoice {', '.join(refused.invoice_numbers)} "
                   f"is paid. It will move to {stage} when the payment arrives.", err=True)
        sys.exit(1)
    click.echo(f"{external_id} is now at stage {stage}")


@cli.group("reminders")
def reminders_group() -> None:
    """Reminders about overdue invoices."""


@reminders_group.command("run")
def reminders_run() -> None:
    """Schedules and sends the overdue-invoice reminders that are due now (quiet hours respected)."""
    from bot.runtime import build_runtime

    runtime = build_runtime(_settings())
    try:
        sent = runtime.payments.run_reminders()
        runtime.queue.join()
    finally:
        runtime.close()
    click.echo(f"reminders sent: {sent}")


@cli.group("users")
def users_group() -> None:
    """Staff accounts for the console."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "partner", "associate", "paralegal", "finance"]))
@click.option("--language", default="en", type=click.Choice(["en", "es"]), show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 12 characters (asked for when not given).")
def users_create(email: str, name: str, role: str, language: str, password: str) -> None:
    """Creates a staff account; two-step sign-in (TOTP) is set up at the first sign-in."""
    from services import staff_auth
    from services.db import make_engine, make_sessionmaker

    engine = make_engine(_settings().database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            staff_auth.create_user(session, email, name, role, password, language)
    except staff_auth.AuthError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {email.strip().lower()}: sign in at {_settings().public_base_url}/console/login "
               "(two-step sign-in is set up at the first sign-in)")


from web.cli_documents import documents_group  # noqa: E402  (registered on the group above)

cli.add_command(documents_group)

from web.cli_automation import api_tokens_group, webhooks_group  # noqa: E402

cli.add_command(webhooks_group)
cli.add_command(api_tokens_group)


def main() -> None:
    cli()
