"""Runtime settings: one validated model whose fields mirror environment variables.

Read once through :func:`get_settings` (cached), never at import time. Tests call
``get_settings.cache_clear()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pdrelay.errors import ConfigError, validation_problems

DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
DEFAULT_API_URL = "https://api.pagerduty.com"


class Settings(BaseModel):
    """Each field is read from the environment variable named by its alias."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    config_source: str = Field(
        "",
        alias="PDRELAY_CONFIG",
        description="Where the routing/auth document lives: a file path, ssm:/name or secret:name. "
        "Empty: a one-route document built from PDRELAY_ROUTING_KEY and PDRELAY_TOKEN (local use).",
    )
    config_max_age_seconds: int = Field(60, alias="PDRELAY_CONFIG_MAX_AGE", ge=0)
    routing_key: str = Field("", alias="PDRELAY_ROUTING_KEY", description="Local use only.")
    token: str = Field("", alias="PDRELAY_TOKEN", description="Local use only.")
    queue_url: str = Field("", alias="PDRELAY_QUEUE_URL")
    dlq_url: str = Field("", alias="PDRELAY_DLQ_URL")
    table_name: str = Field("", alias="PDRELAY_TABLE_NAME")
    events_url: str = Field(DEFAULT_EVENTS_URL, alias="PDRELAY_EVENTS_URL")
    max_body_bytes: int = Field(256 * 1024, alias="PDRELAY_MAX_BODY_BYTES", gt=0)
    connect_timeout_seconds: float = Field(3.05, alias="PDRELAY_CONNECT_TIMEOUT", gt=0)
    read_timeout_seconds: float = Field(6.0, alias="PDRELAY_READ_TIMEOUT", gt=0)
    retry_base_seconds: int = Field(2, alias="PDRELAY_RETRY_BASE_SECONDS", ge=0)
    retry_max_seconds: int = Field(900, alias="PDRELAY_RETRY_MAX_SECONDS", ge=0, le=43200)
    record_ttl_days: int = Field(30, alias="PDRELAY_RECORD_TTL_DAYS", gt=0)
    rate_limit: int = Field(120, alias="PDRELAY_RATE_LIMIT", gt=0, description="Events per routing key per window.")
    rate_window_seconds: float = Field(60.0, alias="PDRELAY_RATE_WINDOW_SECONDS", gt=0)
    dispatch_concurrency: int = Field(
        5,
        alias="PDRELAY_DISPATCH_CONCURRENCY",
        gt=0,
        description="Dispatchers that may run at once (the template's DispatchMaxConcurrency): shares out the burst.",
    )
    throttle_pause_seconds: float = Field(2.0, alias="PDRELAY_THROTTLE_PAUSE_SECONDS", ge=0)
    throttle_max_pause_seconds: float = Field(60.0, alias="PDRELAY_THROTTLE_MAX_PAUSE_SECONDS", ge=0)
    breaker_threshold: int = Field(5, alias="PDRELAY_BREAKER_THRESHOLD", gt=0)
    breaker_cooldown_seconds: float = Field(5.0, alias="PDRELAY_BREAKER_COOLDOWN_SECONDS", gt=0)
    breaker_max_cooldown_seconds: float = Field(10.0, alias="PDRELAY_BREAKER_MAX_COOLDOWN_SECONDS", gt=0)
    max_hold_seconds: int = Field(
        86400,
        alias="PDRELAY_MAX_HOLD_SECONDS",
        gt=0,
        description="An alert not delivered this long after receipt goes to the DLQ.",
    )
    replay_window_seconds: int = Field(
        300,
        alias="PDRELAY_REPLAY_WINDOW_SECONDS",
        ge=0,
        description="A repeated request with an explicit delivery id within this window is not queued again.",
    )
    sweep_after_seconds: int = Field(900, alias="PDRELAY_SWEEP_AFTER_SECONDS", gt=0)
    caller_rate_limit: int = Field(
        600,
        alias="PDRELAY_CALLER_RATE_LIMIT",
        ge=0,
        description="Requests per caller per window unless its rate_limit says (0: off).",
    )
    caller_rate_window_seconds: int = Field(60, alias="PDRELAY_CALLER_RATE_WINDOW_SECONDS", gt=0)
    ingest_concurrency: int = Field(
        20,
        alias="PDRELAY_INGEST_CONCURRENCY",
        ge=0,
        description="Ingest functions that may run at once (the template's IngestReservedConcurrency): shares "
        "out each caller's burst, so a quiet caller's requests need no table write (0: each asks the table).",
    )
    signature_tolerance_seconds: int = Field(
        300,
        alias="PDRELAY_SIGNATURE_TOLERANCE_SECONDS",
        gt=0,
        le=3600,
        description="How far a signed request's timestamp may be from now.",
    )
    max_inflated_bytes: int = Field(
        1024 * 1024,
        alias="PDRELAY_MAX_INFLATED_BYTES",
        gt=0,
        description="A gzip body may inflate to at most this many bytes.",
    )
    max_alerts_per_request: int = Field(1000, alias="PDRELAY_MAX_ALERTS_PER_REQUEST", gt=0)
    max_string_chars: int = Field(
        65536, alias="PDRELAY_MAX_STRING_CHARS", gt=0, description="The longest string (or key) a JSON body may hold."
    )
    reconcile_every_minutes: int = Field(
        0,
        alias="PDRELAY_RECONCILE_EVERY_MINUTES",
        ge=0,
        le=1440,
        description="The sweep runs `pdrelay reconcile --fix` every this many minutes (0: never).",
    )
    reconcile_api_key_secret: str = Field(
        "",
        alias="PDRELAY_RECONCILE_API_KEY_SECRET",
        description="The Secrets Manager secret (ARN) with a read-only PagerDuty REST API key (empty: none).",
    )
    pagerduty_api_url: str = Field(DEFAULT_API_URL, alias="PDRELAY_PAGERDUTY_API_URL")
    windows_max_age_seconds: float = Field(
        15.0,
        alias="PDRELAY_WINDOWS_MAX_AGE",
        ge=0,
        description="How long the dispatcher caches `pdrelay maintenance` windows.",
    )

    @property
    def lease_seconds(self) -> float:
        """How long one send may hold its alert: the client's timeouts plus a wide margin (requests'
        timeouts are per phase, not a total). Released as soon as the send ends."""
        return self.connect_timeout_seconds + self.read_timeout_seconds + 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        try:
            return cls.model_validate({k: v for k, v in env.items() if k in names})
        except ValidationError as exc:
            raise ConfigError("invalid environment settings", validation_problems(exc)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
