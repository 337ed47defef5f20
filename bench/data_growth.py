"""Latency flat with data: a command, the apply of the voice organ's plan, and a REST build, on an empty data
dir and on one holding 2,000 cell records, 2,000 organs and 300 organ templates — both cores in one process,
measured in interleaved rounds so a noisy spell touches both alike. Target: grown within 1.2× of empty.

Usage: `python bench/data_growth.py [--n 200] [--records 2000] [--organs 2000] [--templates 300]`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, percentile, save  # noqa: E402

sys.path.insert(0, str(ROOT))
VOICE = "organ.voice.v1"


async def started(path: Path):
    from neira.config import Settings
    from neira.core import Core

    core = Core(Settings(data_dir=str(path), admin_token="bench-admin-token", stage_delays_ms=(1, 1, 1),
                         analysis_interval_ms=0))  # commands, apply, builds: not the canary analysis
    await core.start()
    return core


async def grow(core, records: int, organs: int, templates: int) -> None:
    """Fill a data dir through the public paths: pipelines of new cells (300 drafted records per apply),
    organ templates in the catalog, and builds."""
    made, batch = 0, 0
    while made < records:
        mark = string.ascii_lowercase[batch] * 3  # batches differ in three letters: no word is a typo of another's
        letters = itertools.product(string.ascii_lowercase, repeat=3)
        steps = ["g" + mark + "".join(p) for p in itertools.islice(letters, min(300, records - made))]
        batch += 1
        said = await core.commands.handle(f"build grow{made}-pipeline " + " -> ".join(steps), "s-grow", "admin")
        assert said["understood"] and said["policy"]["allowed"], said["reply"][:200]
        await core.commands.apply(said["plan"]["id"], "admin")
        made += len(steps)
    voice = await core.catalog.get_organ_template(VOICE)
    for i in range(templates):
        await core.catalog.put_organ_template({**voice, "id": f"organ.grown{i}.v1", "metadata": {"schema": "v1"}})
    built = await asyncio.gather(*(core.organs.build({"organ_template": f"organ.grown{i % templates}.v1"}, "admin")
                                   for i in range(organs)))
    assert len(built) == organs


async def settle(core) -> None:
    while any(o["state"] not in ("stable", "failed") for o in await core.organs.list()):
        await asyncio.sleep(0.05)


async def command_ms(core) -> float:
    t = time.perf_counter()
    said = await core.commands.handle("создай голосовой орган v1", "s-bench", "admin")
    assert said["understood"], said
    return (time.perf_counter() - t) * 1000


async def apply_ms(core) -> float:
    """Plan the voice organ (no live one: the last is failed), then time its apply alone."""
    said = await core.commands.handle("создай голосовой орган v1", "s-bench", "admin")
    assert said["plan"]["changes"][-1]["action"] == "create", said["plan"]["text"]
    await core.commands.store.flush()  # a saved plan (a person applies seconds later, not within the 5 ms write-behind)
    t = time.perf_counter()
    done = await core.commands.apply(said["plan"]["id"], "admin")
    ms = (time.perf_counter() - t) * 1000
    await core.organs.set_status(done.applied[-1].organ_id, "failed", "bench", "admin")  # the next plan builds again
    return ms


async def build_ms(core) -> float:
    t = time.perf_counter()
    status, body = await core.organs.build({"organ_template": VOICE}, "admin")
    ms = (time.perf_counter() - t) * 1000
    assert status == 201
    await core.organs.set_status(body["organ_id"], "failed", "bench", "admin")  # the next apply builds again
    return ms


async def main(n: int, records: int, organs: int, templates: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        empty, grown = await started(Path(tmp) / "empty"), await started(Path(tmp) / "grown")
        try:
            t = time.perf_counter()
            await grow(grown, records, organs, templates)
            await settle(grown)
            filled_s = time.perf_counter() - t
            for core in (empty, grown):  # warm both: the voice organ's cells have records, the caches are loaded
                await apply_ms(core)
            seen: dict[str, dict[str, list[float]]] = {op: {"empty": [], "grown": []} for op in ("command", "apply", "build")}
            for _ in range(n):
                for op, fn in (("command", command_ms), ("apply", apply_ms), ("build", build_ms)):
                    for name, core in (("empty", empty), ("grown", grown)):
                        seen[op][name].append(await fn(core))
        finally:
            await empty.stop()
            await grown.stop()
    out = {}
    for op, by in seen.items():
        p50 = {name: round(statistics.median(v), 3) for name, v in by.items()}
        p99 = {name: round(percentile(v, 99), 3) for name, v in by.items()}
        out[op] = {"p50_ms": p50, "p99_ms": p99, "ratio_p50": round(p50["grown"] / p50["empty"], 2)}
    return {"n": n, "records": records, "organs": organs, "templates": templates, "fill_s": round(filled_s, 1), **out}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="measurements per operation and data dir")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--organs", type=int, default=2000)
    parser.add_argument("--templates", type=int, default=300)
    args = parser.parse_args()
    res = asyncio.run(main(args.n, args.records, args.organs, args.templates))
    for op in ("command", "apply", "build"):
        r = res[op]
        print(f"{op:8s} p50 empty {r['p50_ms']['empty']:7.2f} ms  grown {r['p50_ms']['grown']:7.2f} ms  "
              f"ratio {r['ratio_p50']:.2f}x   p99 {r['p99_ms']['empty']:.2f} / {r['p99_ms']['grown']:.2f} ms")
    print("saved", save("data_growth", res))
