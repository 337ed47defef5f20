"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, `initdb` into a temp dir, started as
an unprivileged user (the server refuses to run as root) on a free loopback port, removed afterwards.

Locally the PostgreSQL tests skip when the binaries are missing; with `CI=true` they fail instead (`.ci/run`
installs Debian's `postgresql`)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import free_port

USER = "neira"  # the database role the tests connect as (trust auth on loopback only)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def bin_dir() -> Path | None:
    """Where Debian's server binaries are (they are not on PATH): the newest /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """The binaries' folder; skip (locally) or fail (CI) without them."""
    where = bin_dir()
    if where is None or not (where / "pg_ctl").exists():
        why = "PostgreSQL's server binaries are not installed (apt-get install postgresql)"
        if in_ci():
            pytest.fail(f"the PostgreSQL tests cannot run in CI: {why}", pytrace=False)
        pytest.skip(why)
    return where


@dataclass
class Cluster:
    """A running cluster; `url(db)` for SQLAlchemy, `create(db)` for a fresh database."""

    bin: Path
    base: Path
    port: int
    run_as: str | None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-qAtc", sql).stdout

    def create(self, database: str) -> str:
        """A new empty database; its URL."""
        self.psql(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(base: Path) -> Cluster:
    """initdb and start; as root the server runs as the `postgres` user Debian's package makes."""
    where = require_postgres()
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no unprivileged 'postgres' user to start the server as")
        run_as = "postgres"
    base.mkdir(parents=True, exist_ok=True)
    if run_as:
        shutil.chown(base, user=run_as)
    cluster = Cluster(where, base, free_port(), run_as)
    cluster._run("initdb", "-D", str(base / "data"), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
    options = f"-k {base} -p {cluster.port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    cluster._run("pg_ctl", "-D", str(base / "data"), "-o", options, "-l", str(base / "server.log"), "-w", "start")
    return cluster
