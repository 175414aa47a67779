"""Settings, read once from the environment (and overridden by the CLI).

A plain dataclass rather than pydantic-settings: there are a handful of values and
the parsing rules fit on one screen, so another dependency would buy nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

DEFAULT_DATABASE_URL = "sqlite:///syncstream.db"
DEFAULT_BUS_URL = "memory://"


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        least = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {least}, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{name} must be on or off, got {raw!r}")


def _env_list(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    bus_url: str = DEFAULT_BUS_URL
    #: The doorbell's channel (Redis channel, NATS subject token, PostgreSQL NOTIFY
    #: channel). None: derived from the database URL (see ``channel_for_database``).
    bus_channel: str | None = None
    database_pool_size: int = 10
    keepalive_seconds: float = 30.0
    slow_consumer_messages: int = 1000
    retry_ms: int = 5000
    max_body_bytes: int = 1024 * 1024
    #: How often each process reads the log even when no doorbell rang: the safety net
    #: that makes a lost notification cost latency, never data.
    poll_seconds: float = 1.0
    catchup_page_size: int = 1000
    #: Bytes of activities (their stored JSON, plus a fixed overhead each) one read of the
    #: log for a stream holds: an SSE catch-up page, a JSON page. A single larger activity
    #: is still read alone, so every reader moves on.
    page_bytes: int = 1024 * 1024
    #: The newest activities each process keeps after routing them (and reads at start),
    #: at most so many and about so many bytes: a stream resuming within them catches up
    #: from memory, not the database (a restart's reconnections). 0 turns it off.
    recent_activities: int = 4096
    recent_bytes: int = 8 * 1024 * 1024
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    #: Failed sign-ins allowed per account in one window (per client address: ten times as many).
    #: Argon2id cost of new password hashes (argon2-cffi's defaults).
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    sign_in_attempts: int = 10
    sign_in_window_seconds: float = 60.0
    #: Admission (docs/reliability.md, "Attacks on an open server"). A request's head must
    #: arrive whole within this many seconds of its first byte (or of the connection), its
    #: body within that many of its head (Apache's and nginx's defaults); then the
    #: connection is closed.
    head_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 60.0
    #: How long a stream request waits for one of the 64 opening slots before a 503.
    stream_open_wait_seconds: float = 10.0
    #: Open streams per user and per client address (an IPv6 /64): one person's browsers
    #: and devices, not a flood; past them a 429. ``max_streams`` caps the process (None:
    #: derived from the open-file limit, see syncstream.admission).
    streams_per_user: int = 32
    streams_per_address: int = 64
    max_streams: int | None = None
    #: Password hashes (sign-up, sign-in) running at once per process, and how many more
    #: may wait for one; past that, 503. Bounds hashing memory to concurrency * memory_kib.
    password_concurrency: int = 2
    password_queue: int = 32
    #: Sign-ups allowed per client address in one window.
    sign_ups_per_address: int = 20
    sign_up_window_seconds: float = 3600.0
    #: A session ends after this long unused, and this long after sign-in whatever happens.
    session_idle_seconds: float = 14 * 86400.0
    session_max_seconds: float = 90 * 86400.0
    #: Change capture in the database (docs/capture.md): triggers on every declared entity
    #: table record the writes made by any other client. Installed at start when on,
    #: removed at start when off.
    capture: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("SYNCSTREAM_DATABASE_URL") or DEFAULT_DATABASE_URL,
            bus_url=os.environ.get("SYNCSTREAM_BUS_URL") or DEFAULT_BUS_URL,
            bus_channel=os.environ.get("SYNCSTREAM_BUS_CHANNEL", "").strip() or None,
            database_pool_size=_env_int("SYNCSTREAM_DATABASE_POOL_SIZE", 10),
            keepalive_seconds=_env_float("SYNCSTREAM_KEEPALIVE_SECONDS", 30.0),
            slow_consumer_messages=_env_int("SYNCSTREAM_SLOW_CONSUMER_MESSAGES", 1000),
            retry_ms=_env_int("SYNCSTREAM_RETRY_MS", 5000),
            max_body_bytes=_env_int("SYNCSTREAM_MAX_BODY_BYTES", 1024 * 1024),
            poll_seconds=_env_float("SYNCSTREAM_POLL_SECONDS", 1.0),
            page_bytes=_env_int("SYNCSTREAM_PAGE_BYTES", 1024 * 1024),
            recent_activities=_env_int("SYNCSTREAM_RECENT_ACTIVITIES", 4096, minimum=0),
            recent_bytes=_env_int("SYNCSTREAM_RECENT_BYTES", 8 * 1024 * 1024),
            cors_origins=_env_list("SYNCSTREAM_CORS_ORIGINS"),
            password_time_cost=_env_int("SYNCSTREAM_PASSWORD_TIME_COST", 3),
            password_memory_kib=_env_int("SYNCSTREAM_PASSWORD_MEMORY_KIB", 65536),
            sign_in_attempts=_env_int("SYNCSTREAM_SIGN_IN_ATTEMPTS", 10),
            sign_in_window_seconds=_env_float("SYNCSTREAM_SIGN_IN_WINDOW_SECONDS", 60.0),
            head_timeout_seconds=_env_float("SYNCSTREAM_HEAD_TIMEOUT_SECONDS", 20.0),
            body_timeout_seconds=_env_float("SYNCSTREAM_BODY_TIMEOUT_SECONDS", 60.0),
            stream_open_wait_seconds=_env_float("SYNCSTREAM_STREAM_OPEN_WAIT_SECONDS", 10.0),
            streams_per_user=_env_int("SYNCSTREAM_STREAMS_PER_USER", 32),
            streams_per_address=_env_int("SYNCSTREAM_STREAMS_PER_ADDRESS", 64),
            max_streams=_env_int("SYNCSTREAM_MAX_STREAMS", 0) or None,
            password_concurrency=_env_int("SYNCSTREAM_PASSWORD_CONCURRENCY", 2),
            password_queue=_env_int("SYNCSTREAM_PASSWORD_QUEUE", 32),
            sign_ups_per_address=_env_int("SYNCSTREAM_SIGN_UPS_PER_ADDRESS", 20),
            sign_up_window_seconds=_env_float("SYNCSTREAM_SIGN_UP_WINDOW_SECONDS", 3600.0),
            session_idle_seconds=_env_float("SYNCSTREAM_SESSION_IDLE_SECONDS", 14 * 86400.0),
            session_max_seconds=_env_float("SYNCSTREAM_SESSION_MAX_SECONDS", 90 * 86400.0),
            capture=_env_bool("SYNCSTREAM_CAPTURE", False),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given non-None values replaced (CLI flags win over env)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
