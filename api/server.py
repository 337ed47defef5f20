"""What `neira serve` does around the app: hold the data dir, build the core with one-line start errors, warn
about weak tokens, and a uvicorn server that publishes where it listens (`<data-dir>/server.json`)."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import uvicorn

from neira.config import Settings
from neira.core import Core
from neira.data_dir import DataDirLock, remove_server_info, write_server_info
from neira.errors import DataDirLocked

log = logging.getLogger("neira.serve")

EXIT_DATA_DIR_LOCKED = 3
SHORT_TOKEN = 16
TOKEN_VARS = ("NEIRA_ADMIN_TOKEN", "NEIRA_OPERATOR_TOKEN", "NEIRA_VIEWER_TOKEN")


def warn_short_tokens(env: Mapping[str, str]) -> None:
    """A warning in the log for each role token set shorter than SHORT_TOKEN characters (never the token)."""
    for name in TOKEN_VARS:
        value = env.get(name)
        if value and len(value) < SHORT_TOKEN:
            log.warning("%s is shorter than %d characters; a short token is easy to guess", name, SHORT_TOKEN)


def no_driver(exc: ImportError) -> SystemExit:
    """The one-line exit for a database URL whose driver is not installed."""
    return SystemExit(f"neira: NEIRA_DATABASE_URL needs the database driver {exc.name or ''!s}, which is not "
                      "installed (pip install asyncpg, or neira[postgres])")


def make_core(settings: Settings) -> Core:
    """The core, or a one-line exit when the database URL names a driver that is not installed (or no
    database at all). The URL itself is not repeated: it may hold a password."""
    from sqlalchemy.exc import ArgumentError

    try:
        return Core(settings)
    except ImportError as exc:
        raise no_driver(exc) from None
    except ArgumentError:
        raise SystemExit("neira: NEIRA_DATABASE_URL is not a database URL neira can use") from None


def lock_data_dir(settings: Settings) -> DataDirLock | None:
    """Hold the SQLite data dir for this process (None for other databases: replicas share those). Exits
    with code 3 and a one-line message when another server holds it."""
    if not settings.db_url.startswith("sqlite"):
        return None
    lock = DataDirLock(settings.data_path)
    try:
        lock.acquire()
    except DataDirLocked as exc:
        print(f"neira: {exc.code}: {exc.reason}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_DATA_DIR_LOCKED) from None
    return lock


class Server(uvicorn.Server):
    """uvicorn's server, which once it listens writes `<data-dir>/server.json` and calls each of `on_listening`
    (what `neira serve` prints, the sign-in link, must only appear when the port is really ours), and removes
    the file when it stops. uvicorn runs the app's start-up (Litestar's on_startup) before it binds, so
    on_startup is too early; `startup()` returns after the bind, or exits the process when the bind fails."""

    def __init__(self, config: uvicorn.Config, data_dir: Path,
                 on_listening: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
        super().__init__(config)
        self.data_dir = data_dir
        self.on_listening = list(on_listening)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (app start-up, then bind), then server.json and the callbacks if it is up."""
        await super().startup(sockets)
        if not self.started or self.should_exit:
            return
        if self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            write_server_info(self.data_dir, f"http://{client_host(str(host))}:{port}")
        for callback in self.on_listening:
            await callback()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        remove_server_info(self.data_dir)
        await super().shutdown(sockets)


def client_host(host: str) -> str:
    """The address a local client uses to reach a server bound to `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
