"""`neira serve` and its data dir (issue 14, points 1, 7 and 8): one server per SQLite data dir, a lock that a
killed server does not leave behind, private file modes, `server.json` for the CLI, one-line start errors."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import msgspec
import pytest

from tests.e2e.server import NEIRA, REPO, Server, free_port

pytestmark = pytest.mark.e2e


def serve_until_exit(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `neira serve` that is expected to refuse to start; its exit code and output."""
    env = {**os.environ, "NEIRA_ADMIN_TOKEN": "e2e-admin-token-16+", **(env or {})}
    cmd = [str(NEIRA), "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(data_dir)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_server_on_the_data_dir_refuses_to_start(tmp_path: Path) -> None:
    with Server(tmp_path / "data") as first:
        assert first.proc is not None
        second = serve_until_exit(first.data_dir)
        assert second.returncode == 3, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert "data_dir_locked" in lines[0] and str(first.data_dir.resolve()) in lines[0]
        assert f"pid {first.proc.pid}" in lines[0]
        with first.client() as c:  # the first one is untouched and still serves
            assert c.get("/organs").status_code == 200
            info = msgspec.json.decode((first.data_dir / "server.json").read_bytes())
            assert info == {"url": first.url, "pid": first.proc.pid}


def test_a_killed_server_does_not_block_the_next_start(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start()
    assert server.kill() == -9
    assert (server.data_dir / "server.lock").exists()  # left behind, with the dead PID in it
    with Server(server.data_dir) as again, again.client() as c:
        assert c.get("/organs").status_code == 200


def test_the_data_dir_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "cells").mkdir(parents=True)
    data.chmod(0o755)
    (data / "cells" / "old.json").write_text("{}")  # left by an older version with a 022 umask
    (data / "cells" / "old.json").chmod(0o644)
    server = Server(data, env={"NEIRA_ADMIN_TOKEN": ""})  # so that admin_token is made
    server.token = ""
    server.start()
    try:
        server.token = (data / "admin_token").read_text().strip()
        with server.client() as c:
            assert c.post("/cells", json={"id": "analysis.mode_probe.v1", "version": "1.0.0", "analysis_type": "probe",
                                          "links": [], "metadata": {"schema": "v1"}}).status_code == 201
        assert mode(data) == 0o700
        files = [p for p in data.rglob("*") if p.is_file()]
        assert {"neira.db", "admin_token", "server.json", "server.lock", "old.json"} <= {p.name for p in files}
        assert any(p.parent.parent.name == "cells" for p in files)  # catalog files: cells/<id>/<version>.json
        assert {str(p.relative_to(data)): mode(p) for p in files if mode(p) != 0o600} == {}
        assert {str(p.relative_to(data)): mode(p) for p in data.rglob("*") if p.is_dir() and mode(p) != 0o700} == {}
    finally:
        server.stop()
    assert not (data / "server.json").exists()  # an orderly stop removes it


def test_neira_say_finds_the_server_from_its_data_dir(tmp_path: Path) -> None:
    with Server(tmp_path / "data") as server:
        env = {k: v for k, v in os.environ.items() if k not in ("NEIRA_URL", "NEIRA_DATA_DIR")}
        said = subprocess.run([str(NEIRA), "say", "--data-dir", str(server.data_dir), "--token", server.token, "статус"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
        assert said.returncode == 0, said.stderr + said.stdout
        assert server.port != 8000


def test_postgresql_without_its_driver_is_a_one_line_error(tmp_path: Path) -> None:
    hide = tmp_path / "no-driver" / "asyncpg"  # stands in for a missing driver, also where one is installed
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'asyncpg'\", name='asyncpg')\n")
    env = {"NEIRA_DATABASE_URL": "postgresql://neira:s3cret@127.0.0.1:1/neira", "PYTHONPATH": str(hide.parent)}
    done = serve_until_exit(tmp_path / "data", env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr and "s3cret" not in done.stderr, done.stderr
    assert "asyncpg" in lines[0] and "NEIRA_DATABASE_URL" in lines[0]


def test_a_short_admin_token_is_warned_about(tmp_path: Path) -> None:
    with Server(tmp_path / "data", token="x") as server:
        pass
    log = server.log()
    assert "WARNING" in log and "NEIRA_ADMIN_TOKEN is shorter than 16 characters" in log
    assert "token=x" not in log
