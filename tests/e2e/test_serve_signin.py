"""`neira serve` prints a one-time sign-in link once it listens (never for a port it could not take), and
`neira login-url` mints another for a running server (contract §10)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import NEIRA, REPO, Server

pytestmark = pytest.mark.e2e
LINK = re.compile(r"sign in to the pages at (http://\S+/login\?code=[\w-]+)")


def _wait_for_link(server: Server, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := LINK.search(server.log()):
            return found.group(1)
        time.sleep(0.05)  # polling the log for a line, not hiding a race
    raise AssertionError(f"no sign-in link printed:\n{server.log()}")


def test_the_printed_link_signs_in_once_and_follows_the_listening_line(tmp_path: Path) -> None:
    with Server(tmp_path / "data") as server:
        link = _wait_for_link(server)
        log = server.log()
        assert log.index("Uvicorn running on") < log.index("sign in to the pages at")
        assert server.token not in log
        url = link.replace("localhost", "127.0.0.1")
        first = httpx.get(url, follow_redirects=False, timeout=5)
        assert first.status_code == 303 and first.headers["location"] == "/" and "neira_session" in first.cookies
        again = httpx.get(url, follow_redirects=False, timeout=5)
        assert (again.status_code, again.json()["code"]) == (401, "unauthorized")


def test_no_link_for_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(NEIRA), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=REPO, env=Server(tmp_path / "data").env, capture_output=True, text=True, timeout=30,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "login?code=" not in out and "sign in" not in out and "#token=" not in out, out


def test_login_url_mints_a_fresh_link(tmp_path: Path) -> None:
    with Server(tmp_path / "data") as server:
        printed = _wait_for_link(server)
        args = [str(NEIRA), "login-url", "--url", server.url, "--token", server.token]
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        link = proc.stdout.strip()
        assert re.fullmatch(rf"{re.escape(server.url)}/login\?code=[\w-]+", link) and link != printed
        assert httpx.get(link, follow_redirects=False, timeout=5).status_code == 303
        wrong = subprocess.run([*args[:-1], "not-the-token"], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert wrong.returncode != 0 and "refused" in wrong.stderr and server.token not in wrong.stderr


def test_login_url_finds_the_server_of_its_data_dir(tmp_path: Path) -> None:
    """No --url: the link comes from the server that wrote <data-dir>/server.json (any port)."""
    with Server(tmp_path / "data") as server:
        _wait_for_link(server)
        args = [str(NEIRA), "login-url", "--data-dir", str(server.data_dir), "--token", server.token]
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=30,
                              env={k: v for k, v in os.environ.items() if k != "NEIRA_URL"})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().startswith(f"{server.url}/login?code=")
