"""CPU time per request, with no network and no load generator: the ASGI app is called directly.

Noise-resistant (process CPU time, not wall time), so it shows what each layer costs even on a busy machine.
neira's routes are measured next to the bare ceiling handlers in one run. Usage:
`python bench/asgi_cpu.py [--n 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, save  # noqa: E402

sys.path.insert(0, str(ROOT))
TOKEN = "bench-admin-token"


async def call(app, method: str, path: str, body: bytes = b"", token: str | None = TOKEN) -> tuple[int, bytes]:
    """One request through the ASGI app; returns (status, body)."""
    path, _, query = path.partition("?")
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    sent = False
    out: list[bytes] = []
    status = 0

    async def receive():
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(out)


async def cpu_per_request(app, method: str, path: str, body: bytes, n: int) -> float:
    """Microseconds of process CPU time per request, after a warm-up."""
    for _ in range(50):
        status, _ = await call(app, method, path, body)
        assert status < 300, (path, status)
    t = time.process_time()
    for _ in range(n):
        await call(app, method, path, body)
    return (time.process_time() - t) / n * 1e6


async def main(n: int) -> dict:
    from api.app import create_app
    from neira.config import Settings
    from neira.core import Core

    import ceiling_app

    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token=TOKEN, stage_delays_ms=(1, 1, 1)))
        app = create_app(core)
        await core.start()
        try:
            _, raw = await call(app, "POST", "/organs/build", json.dumps({"organ_template": "organ.echo.v1"}).encode())
            organ = json.loads(raw)["organ_id"]
            while json.loads((await call(app, "GET", f"/organs/{organ}/status"))[1])["state"] != "stable":
                await asyncio.sleep(0.01)
            dry = json.dumps({"template": {"id": "analysis.bench.v1", "version": "1.0.0", "analysis_type": "bench",
                                           "links": ["analysis.text_normalize.v1"], "metadata": {"schema": "v1"}}}).encode()
            cmd = json.dumps({"text": "создай голосовой орган v1"}).encode()
            bare = ceiling_app.app
            results = {
                "healthz": await cpu_per_request(app, "GET", "/healthz", b"", n),
                "capabilities": await cpu_per_request(app, "GET", "/api/neira/capabilities", b"", n),
                "status": await cpu_per_request(app, "GET", f"/organs/{organ}/status", b"", n),
                "dryrun": await cpu_per_request(app, "POST", "/factory/cells/dryrun", dry, n),
                "commands": await cpu_per_request(app, "POST", "/api/neira/commands", cmd, n // 4),
                "ceiling_get": await cpu_per_request(bare, "GET", "/status", b"", n),
                "ceiling_post": await cpu_per_request(bare, "POST", "/echo", dry, n),
            }
        finally:
            await core.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    res = asyncio.run(main(args.n))
    for name, us in res.items():
        print(f"{name:14s} {us:8.1f} µs CPU/request")
    print(f"status/ceiling_get  {res['status'] / res['ceiling_get']:.1f}x   dryrun/ceiling_post  {res['dryrun'] / res['ceiling_post']:.1f}x")
    print("saved", save("asgi_cpu", {"n": args.n, "us_cpu_per_request": res}))
