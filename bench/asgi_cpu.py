"""CPU time per request, with no network and no load generator: the ASGI app is called directly.

Noise-resistant (process CPU time, not wall time), so it shows what each layer costs even on a busy machine.
neira's routes are measured next to the bare ceiling handlers in one run. Usage:
`python bench/asgi_cpu.py [--n 4000] [--rounds 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
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
    """Microseconds of process CPU time per request over `n` requests."""
    t = time.process_time()
    for _ in range(n):
        await call(app, method, path, body)
    return (time.process_time() - t) / n * 1e6


async def interleaved(cases: dict[str, tuple], n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Every case measured in each of `rounds` rounds, one after another, so a noisy spell on the shared
    machine touches all of them alike; per case the best round (the least disturbed) and the median."""
    for app, method, path, body, _ in cases.values():
        for _ in range(50):  # warm-up; every route must answer 2xx
            status, _ = await call(app, method, path, body)
            assert status < 300, (path, status)
    seen: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (app, method, path, body, share) in cases.items():
            seen[name].append(await cpu_per_request(app, method, path, body, max(1, n // rounds // share)))
    return {name: {"best": round(min(v), 1), "median": round(statistics.median(v), 1)} for name, v in seen.items()}


async def main(n: int, rounds: int) -> dict:
    from api.app import create_app
    from neira.config import Settings
    from neira.core import Core

    import ceiling_app

    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token=TOKEN, stage_delays_ms=(1, 1, 1),
                             analysis_interval_ms=0))  # CPU per request, without the canary analysis beside it
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
            results = await interleaved({
                "healthz": (app, "GET", "/healthz", b"", 1),
                "capabilities": (app, "GET", "/api/neira/capabilities", b"", 1),
                "status": (app, "GET", f"/organs/{organ}/status", b"", 1),
                "dryrun": (app, "POST", "/factory/cells/dryrun", dry, 1),
                "commands": (app, "POST", "/api/neira/commands", cmd, 4),
                "ceiling_get": (bare, "GET", "/status", b"", 1),
                "ceiling_post": (bare, "POST", "/echo", dry, 1),
            }, n, rounds)
        finally:
            await core.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="requests per route, over all rounds (a quarter for commands)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    res = asyncio.run(main(args.n, args.rounds))
    for name, us in res.items():
        print(f"{name:14s} best {us['best']:8.1f}  median {us['median']:8.1f} µs CPU/request")
    ratio = {f"{a}/{b}": round(res[a]["best"] / res[b]["best"], 2) for a, b in (("status", "ceiling_get"), ("dryrun", "ceiling_post"))}
    print("  ".join(f"{k} {v:.2f}x" for k, v in ratio.items()))
    print("saved", save("asgi_cpu", {"n": args.n, "rounds": args.rounds, "us_cpu_per_request": res, "ratio_best": ratio}))
