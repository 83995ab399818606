"""`puente webhooks …` and `puente api-tokens …`: the admin's tools for integrations."""
from __future__ import annotations

import json
import sys

import click


def _session_scope():
    from services.db import make_engine, make_sessionmaker
    from web.cli import _settings

    return make_sessionmaker(make_engine(_settings().database_url)).begin()


@click.group("webhooks")
def webhooks_group() -> None:
    """Outgoing webhooks: endpoints, delivery log, secret rotation, replay."""


@webhooks_group.command("add")
@click.argument("url")
@click.option("--events", required=True, help="Comma-separated event names, or '*' for all.")
@click.option("--full", is_flag=True, help="Send the event's details, not only ids and type.")
@click.option("--allow-private", is_flag=True, help="Allow a target on a private network (loopback, 10/8, …).")
def webhooks_add(url: str, events: str, full: bool, allow_private: bool) -> None:
    """Adds an endpoint and prints its signing secret (shown only this once)."""
    from services import webhooks
    from services.db import utcnow

    names = [e.strip() for e in events.split(",") if e.strip()]
    with _session_scope() as session:
        try:
            endpoint, secret = webhooks.add_endpoint(session, url, names, full=full, allow_private=allow_private,
                                                     now=utcnow())
        except webhooks.EndpointError as exc:
            raise click.ClickException(str(exc)) from None
        endpoint_id = endpoint.id
    click.echo(f"endpoint {endpoint_id} added for {', '.join(sorted(set(names)))}")
    click.echo(f"secret: {secret}")
    click.echo("(shown once: store it in the receiving system now)", err=True)


@webhooks_group.command("list")
def webhooks_list() -> None:
    """Lists endpoints with their state and delivery counts."""
    from sqlalchemy import func, select

    from services.models import WebhookDelivery, WebhookEndpoint

    with _session_scope() as session:
        counts = {(eid, state): n for eid, state, n in session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.state, func.count())
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.state))}
        for e in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
            status = "active" if e.active else f"disabled ({e.disabled_reason or 'by admin'})"
            tally = ", ".join(f"{state} {n}" for (eid, state), n in sorted(counts.items()) if eid == e.id) or "no deliveries"
            click.echo(f"{e.id}  {e.url}  [{status}]  events={','.join(e.events)}  full={e.full_payload}  "
                       f"private={e.allow_private_network}  {tally}")


@webhooks_group.command("rotate-secret")
@click.argument("endpoint_id", type=int)
def webhooks_rotate(endpoint_id: int) -> None:
    """A new secret (printed once); the old one keeps signing as a second v1= for 24 hours."""
    from services import webhooks
    from services.db import utcnow
    from services.models import WebhookEndpoint

    with _session_scope() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            raise click.ClickException(f"no endpoint {endpoint_id}")
        secret = webhooks.rotate_secret(session, endpoint, utcnow())
    click.echo(f"secret: {secret}")


@webhooks_group.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def webhooks_deliveries(endpoint_id: int, limit: int, as_json: bool) -> None:
    """The delivery log of an endpoint, newest first."""
    from sqlalchemy import select

    from services.models import WebhookDelivery

    with _session_scope() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                               .order_by(WebhookDelivery.id.desc()).limit(limit)).all()
        for d in rows:
            entry = {"id": d.id, "event_id": d.event_id, "event": d.event, "state": d.state, "attempts": d.attempts,
                     "last_status": d.last_status, "last_error": d.last_error, "response_ms": d.response_ms,
                     "next_attempt_at": d.next_attempt_at.isoformat(), "created_at": d.created_at.isoformat()}
            if as_json:
                click.echo(json.dumps(entry))
            else:
                click.echo(f"{d.id}  {d.event_id}  {d.event}  {d.state}  attempts={d.attempts}  "
                           f"status={d.last_status}  {d.last_error or ''}")


@webhooks_group.command("replay")
@click.argument("delivery_id", type=int)
def webhooks_replay(delivery_id: int) -> None:
    """Sends a delivery again (same event id and body) as a new delivery, due now."""
    from services import webhooks
    from services.db import utcnow

    with _session_scope() as session:
        try:
            copy = webhooks.replay(session, delivery_id, utcnow())
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        copy_id = copy.id
    click.echo(f"delivery {delivery_id} replayed as delivery {copy_id}")


@click.group("api-tokens")
def api_tokens_group() -> None:
    """Tokens for the /api/v1 API (scoped read or write)."""


@api_tokens_group.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write"]), required=True)
@click.option("--by", "created_by", default="admin", show_default=True, help="Who issues it (audited).")
def api_tokens_create(name: str, scope: str, created_by: str) -> None:
    """Creates a token and prints it (shown only this once)."""
    from services import api_tokens
    from services.db import utcnow

    with _session_scope() as session:
        row, token = api_tokens.issue(session, name, scope, created_by=f"cli:{created_by}", now=utcnow())
        token_id = row.id
    click.echo(f"token {token_id} ({scope}): {token}")
    click.echo("(shown once: only its hash is kept)", err=True)


@api_tokens_group.command("list")
def api_tokens_list() -> None:
    from sqlalchemy import select

    from services.models import ApiToken

    with _session_scope() as session:
        for t in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "live"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"{t.id}  {t.name}  {t.scope}  {state}  last used {used}")


@api_tokens_group.command("revoke")
@click.argument("token_id", type=int)
def api_tokens_revoke(token_id: int) -> None:
    from services import api_tokens
    from services.db import utcnow

    with _session_scope() as session:
        if api_tokens.revoke(session, token_id, actor="cli:admin", now=utcnow()) is None:
            raise click.ClickException(f"no token {token_id}")
    click.echo(f"token {token_id} revoked")
    sys.stdout.flush()
