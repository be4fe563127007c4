"""Settings: environment (`HUB_*`) or hub.toml, validated once at start.

The names are part of the product's contract (DESIGN.md): extend, never rename.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hub.errors import ConfigError

DEMO_SECRET = "demo-secret-change-me"  # noqa: S105  # nosec B105: a known default, refused outside demo mode


class Mode(StrEnum):
    DEMO = "demo"
    PRODUCTION = "production"


class AuthMode(StrEnum):
    AUTO = "auto"  # keys required in production, optional in demo mode
    KEYS = "keys"  # every API call but /health and /metrics needs an API key
    OFF = "off"  # a call without a key runs as admin: loopback binds only


class BusKind(StrEnum):
    EMBEDDED = "embedded"
    KAFKA = "kafka"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", toml_file="hub.toml", extra="ignore")

    data_dir: Path = Path("hub-data")
    mode: Mode = Mode.DEMO
    bus: BusKind = BusKind.EMBEDDED
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_replication_factor: int = Field(default=1, ge=1)  # production clusters want 3
    # A stable name per `hub serve` node (Kafka only): its group members are static, so a node
    # restarted after a crash resumes at once instead of after the session timeout. Unique per node.
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    db_url: str | None = None  # default: SQLite file in the data dir
    # Raw archive, its outbox, translation status and dead letters in PostgreSQL instead of the
    # data dir's SQLite file: what several `hub serve` nodes share (may equal HUB_DB_URL).
    archive_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=1, le=65535)
    mllp_tls_cert: Path | None = None  # PEM; with mllp_tls_key, the listener speaks MLLP over TLS
    mllp_tls_key: Path | None = None
    mllp_max_bytes: int = 16 * 1024 * 1024
    # Unauthenticated peers must not hold the listener: connections at once (more are closed and
    # logged), seconds for a begun frame to end, seconds a connection may wait between frames.
    mllp_max_connections: int = Field(default=64, ge=1)
    mllp_read_timeout: float = Field(default=30.0, gt=0)
    mllp_idle_timeout: float = Field(default=300.0, gt=0)
    # Unfinished frames of all connections together: bounds memory below connections x frame limit.
    mllp_max_buffered_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # translation: AE with ERR for a message that would be dead-lettered (translate before ACK).
    # storage: AA once stored; translation failures are dead-lettered afterwards (faster feeds).
    mllp_ack_after: Literal["translation", "storage"] = "translation"
    # Processes that translate to answer (translation mode), beside the listener's; 0 (default)
    # translates in the listener's process. On 2 shared cores the extra process measured slower
    # (bench_e2e_mllp): worth it where cores are free.
    mllp_translate_processes: int = Field(default=0, ge=0, le=64)
    mllp_strict: bool = False  # opt-in: hl7apy validation against the message's HL7 version; problems -> AE
    topic_prefix: str = ""
    site: str = "main"
    tz: str = "Asia/Shanghai"
    secret_key: SecretStr = SecretStr(DEMO_SECRET)
    raw_key: SecretStr | None = None
    # Production without HUB_RAW_KEY only when the disk is encrypted some other way, said explicitly.
    raw_plaintext: bool = False
    auth: AuthMode = AuthMode.AUTO
    # Serve without authentication on a non-loopback address (an authenticating proxy in front).
    allow_open_bind: bool = False
    mapping_dir: Path | None = None  # per-hospital mapping overrides: <dir>/<system>.yaml
    log_format: str = "auto"  # auto | json | console
    # debug | info | warning | error. Unset: info for `hub serve` (one line per request and per
    # batch), warning for the other commands (their output is the answer, not the log).
    log_level: str | None = None
    max_file_bytes: int = 256 * 1024 * 1024
    # Internal addresses webhooks may reach (addresses, CIDR networks or host names, as a JSON
    # list): loopback, private and link-local targets are refused otherwise (hub.delivery.webhooks.targets).
    webhook_allow: list[str] = Field(default_factory=list)
    # Webhook delivery tuning (hub.delivery.webhooks): seconds per POST; retry backoff doubling from
    # initial to cap (jittered); partitions of one subscription POSTed to at once (order per
    # partition always holds); consecutive failures of one event that pause the subscription
    # (0: retry for ever; nothing is skipped either way); days of delivery log kept; hours a
    # rotated-out secret keeps signing beside the new one.
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_backoff_initial_s: float = Field(default=1.0, gt=0)
    webhook_backoff_cap_s: float = Field(default=300.0, gt=0)
    webhook_concurrency: int = Field(default=1, ge=1, le=64)
    webhook_max_attempts: int = Field(default=0, ge=0)
    webhook_log_days: float = Field(default=30.0, gt=0)
    webhook_rotation_overlap_h: float = Field(default=24.0, ge=0, le=24 * 30)
    # Alert rules (YAML; hub.delivery.alerts.rules). Unset: the bundled defaults. Evaluated by
    # `hub serve` every HUB_ALERT_INTERVAL_S seconds.
    alert_rules: Path | None = None
    alert_interval_s: float = Field(default=30.0, gt=0)
    # Notification rules (YAML; projections.notifications.rules). Unset: the bundled defaults.
    notify_rules: Path | None = None
    # Device-health rules by device type (YAML); unset: projections/device_health/default_rules.yaml.
    device_rules: Path | None = None
    # Days of raw telemetry records kept per device, counted back from its latest record (the
    # window moves once a day, at an hour fixed per device, so devices do not all roll up at
    # midnight); older records are rolled up per metric by hour and day (min/max/mean/last/count)
    # and removed. 0 keeps every raw record (the device-days the rules judge are kept either way).
    telemetry_raw_days: int = Field(default=30, ge=0, le=3660)
    # Hours a one-time acknowledgement link in a robot/webhook message stays usable (0: no links).
    notify_ack_link_hours: int = Field(default=24, ge=0)
    # A file is translated, diffed and published this many rows at a time (memory: one chunk).
    file_chunk_rows: int = Field(default=2_000, ge=1)
    # How often the read models let time alone conclude things (due dates passed, SLA breaches,
    # notifications escalated or expired): seconds between two ticks of the projection runner.
    projection_tick_s: float = Field(default=30.0, gt=0)
    # `hub serve` with every role: 2 runs the read models (and webhooks, notifications, alerts) in
    # a child process beside ingest, translation and the API, so a 2-core machine uses both cores;
    # 1 keeps everything in one process; auto = 2 where there are 2 cores or more.
    serve_processes: Literal["auto"] | Annotated[int, Field(ge=1, le=2)] = "auto"
    # What one file's translation may hold (its bytes, decoded text, an XLSX's shared strings, one
    # chunk): a file estimated above it is refused before reading, with the reason, the raw kept.
    file_memory_budget_mb: int = Field(default=256, ge=1)
    # GET /health/ready reports "degraded" past these: records the projections are behind (their
    # derived-event outbox included), free MB left in the data dir, seconds one check may take.
    health_max_lag: int = Field(default=10_000, ge=0)
    health_min_free_mb: int = Field(default=1_024, ge=0)
    health_timeout_s: float = Field(default=3.0, gt=0)
    # Scan-to-report (hub.scan): the address phones reach the hub at, as printed in the labels'
    # QR codes (`<public_url>/r/<asset id>?k=<reporting key>`); the CJK font the label PDF embeds
    # (TTF/TTC; unset: the first of the usual system paths, e.g. Debian's fonts-wqy-microhei);
    # symptom choices per device category (YAML; unset: the bundled ones); reports allowed per
    # minute per reporting key and per client address (429 with Retry-After past them).
    public_url: str = "http://127.0.0.1:8000"
    label_font: Path | None = None
    scan_symptoms: Path | None = None
    scan_reports_per_key_per_minute: int = Field(default=30, ge=1)
    scan_reports_per_client_per_minute: int = Field(default=6, ge=1)
    scan_views_per_client_per_minute: int = Field(default=120, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003  (no .env files: settings come from env or hub.toml)
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over hub.toml, so an operator can override one value for one run.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls), file_secret_settings)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, naming it
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value and not value.endswith("."):
            value += "."
        return value

    @field_validator("archive_url")
    @classmethod
    def _archive_on_postgres(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            msg = (
                "HUB_ARCHIVE_URL must be a PostgreSQL URL (postgresql://user@host/db);"
                " unset, the raw archive is SQLite in the data dir"
            )
            raise ConfigError(msg)
        if value and value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        return value or None

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.mode is Mode.PRODUCTION and self.secret_key.get_secret_value() == DEMO_SECRET:
            msg = "HUB_SECRET_KEY is the demo default; set a real secret before HUB_MODE=production"
            raise ConfigError(msg)
        if self.mode is Mode.PRODUCTION and self.raw_key is None and not self.raw_plaintext:
            msg = (
                "HUB_MODE=production keeps raw messages (patient data) encrypted at rest: set HUB_RAW_KEY"
                " (openssl rand -hex 32), or HUB_RAW_PLAINTEXT=true if the disk is encrypted otherwise"
            )
            raise ConfigError(msg)
        return self

    @model_validator(mode="after")
    def _no_open_api_beyond_loopback(self) -> Settings:
        if not self.auth_required and not self.allow_open_bind and not _is_loopback(self.api_host):
            msg = (
                f"HUB_API_HOST={self.api_host} would serve the API without authentication beyond this"
                " machine; set HUB_AUTH=keys (and create keys with `hub keys create`), or bind to"
                " 127.0.0.1, or set HUB_ALLOW_OPEN_BIND=true if an authenticating proxy is in front"
            )
            raise ConfigError(msg)
        return self

    @property
    def auth_required(self) -> bool:
        """Whether every API call (but /health and /metrics) must present an API key."""
        if self.auth is AuthMode.AUTO:
            return self.mode is Mode.PRODUCTION
        return self.auth is AuthMode.KEYS

    @property
    def secret_bytes(self) -> bytes:
        """Key for keyed hashes (patient tokens). Changing it changes every token: keep it stable."""
        return self.secret_key.get_secret_value().encode()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def database_url(self) -> str:
        """Read-model database: HUB_DB_URL, else a SQLite file in the data dir."""
        return self.db_url or f"sqlite:///{(self.data_dir / 'readmodels.db').resolve()}"

    @property
    def bus_path(self) -> Path:
        return self.data_dir / "bus.db"

    @property
    def archive_path(self) -> Path:
        return self.data_dir / "archive.db"

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False
