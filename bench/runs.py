"""Runs over HTTP next to the implementations called directly (the ceiling), in one run; and organ status
while the run pool is saturated with images.

- reverse organ (pure text) and voice organ (eSpeak NG) through `POST /organs/{id}/run` at 1 and 16
  connections (wrk), next to their implementations called in this process (`run_steps`, no pool, no HTTP),
  and next to the same runs through RunService in this process (pool and trace, no HTTP);
- the runtime's own cost per run: the HTTP time of one run at 1 connection (1 / rps) minus the
  implementations' time as the same runs' traces report it (so a noisy spell lands on both; the figure against
  the direct calls is printed too), and that minus the time of a `GET /organs/{id}/status` (HTTP, auth,
  routing alone); `RunService` is the answers' own `ms` (from the route's call into the runtime to its answer);
- `GET /organs/{id}/status` latency while 16 connections keep every worker busy with 1024×768 images.
Usage: `python bench/runs.py [--duration 3]`.

Before / after on a shared, noisy machine: `--base DIR` serves a second checkout (e.g. `git archive main | tar
-x -C DIR`) beside this one and alternates the two, round by round (`--rounds`), on the same organs at 1
connection, with the implementations' own time measured between them; it prints each round's runtime cost
per run on both and their ratio, then the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, save, summary  # noqa: E402
from api_load import TOKEN, free_port, start_neira, wait_ready, wrk  # noqa: E402

sys.path.insert(0, str(ROOT))
from tests.runtime.media import image_bytes, image_payload  # noqa: E402

INPUTS = {"reverse": "hello world, this is a run", "voice": "Привет, мир"}
TEMPLATES = {"reverse": "organ.reverse.v1", "voice": "organ.voice.v1", "vision": "organ.vision.v1"}


TRACED = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
impl, served, n = 0, 0, 0
function response(status, headers, body)
  local at = body:find('"trace":', math.max(1, #body - 4096), true) or 1  -- the trace follows the output
  local tail = body:sub(at)
  for v in tail:gmatch('"impl":"[^"]*","ms":([%d.e+-]+)') do impl = impl + tonumber(v) end
  local ms = tail:match('%],"ms":([%d.e+-]+)')
  if ms then served = served + tonumber(ms) end
  n = n + 1
end
threads = {{}}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do io.write(string.format("TRACED %f %f %d\\n", t:get("impl"), t:get("served"), t:get("n"))) end
end
"""


def wrk_traced(url: str, body: str, connections: int, duration: int) -> dict[str, float]:
    """wrk on a run route, adding up what each answer's trace says its implementations took (`impl_us`) and
    what RunService took (`served_us`, the answer's `ms`), per run: measured in the same runs as the rate, so
    a noisy spell on the machine lands on both."""
    import re

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(TRACED.format(body=body, token=TOKEN))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", f.name, url],
                         check=True, capture_output=True, text=True).stdout
    Path(f.name).unlink()
    impl = served = 0.0
    n = 0
    for a, b, c in re.findall(r"^TRACED (\S+) (\S+) (\d+)$", out, re.MULTILINE):
        impl, served, n = impl + float(a), served + float(b), n + int(c)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat.get("50", float("nan")), "p99_ms": lat.get("99", float("nan")),
            "non_2xx": int(bad.group(1)) if bad else 0, "impl_us": round(impl * 1000 / max(n, 1), 1),
            "served_us": round(served * 1000 / max(n, 1), 1)}


def direct(name: str, n: int) -> dict[str, float]:
    """The implementations of the organ's pathway called in this process: µs per run."""
    from neira.catalog import parse_cell
    from neira.runtime import builtin_registry
    from neira.runtime.backends import AdapterBackend
    from neira.runtime.payloads import Text
    from neira.runtime.worker import Job, run_steps

    organ = json.loads((ROOT / "examples" / "organs" / f"{TEMPLATES[name]}.json").read_text())
    backend = AdapterBackend(builtin_registry())
    steps = [backend.bind(parse_cell(json.loads((ROOT / "examples" / "cells" / f"{c}.json").read_text())), None)
             for c in organ["pathways"][0]["cells"]]
    job = Job(tuple((s.impl.fn, s.params) for s in steps), Text(text=INPUTS[name]))
    run_steps(job)  # warm (eSpeak NG starts on first use)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        results = run_steps(job)
        times.append((time.perf_counter() - t) * 1e6)
        assert results[-1].output is not None
    return {k: round(v, 1) for k, v in summary(times).items()}


