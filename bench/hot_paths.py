"""CPU per request of the factory dry-run and the Command Cell next to the bare POST ceiling, with an optional
profile of either route. The ASGI app is called in-process (see asgi_cpu.call), so the figures are process CPU
time and resist a busy machine. Usage: `python bench/hot_paths.py [--n 1000] [--repeat 3] [--profile dryrun|commands]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, percentile, save  # noqa: E402
from asgi_cpu import TOKEN, call, cpu_per_request  # noqa: E402

sys.path.insert(0, str(ROOT))

DRYRUN = json.dumps({"template": {"id": "analysis.bench.v1", "version": "1.0.0", "analysis_type": "bench",
                                  "links": ["analysis.text_normalize.v1"], "metadata": {"schema": "v1"}}}).encode()
COMMAND = json.dumps({"text": "создай голосовой орган v1"}).encode()
ROUTES = {"dryrun": ("/factory/cells/dryrun", DRYRUN), "commands": ("/api/neira/commands", COMMAND)}


def new_templates(n: int) -> list[bytes]:
    """Dry-run bodies of `n` templates nobody has seen: what a client about to create a cell sends."""
    return [json.dumps({"template": {"id": f"analysis.fresh_{i}.v1", "version": "1.0.0", "analysis_type": "bench",
                                     "links": ["analysis.text_normalize.v1"], "metadata": {"schema": "v1"}}}).encode()
            for i in range(n)]


async def cpu_per_new_template(app, n: int) -> float:
    """Like cpu_per_request, but every request dry-runs another template (nothing repeats)."""
    bodies = new_templates(n + 50)
    for body in bodies[:50]:
        assert (await call(app, "POST", ROUTES["dryrun"][0], body))[0] == 200
    t = time.process_time()
    for body in bodies[50:]:
        await call(app, "POST", ROUTES["dryrun"][0], body)
    return (time.process_time() - t) / n * 1e6


async def wall_p99(app, path: str, body: bytes, n: int) -> dict[str, float]:
    """p50/p99 wall milliseconds of `n` sequential requests (noisy on a shared machine; CPU is the steadier)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await call(app, "POST", path, body)
        times.append((time.perf_counter() - t) * 1e3)
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


async def main(n: int, profile: str | None, top: int, repeat: int = 3) -> dict:
    from api.app import create_app
    from neira.config import Settings
    from neira.core import Core

    import ceiling_app

    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token=TOKEN, stage_delays_ms=(1, 1, 1), analysis_interval_ms=0))
        app = create_app(core)
        await core.start()
        try:
            if profile:
                path, body = ROUTES[profile]
                for _ in range(50):
                    await call(app, "POST", path, body)
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(n):
                    await call(app, "POST", path, body)
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
                pstats.Stats(prof).sort_stats("tottime").print_stats(top)
                return {}
            rounds: dict[str, list[float]] = {"dryrun": [], "dryrun_new": [], "commands": [], "ceiling_post": [], "healthz": []}
            for _ in range(repeat):  # interleaved, best of `repeat`: the machine is shared and noisy
                rounds["ceiling_post"].append(await cpu_per_request(ceiling_app.app, "POST", "/echo", DRYRUN, n))
                rounds["healthz"].append(await cpu_per_request(app, "GET", "/healthz", b"", n))
                rounds["dryrun"].append(await cpu_per_request(app, "POST", *ROUTES["dryrun"], n))
                rounds["dryrun_new"].append(await cpu_per_new_template(app, n))
                rounds["commands"].append(await cpu_per_request(app, "POST", *ROUTES["commands"], max(50, n // 4)))
            res: dict = {name: min(values) for name, values in rounds.items()}
            res["rounds"] = rounds
            res["dryrun_wall"] = await wall_p99(app, *ROUTES["dryrun"], n)
            res["commands_wall"] = await wall_p99(app, *ROUTES["commands"], max(50, n // 4))
            return res
        finally:
            await core.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--profile", choices=sorted(ROUTES))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of them is reported")
    args = parser.parse_args()
    res = asyncio.run(main(args.n, args.profile, args.top, args.repeat))
    if res:
        for name in ("dryrun", "dryrun_new", "commands", "ceiling_post", "healthz"):
            print(f"{name:14s} {res[name]:9.1f} µs CPU/request")
        for name in ("dryrun", "dryrun_new", "commands"):
            print(f"{name}/ceiling_post {res[name] / res['ceiling_post']:.2f}x   wall {res.get(name + '_wall', '-')}")
        print("saved", save("hot_paths", {"n": args.n, "repeat": args.repeat, "us_cpu_per_request": res}))
