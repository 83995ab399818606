"""Settings: read once from the environment (and `.env` when present), then passed down."""
from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names it in one line."""


def _env(environ: dict[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else default


def _int(environ: dict[str, str], name: str, default: int) -> int:
    value = _env(environ, name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None


def _days(environ: dict[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """A comma-separated list of whole days ("7,1"); empty turns the feature off ("none")."""
    value = _env(environ, name)
    if value is None:
        return default
    if value.strip().lower() == "none":
        return ()
    try:
        days = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name} must be whole days separated by commas (e.g. 7,1), got {value!r}") from None
    if any(d < 1 or d > 365 for d in days):
        raise SettingsError(f"{name} days must be between 1 and 365, got {value!r}")
    return days


def _percent(name: str, value: str) -> Decimal:
    try:
        percent = Decimal(value)
    except InvalidOperation:
        raise SettingsError(f"{name} must be a number (a percentage), got {value!r}") from None
    if not Decimal("0") <= percent <= Decimal("10"):
        raise SettingsError(f"{name} must be between 0 and 10 (percent), got {value!r}")
    return percent


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
    # Payments: "stripe" | "embedded" (a test page, no money moves) | "none" (instructions only).
    payments_provider: str = "embedded"
    stripe_trust_api_key: str | None = None  # a separate Stripe account for trust (IOLTA) money
    stripe_trust_account: str | None = None  # or a connected account id (acct_…) for trust
    stripe_operating_account: str | None = None  # a connected account id for operating (optional)
    stripe_trust_webhook_secret: str | None = None  # the trust account's own endpoint secret
    payments_surcharge_percent: str = "0"  # card surcharge on operating invoices only
    payments_trust_surcharge_percent: str = "0"  # must stay 0: never a surcharge on trust money
    payment_link_days: int = 7
    payment_reminder_interval_days: int = 7
    payment_reminder_max: int = 3
    # Proactive messages (services.proactive): days before a deadline; idle days before each document nudge.
    deadline_reminder_days: tuple[int, ...] = (7, 1)
    nudge_days: tuple[int, ...] = (3, 7, 14)
    # The embedded demo: simulator page on, demo data seeded.
    demo: bool = False
    production: bool = False
    smtp_url: str | None = None
    smtp_from: str = "puente@localhost"
    console_idle_minutes: int = 15
    console_absolute_hours: int = 10
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
            payments_provider=_env(env, "PAYMENTS_PROVIDER", "stripe" if _env(env, "STRIPE_API_KEY")
                                   else "none" if production else "embedded"),
            stripe_trust_api_key=_env(env, "STRIPE_TRUST_API_KEY"),
            stripe_trust_account=_env(env, "STRIPE_TRUST_ACCOUNT"),
            stripe_operating_account=_env(env, "STRIPE_OPERATING_ACCOUNT"),
            stripe_trust_webhook_secret=_env(env, "STRIPE_TRUST_WEBHOOK_SECRET"),
            payments_surcharge_percent=_env(env, "PAYMENTS_SURCHARGE_PERCENT", "0"),
            smtp_url=_env(env, "SMTP_URL"),
            smtp_from=_env(env, "SMTP_FROM", "puente@localhost"),
            console_idle_minutes=_int(env, "CONSOLE_IDLE_MINUTES", 15),
            console_absolute_hours=_int(env, "CONSOLE_ABSOLUTE_HOURS", 10),
            payments_trust_surcharge_percent=_env(env, "PAYMENTS_TRUST_SURCHARGE_PERCENT", "0"),
            payment_link_days=_int(env, "PAYMENT_LINK_DAYS", 7),
            payment_reminder_interval_days=_int(env, "PAYMENT_REMINDER_INTERVAL_DAYS", 7),
            payment_reminder_max=_int(env, "PAYMENT_REMINDER_MAX", 3),
            deadline_reminder_days=_days(env, "DEADLINE_REMINDER_DAYS", (7, 1)),
            nudge_days=tuple(sorted(_days(env, "NUDGE_DAYS", (3, 7, 14)))),
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
        self._check_payments()
        if not self.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")

    def _check_payments(self) -> None:
        """Trust money never pays a surcharge and never lands in the operating account."""
        if _percent("PAYMENTS_TRUST_SURCHARGE_PERCENT", self.payments_trust_surcharge_percent) != 0:
            raise SettingsError("PAYMENTS_TRUST_SURCHARGE_PERCENT must be 0: card fees are never charged to trust (client) money")
        _percent("PAYMENTS_SURCHARGE_PERCENT", self.payments_surcharge_percent)
        if self.payments_provider not in ("stripe", "embedded", "none"):
            raise SettingsError("PAYMENTS_PROVIDER must be stripe, embedded or none")
        if self.payments_provider == "stripe":
            if not self.stripe_api_key:
                raise SettingsError("STRIPE_API_KEY is required when PAYMENTS_PROVIDER=stripe")
            if not self.stripe_webhook_secret:
                raise SettingsError("STRIPE_WEBHOOK_SECRET is required when PAYMENTS_PROVIDER=stripe")
            if not (self.stripe_trust_api_key or self.stripe_trust_account):
                raise SettingsError("STRIPE_TRUST_API_KEY or STRIPE_TRUST_ACCOUNT is required when PAYMENTS_PROVIDER=stripe "
                                    "(trust money never goes to the operating account)")
            if self.stripe_trust_account and self.stripe_trust_account == self.stripe_operating_account:
                raise SettingsError("STRIPE_TRUST_ACCOUNT must differ from STRIPE_OPERATING_ACCOUNT")
        if self.production and self.payments_provider == "embedded":
            raise SettingsError("PAYMENTS_PROVIDER=embedded is a test page (no money moves); use stripe or none "
                                "when PUENTE_ENV=production")
        if self.payment_link_days < 1 or self.payment_reminder_interval_days < 1 or self.payment_reminder_max < 0:
            raise SettingsError("PAYMENT_LINK_DAYS and PAYMENT_REMINDER_INTERVAL_DAYS must be at least 1, "
                                "PAYMENT_REMINDER_MAX at least 0")

    @property
    def surcharge_percent(self) -> Decimal:
        """The card surcharge on operating invoices (trust invoices never have one)."""
        return Decimal(self.payments_surcharge_percent)

    def with_(self, **changes) -> "Settings":
        """A copy with some fields changed (tests, the demo)."""
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
