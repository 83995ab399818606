"""Settings: read once from the environment (and `.env` when present), then passed down."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it in one line."""


def _env(environ: dict[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    secret_key: str = "dev-insecure-secret-key"
    encryption_key: str | None = None
    storage_dir: Path = ROOT / "instance" / "storage"
    public_base_url: str = "http://127.0.0.1:5000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_url: str = "https://api.stripe.com"
    clamd_address: str | None = None
    # The embedded demo: simulator page on, demo data seeded.
    demo: bool = False
    production: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, load_dotenv: bool = True) -> "Settings":
        """Builds Settings from the environment; fails with one clear line naming a missing setting."""
        if load_dotenv and environ is None:
            from dotenv import load_dotenv as _load

            _load(ROOT / ".env", override=False)
        env = dict(os.environ if environ is None else environ)
        default_db = "sqlite:///" + str(ROOT / "instance" / "puente.db")
        production = _env(env, "PUENTE_ENV", "development") == "production"
        settings = cls(
            database_url=_env(env, "DATABASE_URL", default_db),
            redis_url=_env(env, "REDIS_URL"),
            secret_key=_env(env, "PUENTE_SECRET_KEY", "dev-insecure-secret-key"),
            encryption_key=_env(env, "PUENTE_ENCRYPTION_KEY"),
            storage_dir=Path(_env(env, "PUENTE_STORAGE_DIR", str(ROOT / "instance" / "storage"))),
            public_base_url=_env(env, "PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
            twilio_account_sid=_env(env, "TWILIO_ACCOUNT_SID"),
            twilio_auth_token=_env(env, "TWILIO_AUTH_TOKEN"),
            twilio_sms_from=_env(env, "TWILIO_SMS_FROM"),
            twilio_whatsapp_from=_env(env, "TWILIO_WHATSAPP_FROM"),
            twilio_api_url=_env(env, "TWILIO_API_URL", "https://api.twilio.com").rstrip("/"),
            telegram_bot_token=_env(env, "TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=_env(env, "TELEGRAM_WEBHOOK_SECRET"),
            telegram_api_url=_env(env, "TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            openai_api_key=_env(env, "OPENAI_API_KEY"),
            openai_base_url=_env(env, "OPENAI_BASE_URL"),
            openai_model=_env(env, "OPENAI_MODEL", "gpt-4o-mini"),
            stripe_api_key=_env(env, "STRIPE_API_KEY"),
            stripe_webhook_secret=_env(env, "STRIPE_WEBHOOK_SECRET"),
            stripe_api_url=_env(env, "STRIPE_API_URL", "https://api.stripe.com").rstrip("/"),
            clamd_address=_env(env, "CLAMD_ADDRESS"),
            production=production,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuses combinations that cannot work, naming the setting."""
        if self.production and self.secret_key == "dev-insecure-secret-key":
            raise SettingsError("PUENTE_SECRET_KEY is required when PUENTE_ENV=production")
        if self.production and not self.encryption_key:
            raise SettingsError("PUENTE_ENCRYPTION_KEY is required when PUENTE_ENV=production "
                                "(generate one with: puente documents new-key)")
        if self.encryption_key:
            from services.vault import MasterKeys

            try:
                MasterKeys.parse(self.encryption_key)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        if self.twilio_account_sid and not self.twilio_auth_token:
            raise SettingsError("TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set")
        if self.telegram_bot_token and not self.telegram_webhook_secret:
            raise SettingsError("TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_BOT_TOKEN is set")
        if not self.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed (tests, the demo)."""
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
