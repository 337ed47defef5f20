"""A real `neira serve` subprocess on a free port, for restart, crash and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
NEIRA = Path(sys.executable).parent / "neira"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Start, stop (SIGTERM) and kill (SIGKILL) a server; restart it on the same data dir and port."""

    def __init__(self, data_dir: Path, token: str = "e2e-admin-token-16ch", env: dict[str, str] | None = None) -> None:
        self.data_dir, self.token = data_dir, token
        self.port = free_port()
        # canary analysis off unless a test turns it on (as tests/conftest.py does in process): with it on, the
        # examples' `hitl: true` organs wait in canary for a human (docs/evidence.md, "Graduation")
        self.env = {**os.environ, "NEIRA_ADMIN_TOKEN": token, "NEIRA_ANALYSIS_INTERVAL_MS": "0", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        """An HTTP client with the admin token."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=10)

    def start(self, timeout: float = 20) -> None:
        """Start and wait until /healthz answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(NEIRA), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling for readiness, not hiding a race
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send `sig` and wait for the process to end; returns its exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs."""
        return self.stop(signal.SIGKILL)

    def log(self) -> str:
        """Everything the server printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.stop(signal.SIGKILL if exc[0] else signal.SIGTERM)
