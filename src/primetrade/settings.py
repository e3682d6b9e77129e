"""One typed settings object, read from the environment and `.env`."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "insecure-development-secret-change-me-0123456789abcdef"  # noqa: S105


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class LogFormat(StrEnum):
    console = "console"
    json = "json"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _check_proxy(entry: str) -> str:
    # Parsed as uvicorn's proxy middleware parses it: it would keep a malformed entry as a
    # literal name that no client address ever matches, silently trusting nobody.
    try:
        if "/" in entry:
            ipaddress.ip_network(entry)
        else:
            ipaddress.ip_address(entry)
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not an IP address or network ({exc})") from exc
    return entry


def _check_origin(origin: str) -> str:
    # Browsers send `scheme://host[:port]` exactly; anything else would never match.
    parts = urlsplit(origin)
    if origin != "*" and (
        parts.scheme not in {"http", "https"} or origin != f"{parts.scheme}://{parts.netloc}"
    ):
        raise ValueError(f"{origin!r} is not an origin such as https://app.example.com")
    return origin


class Settings(BaseSettings):
    """Every knob of the service; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = Field(
        Environment.development, description="development, test or production."
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./data/primetrade.db", description="SQLAlchemy async URL."
    )
    read_database_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Read replicas (comma separated SQLAlchemy URLs); reads go there, writes "
        "and a user's reads right after a write go to DATABASE_URL.",
    )
    redis_url: str | None = Field(
        None,
        description="Shared state for many instances (cache, rate limits, revocations); "
        "unset: in-process.",
    )
    redis_prefix: str = Field(
        "primetrade:", description="Prefix of every Redis key this service writes."
    )
    redis_timeout_seconds: float = Field(
        0.5, gt=0, description="Redis connect and command timeout (a dead Redis never stalls)."
    )
    redis_breaker_seconds: float = Field(
        5.0,
        ge=0,
        description="After a Redis failure, skip Redis this long before trying it again.",
    )
    cache_enabled: bool = Field(True, description="Cache reads (in-process, or Redis).")
    cache_ttl_task_list_seconds: int = Field(300, ge=1, description="Task list pages.")
    cache_ttl_task_seconds: int = Field(300, ge=1, description="Single tasks.")
    cache_ttl_stats_seconds: int = Field(60, ge=1, description="Task statistics.")
    cache_ttl_profile_seconds: int = Field(
        3600, ge=1, description="The signed-in user and session behind an access token."
    )
    cache_memory_max_entries: int = Field(
        10_000, ge=1, description="Entries the in-process cache keeps (least recently used go)."
    )
    db_pool_size: int = Field(10, ge=1, description="Connections kept per process (PostgreSQL).")
    db_max_overflow: int = Field(
        0,
        ge=0,
        description="Extra connections under burst; they are closed again as soon as the "
        "pool has idle ones, so under sustained load they churn: raise DB_POOL_SIZE instead.",
    )
    db_pool_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for a pooled connection."
    )
    db_connect_timeout: float = Field(3.0, gt=0, description="Seconds to open a new connection.")
    db_statement_timeout_ms: int = Field(15000, ge=0, description="PostgreSQL statement_timeout.")
    db_lock_timeout_ms: int = Field(
        5000,
        ge=1,
        description="How long a write waits for a lock before answering 503 (SQLite "
        "busy_timeout, PostgreSQL lock_timeout).",
    )
    db_pgbouncer: bool = Field(
        False,
        description="DATABASE_URL reaches PostgreSQL through PgBouncer in transaction pooling "
        "mode: no prepared-statement caches, unique statement names, timeouts per transaction.",
    )
    db_replica_pool_size: int = Field(
        10, ge=1, description="Connections kept per process to each read replica."
    )
    db_replica_check_seconds: float = Field(
        5.0,
        gt=0,
        description="How often replicas are probed for health and lag; a replica that failed "
        "a request is left out this long unless a probe finds it back sooner.",
    )
    read_your_writes_seconds: float = Field(
        5.0,
        ge=0,
        description="After a write, that user's reads go to the primary this long; a replica "
        "further behind than this is left out of the rotation.",
    )

    secret_key: str = Field(DEFAULT_SECRET_KEY, min_length=32, description="Signs tokens, cursors.")
    jwt_issuer: str = Field("primetrade", description="`iss` claim of access tokens.")
    jwt_audience: str = Field("primetrade-api", description="`aud` claim of access tokens.")
    access_token_ttl_seconds: int = Field(900, ge=30, description="Access token lifetime.")
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600, ge=60, description="Absolute lifetime of a sign-in session."
    )
    refresh_token_idle_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="A session unused this long expires."
    )
    password_hash_concurrency: int = Field(
        1, ge=1, description="Argon2 hashes computed at once per process (bounds CPU bursts)."
    )
    # OWASP's second Argon2id profile (19 MiB, 2 passes): strong, yet ~25 ms on a server core.
    password_hash_time_cost: int = Field(2, ge=1, le=10, description="Argon2id passes over memory.")
    password_hash_memory_kib: int = Field(
        19456,
        ge=1024,
        le=1024 * 1024,
        description="Argon2id memory per hash, in KiB (accounts upgrade when this changes).",
    )

    rate_limit_enabled: bool = Field(True, description="Turn every rate limit on or off.")
    rate_limit_storage_url: str = Field(
        "memory://", description="`limits` storage URL: memory:// or redis://host:port/db."
    )
    rate_limit_anonymous: str = Field("300/minute", description="Per client IP, no token.")
    rate_limit_user: str = Field("1200/minute", description="Per signed-in user.")
    rate_limit_auth: str = Field(
        "30/minute",
        description="Per IP on the sign-in, sign-up, refresh, verification and reset calls.",
    )
    rate_limit_login_failures: str = Field(
        "10/15minutes", description="Failed sign-ins per IP and email before 429."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma separated).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (comma separated)."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body.")
    idempotency_ttl_seconds: int = Field(86400, ge=60, description="How long keys replay.")

    broker_url: str | None = Field(
        None,
        description="Job broker: amqp://… (RabbitMQ) or redis://… (Redis); unset: jobs run "
        "inside the server process.",
    )
    broker_queue: str = Field(
        "primetrade-jobs", min_length=1, description="Broker queue the jobs travel on."
    )
    job_max_retries: int = Field(
        5, ge=0, description="Retries of a failing job before it goes to the dead jobs."
    )
    job_min_backoff_seconds: float = Field(
        15.0, gt=0, description="Wait before the first retry; doubled on each further one."
    )
    job_max_backoff_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts of a job."
    )
    job_time_limit_seconds: float = Field(600.0, gt=0, description="Longest run of one job.")
    job_retention_seconds: int = Field(
        7 * 24 * 3600,
        ge=3600,
        description="How long published outbox rows, finished runs "
        "and the sent-mail log are kept (deduplication by key holds this long).",
    )
    embedded_job_concurrency: int = Field(
        4, ge=1, description="Jobs run at once inside the server process (no BROKER_URL)."
    )
    embedded_scheduler: bool = Field(
        True, description="Without BROKER_URL, the server process also fires periodic jobs."
    )
    outbox_poll_seconds: float = Field(
        1.0, gt=0, description="How often the relay looks for jobs written by other processes."
    )
    outbox_batch_size: int = Field(100, ge=1, description="Outbox rows the relay takes at once.")
    outbox_max_backoff_seconds: float = Field(
        30.0, gt=0, description="Longest wait of the relay between tries while the broker is down."
    )

    mail_url: str = Field(
        "file://./data/mail",
        description="smtp://user:pass@host:port?starttls=true, smtps://…, file://DIR (log and "
        "write .eml files) or console:// (log only).",
    )
    mail_from: str = Field(
        "PrimeTrade Tasks <no-reply@primetrade.local>", description="Sender of every email."
    )
    mail_timeout_seconds: float = Field(10.0, gt=0, description="SMTP connect and command timeout.")
    mail_global_hourly_cap: int = Field(
        1000, ge=0, description="Emails sent per hour in all; beyond it sends are skipped."
    )
    mail_user_hourly_cap: int = Field(
        20, ge=0, description="Emails sent per hour to one user; beyond it sends are skipped."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000", description="Where people reach the service (links in emails)."
    )

    export_dir: str = Field("./data/exports", description="Directory of finished export files.")
    export_ttl_seconds: int = Field(
        86400, ge=60, description="How long an export file can be downloaded after it is built."
    )
    export_batch_size: int = Field(
        500, ge=1, le=10_000, description="Tasks an export reads and writes per batch."
    )
    import_max_bytes: int = Field(
        1_048_576, ge=1, description="Largest import file (MAX_BODY_BYTES still caps requests)."
    )
    import_max_rows: int = Field(5000, ge=1, description="Most rows one import may hold.")
    archive_after_days: int = Field(
        182, ge=1, description="Tasks completed longer ago than this are archived (daily)."
    )
    require_email_verification: bool | None = Field(
        None,
        description="Sign-in needs a verified email address; unset: on in production, off "
        "elsewhere (see `email_verification_required`).",
    )
    email_verification_ttl_seconds: int = Field(
        172800, gt=0, description="How long an email verification link works."
    )
    password_reset_ttl_seconds: int = Field(
        1800, gt=0, description="How long a password reset link works."
    )
    digest_hour_utc: int = Field(
        7, ge=0, le=23, description="Hour (UTC) at which the daily digest goes out."
    )
    reminder_lead_minutes: int = Field(
        60, gt=0, description="Reminders go out this long before a task's due time."
    )

    log_format: LogFormat | None = Field(
        None, description="console or json; default json in production, console elsewhere."
    )
    log_level: str = Field("INFO", description="Root log level.")
    access_log: bool = Field(True, description="Log one line per request.")

    @field_validator("trusted_proxies", "cors_origins", "read_database_urls", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        return value if value == ["*"] else [_check_proxy(entry) for entry in value]

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        return [_check_origin(origin) for origin in value]

    @model_validator(mode="after")
    def _replicas_need_postgresql(self) -> Settings:
        urls = [self.database_url, *self.read_database_urls]
        if self.read_database_urls and not all(url.startswith("postgresql") for url in urls):
            raise ValueError("READ_DATABASE_URLS needs PostgreSQL URLs, for it and DATABASE_URL")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        # Only a laptop in development may run on the published placeholder: anything else
        # (a test deployment, staging, production) would sign tokens anyone can forge.
        if (
            self.environment is not Environment.development
            and self.secret_key == DEFAULT_SECRET_KEY
        ):
            raise ValueError(
                f"SECRET_KEY must be set to a private value outside development "
                f"(ENVIRONMENT={self.environment.value})"
            )
        return self

    @property
    def email_verification_required(self) -> bool:
        # Unset means "what the environment calls for": a public production service must
        # prove addresses; development and tests sign in right after registering.
        if self.require_email_verification is not None:
            return self.require_email_verification
        return self.environment is Environment.production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        if self.environment is Environment.production:
            return LogFormat.json
        return LogFormat.console


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, built once."""
    return Settings()
