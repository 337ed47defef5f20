"""Per-run cost of the sandboxed backends next to the adapter's reverse (the ceiling), in one run.

- direct: the sandbox function called in this process (a fresh Lua state / a wasm store per run), µs;
- pool: `RunService.run_cell` in this process (a worker round trip, trace, metrics; no HTTP), µs per run at
  1 and at 16 concurrent runs (runs/s), for a trivial cell of each backend and the worked examples;
- a runaway: how long an infinite loop takes to be stopped by fuel (the default 10 M) and by the wall clock.
Usage: `python bench/sandbox.py [--n 300]` (about 30 s).
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
from _util import ROOT, save, summary  # noqa: E402

sys.path.insert(0, str(ROOT))
from neira.catalog import parse_cell  # noqa: E402
from neira.config import Settings  # noqa: E402
from neira.core import Core  # noqa: E402
from neira.runtime.payloads import Text  # noqa: E402
from neira.runtime.sandbox import ScriptBackend, WasmBackend  # noqa: E402
from neira.runtime.sandbox.limits import Limits  # noqa: E402
from neira.runtime.worker import Job, run_steps  # noqa: E402
from tests.sandbox.cases import example, module, scripted, wasm_cell  # noqa: E402

ECHO_WAT = module("(i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))")
CELLS = {
    "adapter reverse": ("analysis.reverse.v1", "adapter"),  # the shipped example
    "script trivial": (scripted("function run(input) return input end"), "script"),
    "wasm trivial": ({**wasm_cell(ECHO_WAT, io="text", inputs=["text"], output="text"), "id": "analysis.t_echo_wasm.v1"}, "wasm"),
    "script word count": (example("analysis.word_count_script.v1"), "script"),
    "wasm reverse": (example("analysis.reverse_wasm.v1"), "wasm"),
}
INPUT = "hello world, this is a run"


def direct(n: int) -> dict[str, dict[str, float]]:
    """Each sandbox's function in this process, no pool: µs per run."""
    out = {}
    backends = {"script": ScriptBackend(Limits()), "wasm": WasmBackend(Limits())}
    for name, (template, backend) in CELLS.items():
        if backend == "adapter":
            continue
        step = backends[backend].bind(parse_cell(template), None)
        job = Job(((step.impl.fn, step.params),), Text(text=INPUT))
        run_steps(job)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            assert run_steps(job)[0].output is not None
            times.append((time.perf_counter() - t) * 1e6)
        out[name] = {k: round(v, 1) for k, v in summary(times).items()}
    return out


async def pooled(n: int) -> dict[str, dict[str, float]]:
    """Through RunService and the worker pool: µs per run at 1 connection, runs/s at 16."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, capabilities={"factory_script": "experimental", "factory_wasm": "experimental"},
                            run_workers=2, run_queue=64)
        core = Core(settings)
        await core.start()
        try:
            out = {}
            for name, (template, backend) in CELLS.items():
                _, record = await core.factory.create({"template": template, "backend": backend}, "admin")
                body = {"input": INPUT}  # the adapter reverse runs inline on the loop at this length: the ceiling
                for _ in range(20):
                    assert (await core.runs.run_cell(record["id"], body)).ok
                times = []
                for _ in range(n):
                    t = time.perf_counter()
                    await core.runs.run_cell(record["id"], body)
                    times.append((time.perf_counter() - t) * 1e6)
                t = time.perf_counter()
                total = 16 * max(1, n // 16)
                for _ in range(total // 16):
                    await asyncio.gather(*(core.runs.run_cell(record["id"], body) for _ in range(16)))
                out[name] = {**{k: round(v, 1) for k, v in summary(times).items()},
                             "runs_per_s_16": round(total / (time.perf_counter() - t))}
            out["runaway"] = await runaway(core)
            return out
        finally:
            await core.stop()


async def runaway(core: Core) -> dict[str, float]:
    """ms until an infinite loop is stopped, on the default limits (fuel 10 M; wall clock 1 s)."""
    found = {}
    for name, template, backend in (("script", scripted("function run(i) while true do end end"), "script"),
                                    ("wasm", wasm_cell(module("(loop (br 0)) (i64.const 0)")), "wasm")):
        template = {**template, "id": f"analysis.spin_{name}.v1"}
        _, record = await core.factory.create({"template": template, "backend": backend}, "admin")
        t = time.perf_counter()
        result = await core.runs.run_cell(record["id"], {"input": "x"})
        assert result.error is not None and result.error.code == "sandbox_limit"
        found[f"{name}_{result.error.limit}_ms"] = round((time.perf_counter() - t) * 1000, 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    results = {"direct_us": direct(args.n), "pool_us": asyncio.run(pooled(args.n))}
    print(json.dumps(results, indent=2))
    save("sandbox", results)


if __name__ == "__main__":
    main()
