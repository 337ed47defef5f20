"""API throughput and latency of neira's routes next to a bare Litestar handler (the ceiling), in one run.

Both apps run under uvicorn with the same settings (one worker, uvloop + httptools when installed); the load
generator is wrk in its own process. Each (route, connections) pair is measured in `--rounds` rounds of
neira then the ceiling, so a noisy spell on the shared machine falls on both sides of a round; the figures are
the medians over the rounds (rps, latency, and the per-round ratio, with its range).
Usage: `python bench/api_load.py [--duration 2] [--rounds 5] [--connections 1,16,64]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, run, save  # noqa: E402

TOKEN = "bench-admin-token"
LUA = """
wrk.method = "{method}"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never became ready")


def start_neira(data_dir: Path, stage_delays: str = "1,1,1") -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "NEIRA_ADMIN_TOKEN": TOKEN, "ORGANS_BUILDER_STAGE_DELAYS": stage_delays,
           "NEIRA_ANALYSIS_INTERVAL_MS": "0"}  # the API is measured here, not the canary analysis (bench/analysis.py)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "neira"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/healthz")
    return proc, url


def start_ceiling() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT / "bench", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/status")
    return proc, url


def wrk(url: str, method: str, body: str, connections: int, duration: int) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from one wrk run; non-2xx answers are counted as errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA.format(method=method, body=body, token=TOKEN))
    out = run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", f.name, url]).stdout
    Path(f.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat.get("50", float("nan")), "p99_ms": lat.get("99", float("nan")), "non_2xx": int(bad.group(1)) if bad else 0}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def prepare(url: str) -> str:
    """An organ that has reached stable, for the status route."""
    h = {"Authorization": f"Bearer {TOKEN}"}
    organ = httpx.post(f"{url}/organs/build", json={"organ_template": "organ.echo.v1"}, headers=h).json()["organ_id"]
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/organs/{organ}/status", headers=h).json()["state"] != "stable":
        if time.monotonic() > deadline:
            raise RuntimeError("organ did not reach stable")
        time.sleep(0.02)
    return organ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="neira/ceiling pairs per route and connection count")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--routes", default="status,dryrun,commands", help="which of status, dryrun, commands")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian package `wrk`)")
    conns = [int(c) for c in args.connections.split(",")]
    dryrun = json.dumps({"template": {"id": "analysis.bench.v1", "version": "1.0.0", "analysis_type": "bench", "links": ["analysis.text_normalize.v1"], "metadata": {"schema": "v1"}}})
    command = json.dumps({"text": "создай голосовой орган v1"})
    with tempfile.TemporaryDirectory() as tmp:
        neira, nurl = start_neira(Path(tmp) / "data")
        ceiling, curl = start_ceiling()
        try:
            organ = prepare(nurl)
            cases = {
                "status": (f"{nurl}/organs/{organ}/status", "GET", "", f"{curl}/status", "GET", ""),
                "dryrun": (f"{nurl}/factory/cells/dryrun", "POST", dryrun, f"{curl}/echo", "POST", dryrun),
                "commands": (f"{nurl}/api/neira/commands", "POST", command, f"{curl}/echo", "POST", command),
            }
            results: dict[str, dict] = {}
            for name, (u, m, b, cu, cm, cb) in ((k, cases[k]) for k in args.routes.split(",")):
                for c in conns:
                    pairs = [(wrk(u, m, b, c, args.duration), wrk(cu, cm, cb, c, args.duration)) for _ in range(args.rounds)]
                    ours, ceil = median_run([p[0] for p in pairs]), median_run([p[1] for p in pairs])
                    ratios = sorted(round(a["rps"] / z["rps"], 3) for a, z in pairs)
                    row = results[f"{name}@{c}"] = {"neira": ours, "ceiling": ceil, "ratio": statistics.median(ratios), "ratios": ratios}
                    print(f"{name:9s} c={c:<3d} neira {ours['rps']:8.0f} rps p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms | "
                          f"ceiling {ceil['rps']:8.0f} rps p50 {ceil['p50_ms']:.2f} ms | ratio {row['ratio']:.2f} "
                          f"({ratios[0]:.2f}–{ratios[-1]:.2f})", flush=True)
        finally:
            for p in (neira, ceiling):
                p.terminate()
                p.wait(10)
    print("saved", save("api", {"duration_s": args.duration, "rounds": args.rounds, "results": results}))


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the rounds."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


if __name__ == "__main__":
    main()
