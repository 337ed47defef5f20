"""In-process apply of the voice organ's saved plan (issue 10: p50 ≤ 2 ms), next to its peer in the same run:
a write transaction holding one statement (the floor any apply pays). Rounds interleave the two so a noisy
spell touches both alike; wall and CPU (process time) are reported, with the SQLite driver calls each apply
makes (inline, on the loop: neira/storage/inline.py). Optionally profiles the applies.

Usage: `python bench/apply.py [--n 300] [--gap-ms 10] [--profile]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, percentile, save  # noqa: E402

sys.path.insert(0, str(ROOT))
PHRASE = "создай голосовой орган v1"


async def one_apply(core, statements: list[str], gap_s: float, prof: cProfile.Profile | None = None) -> tuple[float, float, int]:
    """Plan the voice organ (its last organ is failed, so the plan builds anew), save it, time its apply."""
    said = await core.commands.handle(PHRASE, "s-bench", "admin")
    assert said["plan"]["changes"][-1]["action"] == "create", said["plan"]["text"]
    await core.commands.store.flush()  # a saved plan: a person applies seconds after the 5 ms write-behind
    await asyncio.sleep(gap_s)  # idle before it, as a person applies: the previous round's after-commit work is done
    statements.clear()
    w, c = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    done = await core.commands.apply(said["plan"]["id"], "admin")
    if prof:
        prof.disable()
    wall, cpu, sent = (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000, len(statements)
    await core.organs.set_status(done.applied[-1].organ_id, "failed", "bench", "admin")
    return wall, cpu, sent


async def one_peer(core, gap_s: float) -> tuple[float, float]:
    """The floor: one write transaction with one statement."""
    await asyncio.sleep(gap_s)
    w, c = time.perf_counter(), time.process_time()
    async with core.db.transaction() as tx:
        await tx.conn.exec_driver_sql("SELECT 1")
    return (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000


async def main(n: int, profile: bool, gap_s: float) -> dict:
    from neira.config import Settings
    from neira.core import Core
    from neira.storage import inline

    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token="bench-admin-token", stage_delays_ms=(1, 1, 1)))
        await core.start()
        statements: list[str] = []  # every SQLite driver call an apply makes
        queue = inline.Connection._execute

        async def counted(self, fn, *args, **kwargs):
            statements.append(getattr(fn, "__name__", "?"))
            return await queue(self, fn, *args, **kwargs)

        inline.Connection._execute = counted
        try:
            for _ in range(20):
                await one_apply(core, statements, gap_s)
                await one_peer(core, gap_s)
            prof = cProfile.Profile() if profile else None
            applies, peers, sent = [], [], []
            for _ in range(n):
                wall, cpu, k = await one_apply(core, statements, gap_s, prof)
                applies.append((wall, cpu))
                sent.append(k)
                peers.append(await one_peer(core, gap_s))
        finally:
            await core.stop()
    if prof:
        pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "40")))

    def p50(xs: list[tuple[float, float]], i: int) -> float:
        return round(statistics.median(x[i] for x in xs), 3)

    return {
        "n": n, "gap_ms": gap_s * 1000, "load": os.getloadavg()[0],
        "apply_wall_p50_ms": p50(applies, 0), "apply_wall_p99_ms": round(percentile([a[0] for a in applies], 99), 3),
        "apply_cpu_p50_ms": p50(applies, 1), "driver_calls": statistics.median(sent),
        "peer_wall_p50_ms": p50(peers, 0), "peer_cpu_p50_ms": p50(peers, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="applies (and peers) measured")
    parser.add_argument("--gap-ms", type=float, default=10.0,
                        help="idle time before each apply and peer (10: an apply after a pause, as a person makes it, "
                             "which on a VM pays for a cold CPU; 0: back to back, as under steady use)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the measured applies")
    args = parser.parse_args()
    res = asyncio.run(main(args.n, args.profile, args.gap_ms / 1000))
    print(f"apply p50 {res['apply_wall_p50_ms']:.2f} ms wall (p99 {res['apply_wall_p99_ms']:.2f}), "
          f"{res['apply_cpu_p50_ms']:.2f} ms CPU, {res['driver_calls']:.0f} driver calls | peer (one-statement write "
          f"transaction) {res['peer_wall_p50_ms']:.2f} ms wall, {res['peer_cpu_p50_ms']:.2f} ms CPU | load {res['load']:.1f}")
    print("saved", save("apply", res))