async def in_process(name: str, n: int) -> dict[str, float]:
    """The same runs through RunService (pool, trace, metrics), no HTTP: µs per run."""
    from neira.config import Settings
    from neira.core import Core

    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token="x", stage_delays_ms=(1, 1, 1), analysis_interval_ms=0))
        await core.start()
        try:
            _, body = await core.organs.build({"organ_template": TEMPLATES[name]}, "admin")
            organ = body["organ_id"]
            request = {"input": INPUTS[name]}
            for _ in range(20):
                await core.runs.run_organ(organ, request)
            times = []
            for _ in range(n):
                t = time.perf_counter()
                result = await core.runs.run_organ(organ, request)
                times.append((time.perf_counter() - t) * 1e6)
                assert result.ok
        finally:
            await core.stop()
    return {k: round(v, 1) for k, v in summary(times).items()}


def build(url: str, template: str, warm: object = None) -> str:
    """An organ built from the template; `warm`: run it on this input a few times first (workers start on
    the first run, and eSpeak NG in each worker)."""
    h = {"Authorization": f"Bearer {TOKEN}"}
    organ = httpx.post(f"{url}/organs/build", json={"organ_template": template}, headers=h).json()["organ_id"]
    for _ in range(20 if warm is not None else 0):
        r = httpx.post(f"{url}/organs/{organ}/run", json={"input": warm}, headers=h, timeout=30)
        assert r.status_code == 200 and r.json()["ok"], r.text
    return organ


def status_under_images(url: str, duration: int) -> dict[str, object]:
    """Status latency with and without 16 connections of 1024×768 image runs (vision organ)."""
    vision, echo = build(url, TEMPLATES["vision"], image_payload(image_bytes((64, 48)))), build(url, "organ.echo.v1")
    idle = wrk(f"{url}/organs/{echo}/status", "GET", "", 4, duration)
    body = json.dumps({"input": image_payload(image_bytes((1024, 768)))})
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.body = [[{body}]]\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')
    load = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{duration + 2}s", "--latency", "-s", f.name, f"{url}/organs/{vision}/run"],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # let the image load fill every worker before measuring status under it
    busy = wrk(f"{url}/organs/{echo}/status", "GET", "", 4, duration)
    images_out = load.communicate()[0]
    Path(f.name).unlink()
    rps = float(next(line.split()[1] for line in images_out.splitlines() if line.startswith("Requests/sec")))
    return {"status_idle": idle, "status_busy": busy, "image_runs_rps": rps}


def start_checkout(root: Path, data_dir: Path) -> tuple[subprocess.Popen, str]:
    """`neira serve` from another checkout's sources (this environment's packages), as start_neira does."""
    port = free_port()
    env = {**os.environ, "NEIRA_ADMIN_TOKEN": TOKEN, "ORGANS_BUILDER_STAGE_DELAYS": "1,1,1",
           "NEIRA_ANALYSIS_INTERVAL_MS": "0", "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main())", "serve",
                             "--port", str(port), "--data-dir", str(data_dir)],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/healthz")
    return proc, url


