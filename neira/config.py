"""Settings from the command line and the environment (contract §1)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from neira.structs import Base

log = logging.getLogger("neira.config")

DEFAULT_STAGE_DELAYS_MS = (50, 50, 50)
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RUN_QUEUE = 64
DEFAULT_RUN_TIMEOUT_MS = 2000
# sandboxed backends (script, wasm), per run: contract §8, docs/runtime.md "Sandboxes"
DEFAULT_SANDBOX_FUEL = 10_000_000  # VM instructions (Shopify Functions allow 11 M)
DEFAULT_SANDBOX_TIMEOUT_MS = 1000  # wall clock, under the run's own limit, so the sandbox names the limit
DEFAULT_SANDBOX_MEMORY_MB = 64
DEFAULT_SANDBOX_OUTPUT_BYTES = 1 << 20


class Settings(Base):
    """Everything the core and the app need to start."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "./var"
    database_url: str | None = None
    listen_url: str | None = None  # PostgreSQL: where the change listener connects, when not database_url (PgBouncer)
    admin_token: str | None = None
    operator_token: str | None = None
    viewer_token: str | None = None
    stage_delays_ms: tuple[int, int, int] = DEFAULT_STAGE_DELAYS_MS
    capabilities: dict[str, str] = {}
    safe_mode: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    examples_dir: str | None = None
    run_workers: int = 0  # 0: the number of cores
    run_queue: int = DEFAULT_RUN_QUEUE
    run_timeout_ms: int = DEFAULT_RUN_TIMEOUT_MS
    analysis_interval_ms: int = 1000  # canary analysis: how often samples run again for a record or organ under analysis
    sweep_interval_ms: int = 2000  # how often builds whose stage is overdue (a replica died) are taken over; 0: never
    sweep_grace_ms: int = 2000  # how far past its deadline a stage must be before another replica takes it over
    canary_share: float = 0.2  # the share of a stable version's runs shadowed to its canary/experimental versions
    integrity_interval_s: int = 60  # the immune system checks the catalog's files against their digests this often
    plan_ttl_s: int = 86400  # a plan nobody applied is dropped this long after it was said; 0: kept for ever
    sandbox_fuel: int = DEFAULT_SANDBOX_FUEL
    sandbox_timeout_ms: int = DEFAULT_SANDBOX_TIMEOUT_MS
    sandbox_memory_mb: int = DEFAULT_SANDBOX_MEMORY_MB
    sandbox_output_bytes: int = DEFAULT_SANDBOX_OUTPUT_BYTES
    db_pool_size: int = 5  # PostgreSQL: connections each replica keeps open
    db_max_overflow: int = 10  # PostgreSQL: connections opened past the pool under a burst, closed after
    db_pool_timeout_s: int = 30  # PostgreSQL: how long a request waits for a free connection before failing

    @property
    def data_path(self) -> Path:
        """The data directory as a Path."""
        return Path(self.data_dir)

    @property
    def db_url(self) -> str:
        """The SQLAlchemy async URL: the given one, or SQLite in the data dir."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
            return url
        return f"sqlite+aiosqlite:///{self.data_path / 'neira.db'}"

    @property
    def workers(self) -> int:
        """Run worker processes: the setting, else the number of cores."""
        return self.run_workers or os.cpu_count() or 1


def parse_stage_delays(raw: str | None) -> tuple[int, int, int]:
    """`50,100,200` → (50, 100, 200); missing or invalid places keep their defaults."""
    delays = list(DEFAULT_STAGE_DELAYS_MS)
    if not raw:
        return tuple(delays)  # type: ignore[return-value]
    for i, part in enumerate(raw.split(",")[:3]):
        try:
            value = int(part.strip())
        except ValueError:
            log.warning("ignoring invalid stage delay at position %d", i + 1)
            continue
        if value < 0:
            log.warning("ignoring negative stage delay at position %d", i + 1)
            continue
        delays[i] = value
    return tuple(delays)  # type: ignore[return-value]


def parse_capabilities(raw: str | None) -> dict[str, str]:
    """`factory_script=experimental,organs_builder=disabled` → dict (validated later by the policy engine)."""
    result: dict[str, str] = {}
    for part in (raw or "").split(","):
        name, sep, state = part.partition("=")
        if sep and name.strip() and state.strip():
            result[name.strip()] = state.strip()
    return result


def _port(raw: str) -> int:
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"NEIRA_PORT must be a port number (1-65535), not {raw!r}")
    return int(raw)


def _count(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    """A whole number ≥ `low` from the environment; anything else keeps the default, with a warning."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    if not raw.strip().isdigit() or int(raw) < low:
        log.warning("ignoring %s=%r: a whole number of at least %d is expected", name, raw, low)
        return default
    return int(raw)


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    """A share between 0 and 1 from the environment; anything else keeps the default, with a warning."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        log.warning("ignoring %s=%r: a number from 0 to 1 is expected", name, raw)
        return default
    return value


def _flag(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "true", "yes", "on"}


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from NEIRA_* and ORGANS_BUILDER_* variables; explicit overrides (CLI flags) win."""
    env = os.environ if env is None else env
    delays_raw = env.get("ORGANS_BUILDER_STAGE_DELAYS")
    if delays_raw is None and env.get("ORGANS_BUILDER_STAGE_DELAYS_MS") is not None:
        log.warning("ORGANS_BUILDER_STAGE_DELAYS_MS is deprecated; use ORGANS_BUILDER_STAGE_DELAYS")
        delays_raw = env["ORGANS_BUILDER_STAGE_DELAYS_MS"]
    values: dict[str, object] = {
        "host": env.get("NEIRA_HOST", "127.0.0.1"),
        "port": _port(env.get("NEIRA_PORT", "8000")),
        "data_dir": env.get("NEIRA_DATA_DIR", "./var"),
        "database_url": env.get("NEIRA_DATABASE_URL") or None,
        "listen_url": env.get("NEIRA_DATABASE_LISTEN_URL") or None,
        "admin_token": env.get("NEIRA_ADMIN_TOKEN") or None,
        "operator_token": env.get("NEIRA_OPERATOR_TOKEN") or None,
        "viewer_token": env.get("NEIRA_VIEWER_TOKEN") or None,
        "stage_delays_ms": parse_stage_delays(delays_raw),
        "capabilities": parse_capabilities(env.get("NEIRA_CAPABILITIES")),
        "safe_mode": _flag(env.get("NEIRA_SAFE_MODE")),
        "run_workers": _count(env, "NEIRA_RUN_WORKERS", 0, 1),
        "run_queue": _count(env, "NEIRA_RUN_QUEUE", DEFAULT_RUN_QUEUE, 0),
        "run_timeout_ms": _count(env, "NEIRA_RUN_TIMEOUT_MS", DEFAULT_RUN_TIMEOUT_MS, 1),
        "analysis_interval_ms": _count(env, "NEIRA_ANALYSIS_INTERVAL_MS", 1000, 0),
        "sweep_interval_ms": _count(env, "NEIRA_SWEEP_INTERVAL_MS", 2000, 0),
        "sweep_grace_ms": _count(env, "NEIRA_SWEEP_GRACE_MS", 2000, 0),
        "canary_share": _share(env, "NEIRA_CANARY_SHARE", 0.2),
        "integrity_interval_s": _count(env, "NEIRA_INTEGRITY_INTERVAL_S", 60, 0),
        "plan_ttl_s": _count(env, "NEIRA_PLAN_TTL_S", 86400, 0),
        "sandbox_fuel": _count(env, "NEIRA_SANDBOX_FUEL", DEFAULT_SANDBOX_FUEL, 1000),
        "sandbox_timeout_ms": _count(env, "NEIRA_SANDBOX_TIMEOUT_MS", DEFAULT_SANDBOX_TIMEOUT_MS, 1),
        "sandbox_memory_mb": _count(env, "NEIRA_SANDBOX_MEMORY_MB", DEFAULT_SANDBOX_MEMORY_MB, 1),
        "sandbox_output_bytes": _count(env, "NEIRA_SANDBOX_OUTPUT_BYTES", DEFAULT_SANDBOX_OUTPUT_BYTES, 1),
        "db_pool_size": _count(env, "NEIRA_DB_POOL_SIZE", 5, 1),
        "db_max_overflow": _count(env, "NEIRA_DB_MAX_OVERFLOW", 10, 0),
        "db_pool_timeout_s": _count(env, "NEIRA_DB_POOL_TIMEOUT_S", 30, 1),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]
