"""Several real `neira serve` processes on one PostgreSQL database: the multi-replica suite's harness (issue 16).

Each replica is a `tests.e2e.server.Server` (the subprocess helper every real-server test uses) with its own data
dir and port, and the same database URL, role tokens and settings, so the replicas are interchangeable behind a
load balancer:
- the admin token comes from `NEIRA_ADMIN_TOKEN` (never from `<data-dir>/admin_token`, which is per data dir);
- the catalog's index lives in the database; each replica registers the same examples at start (idempotent,
  one row each) and writes their files into its own `<data-dir>/cells/` (`Catalog.repair_files`).

`Replicas.start()` starts the first one alone, then the others at once (or all at once, `together=True`: they race
for the migration lock and the examples' registration, as a real roll-out does), and returns once every one
answers `/healthz` 200. A replica that exits early or never becomes healthy fails the start with
its log. `tails()` is the last lines of every replica's log, for the failure messages of the tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN
from tests.e2e.server import Server
from tests.reliability.conftest import ROLE_ENV

NAMES = "ABCDEFGH"
# short stages and no canary analysis unless a test asks for them (graduation would wait for samples)
DEFAULT_ENV = {"ORGANS_BUILDER_STAGE_DELAYS": "20,20,20", "NEIRA_ANALYSIS_INTERVAL_MS": "0"}


class Replicas:
    """N servers on one database: `[i]` or `.a/.b/.c`, `kill(i)` (SIGKILL), `stop()` (SIGTERM, all)."""

    def __init__(self, base: Path, database_url: str | None, n: int = 3, env: dict[str, str] | None = None) -> None:
        """`database_url` None: SQLite in the data dir (one replica only: the reference of bench/replicas.py)."""
        if database_url is None and n != 1:
            raise ValueError("SQLite serves one process: replicas need a PostgreSQL database_url")
        db = {"NEIRA_DATABASE_URL": database_url} if database_url else {}
        self.base, self.env = base, {**ROLE_ENV, **DEFAULT_ENV, **(env or {}), **db}
        self.servers = [self._server(i) for i in range(n)]
        self.killed: set[int] = set()

    def _server(self, i: int) -> Server:
        return Server(self.base / f"replica-{NAMES[i]}" / "data", token=ADMIN, env=self.env)

    def __getitem__(self, i: int) -> Server:
        return self.servers[i]

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def a(self) -> Server:
        return self.servers[0]

    @property
    def b(self) -> Server:
        return self.servers[1]

    @property
    def c(self) -> Server:
        return self.servers[2]

    @property
    def alive(self) -> list[Server]:
        return [s for i, s in enumerate(self.servers) if i not in self.killed]

    def start(self, together: bool = False, timeout: float = 60) -> None:
        """Start the replicas; return when each answers /healthz 200 (else stop them all and raise). `together`:
        all at once on the fresh database (a roll-out; its own test); otherwise the first one alone (it migrates
        and registers the examples), then the others at once."""
        first = [] if together else [self.servers[0]]
        errors: list[BaseException | None] = []
        for group in (first, self.servers[len(first):]):
            if group and not any(errors):
                with ThreadPoolExecutor(len(group)) as pool:
                    futures = [pool.submit(s.start, timeout) for s in group]
                    errors += [f.exception() for f in futures]
        if any(errors):
            self.stop()
            raise RuntimeError("a replica did not start:\n" + "\n".join(str(e) for e in errors if e))

    def add(self, timeout: float = 60) -> Server:
        """One more replica on a fresh data dir (scaling out), started; it is stopped with the others."""
        server = self._server(len(self.servers))
        self.servers.append(server)
        server.start(timeout)
        return server

    def kill(self, i: int) -> int:
        """SIGKILL replica `i` (no shutdown code runs); its exit code."""
        self.killed.add(i)
        return self.servers[i].stop(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM every replica still running (SIGKILL one that does not end within 15 s)."""
        for s in self.servers:
            if s.proc is None:
                continue
            try:
                s.stop()
            except subprocess.TimeoutExpired:
                if s.proc is not None:
                    s.proc.kill()
                    s.proc.wait(10)
                    s.proc = None

    def tails(self, lines: int = 15) -> str:
        """The last `lines` lines of every replica's log past its start-up chatter, a run of one message told
        once with its count (for a failing assertion's message)."""
        out = []
        for i, s in enumerate(self.servers):
            out.append(f"--- replica {NAMES[i]} (:{s.port}{', SIGKILLed' if i in self.killed else ''}) ---")
            told: list[list[Any]] = []  # [line, message without its time, count]
            for line in s.log().splitlines():
                if line.startswith("neira: ") or "INFO alembic." in line or "INFO uvicorn.error: " in line:
                    continue
                message = line.split(" ", 2)[-1]
                if told and told[-1][1] == message:
                    told[-1][2] += 1
                else:
                    told.append([line, message, 1])
            out.extend(f"{x[0]}{f'  (x{x[2]})' if x[2] > 1 else ''}" for x in told[-lines:])
            if not told:
                out.append("(nothing past start-up)")
        return "\n".join(out)

    def clients(self, connections: int = 64) -> list[httpx.AsyncClient]:
        """One async admin client per replica (a pool large enough that concurrent requests are concurrent)."""
        return [client(s, connections) for s in self.servers]

    def ws_url(self, i: int, path: str) -> str:
        """A WebSocket URL on replica `i` with the admin token in the query (as the pages' clients do)."""
        sep = "&" if "?" in path else "?"
        return f"ws://127.0.0.1:{self.servers[i].port}{path}{sep}token={self.servers[i].token}"


def client(server: Server, connections: int = 64) -> httpx.AsyncClient:
    """An async admin client of `server` with `connections` parallel connections."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30, limits=limits)


@contextmanager
def replicas(base: Path, database_url: str | None, n: int = 3, env: dict[str, str] | None = None,
             together: bool = False) -> Iterator[Replicas]:
    """N started replicas (see `Replicas.start`), stopped afterwards."""
    group = Replicas(base, database_url, n, env)
    group.start(together)
    try:
        yield group
    finally:
        group.stop()


async def poll(check: Callable[[], Awaitable[Any]], timeout: float, what: Callable[[], str] | str) -> Any:
    """Await `check()` until it is truthy, within `timeout` seconds; the failure names `what` (a callable is
    called only then: it may read the replicas' logs). Polling with a deadline, not sleeping to hide a race."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.02)