def compare(base: Path, duration: int, rounds: int, names: list[str]) -> dict[str, object]:
    """This checkout ("after") and `base` ("before") alternated: runtime cost per run at 1 connection (the time
    per run minus what the same runs' traces say their implementations took)."""
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        after, aurl = start_neira(Path(tmp) / "after")
        before, burl = start_checkout(base, Path(tmp) / "before")
        try:
            for name in names:
                body = json.dumps({"input": INPUTS[name]}, ensure_ascii=False)
                urls = {side: f"{u}/organs/{build(u, TEMPLATES[name], INPUTS[name])}/run" for side, u in (("before", burl), ("after", aurl))}
                rows = []
                for r in range(rounds):
                    order = ("before", "after") if r % 2 == 0 else ("after", "before")
                    got = {side: wrk_traced(urls[side], body, 1, duration) for side in order}
                    cost = {side: round(1e6 / g["rps"] - g["impl_us"], 1) for side, g in got.items()}
                    inside = {side: round(g["served_us"] - g["impl_us"], 1) for side, g in got.items()}
                    rows.append({"impl_before_us": got["before"]["impl_us"], "impl_after_us": got["after"]["impl_us"],
                                 **cost, "ratio": round(cost["after"] / cost["before"], 3),
                                 "in_server_before_us": inside["before"], "in_server_after_us": inside["after"],
                                 "in_server_ratio": round(inside["after"] / inside["before"], 3) if inside["before"] else None})
                    print(f"{name:8s} round {r}: runtime cost before {cost['before']:.0f} µs (implementations "
                          f"{got['before']['impl_us']:.0f}, RunService over them {inside['before']:.0f}), after {cost['after']:.0f} µs "
                          f"(implementations {got['after']['impl_us']:.0f}, RunService over them {inside['after']:.0f}); "
                          f"after/before {rows[-1]['ratio']:.2f}", flush=True)
                keys = ("impl_before_us", "impl_after_us", "before", "after", "ratio", "in_server_before_us", "in_server_after_us")
                med = {k: statistics.median(row[k] for row in rows) for k in keys}
                inner = [row["in_server_ratio"] for row in rows if row["in_server_ratio"] is not None]
                med["in_server_ratio"] = statistics.median(inner) if inner else None
                print(f"{name:8s} medians: runtime cost before {med['before']:.0f} µs, after {med['after']:.0f} µs, "
                      f"ratio {med['ratio']:.2f} (range {min(r['ratio'] for r in rows):.2f}–{max(r['ratio'] for r in rows):.2f}); "
                      f"RunService over the implementations before {med['in_server_before_us']:.0f} µs, after "
                      f"{med['in_server_after_us']:.0f} µs" + (f", ratio {med['in_server_ratio']:.2f}" if inner else ""), flush=True)
                out[name] = {"rounds": rows, "median": med}
        finally:
            for proc in (after, before):
                proc.terminate()
                proc.wait(10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--n", type=int, default=2000, help="runs for the direct and in-process figures")
    parser.add_argument("--base", type=Path, help="another checkout to alternate with this one (before / after)")
    parser.add_argument("--rounds", type=int, default=6, help="with --base: rounds per organ")
    parser.add_argument("--organs", default="voice,reverse", help="with --base: which organs")
    args = parser.parse_args()
    if args.base is not None:
        print(save("runs_compare", {"base": str(args.base), **compare(args.base, args.duration, args.rounds, args.organs.split(","))}))
        return
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        neira, url = start_neira(Path(tmp) / "data")
        try:
            echo = build(url, "organ.echo.v1")
            baseline = results["status_c1"] = wrk(f"{url}/organs/{echo}/status", "GET", "", 1, args.duration)
            print(f"baseline: GET status at 1 connection {baseline['rps']:.0f} rps ({1e6 / baseline['rps']:.0f} µs a request)", flush=True)
            for name in ("reverse", "voice"):
                organ = build(url, TEMPLATES[name], INPUTS[name])
                body = json.dumps({"input": INPUTS[name]}, ensure_ascii=False)
                http = {f"c{c}": wrk_traced(f"{url}/organs/{organ}/run", body, c, args.duration) for c in (1, 16)}
                ceiling = direct(name, args.n)
                service = asyncio.run(in_process(name, args.n // 2))
                per_run_us = 1e6 / http["c1"]["rps"]
                traced = http["c1"]["impl_us"]
                row = results[name] = {"http": http, "direct_us": ceiling, "service_us": service,
                                       "runtime_cost_us": round(per_run_us - traced, 1),
                                       "runtime_cost_vs_direct_us": round(per_run_us - ceiling["mean"], 1),
                                       "over_a_status_request_us": round(per_run_us - traced - 1e6 / baseline["rps"], 1),
                                       "in_server_us": round(http["c1"]["served_us"] - traced, 1),
                                       "pool_and_trace_us": round(service["mean"] - ceiling["mean"], 1)}
                print(f"{name:8s} http c1 {http['c1']['rps']:7.0f} rps p50 {http['c1']['p50_ms']:.2f} p99 {http['c1']['p99_ms']:.2f} ms | "
                      f"c16 {http['c16']['rps']:7.0f} rps p50 {http['c16']['p50_ms']:.2f} p99 {http['c16']['p99_ms']:.2f} ms | "
                      f"implementations {traced:.0f} µs by the traces (direct {ceiling['mean']:.0f} µs), RunService {http['c1']['served_us']:.0f} µs, "
                      f"in-process service {service['mean']:.0f} µs | runtime cost {row['runtime_cost_us']:.0f} µs/run "
                      f"({row['over_a_status_request_us']:.0f} µs more than a status request; {row['runtime_cost_vs_direct_us']:.0f} µs against direct)",
                      flush=True)
            results["status_under_images"] = s = status_under_images(url, args.duration)
            print(f"status idle p99 {s['status_idle']['p99_ms']:.2f} ms; with every worker on images "  # type: ignore[index]
                  f"({s['image_runs_rps']:.0f} image runs/s) p50 {s['status_busy']['p50_ms']:.2f} p99 {s['status_busy']['p99_ms']:.2f} ms",  # type: ignore[index]
                  flush=True)
        finally:
            neira.terminate()
            neira.wait(10)
    print(save("runs", results))


if __name__ == "__main__":
    main()
