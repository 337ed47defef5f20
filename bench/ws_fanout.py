"""WebSocket fan-out: N subscribers on one organ's stream; time from a stage change to its delivery.

A real server subprocess; the subscribers live in this (separate) process. Each round moves the organ one legal
step round the lifecycle (draft → canary → experimental → stable by `POST /organs/{id}/status`, then failed, then
`POST /organs/{id}/rebuild` back to draft; the stages last an hour, so nothing else moves it) and measures, per
subscriber, the time until the frame with that state arrives. The subscribers stand in for 1,000 separate clients: each is a bare asyncio Protocol (bench/ws_client.py)
on uvloop, and this process's own cyclic GC is frozen once they are connected (its pauses are not the
server's latency). The server's full collections during the rounds
are counted from its `/metrics` (`python_gc_collections_total{generation="2"}`) and reported next to the
figures, with each round's slowest delivery.
Usage: `python bench/ws_fanout.py [--subscribers 1000] [--rounds 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import percentile, save, summary  # noqa: E402
from api_load import TOKEN, start_neira  # noqa: E402
from ws_client import StreamClient, connect  # noqa: E402


CYCLE = ("canary", "experimental", "stable", "failed", "draft")  # from draft, each a legal move (lifecycle table)
HOUR_STAGES = "3600000,3600000,3600000"


def prepare(url: str) -> str:
    """A new build, in draft (its stages last an hour: only the rounds move it)."""
    h = {"Authorization": f"Bearer {TOKEN}"}
    resp = httpx.post(f"{url}/organs/build", json={"organ_template": "organ.echo.v1"}, headers=h)
    resp.raise_for_status()
    return resp.json()["organ_id"]


class Round:
    """The change being measured: the state it sets, when it was sent, and the deliveries seen so far."""

    def __init__(self, n: int) -> None:
        self.n, self.state, self.t0 = n, "", 0.0
        self.latencies: list[float] = []
        self.done = asyncio.Event()

    def start(self, state: str) -> None:
        self.state, self.t0, self.latencies = state, time.perf_counter(), []
        self.done.clear()

    def arrived(self, at: float, payload: bytes) -> None:
        if json.loads(payload).get("state") == self.state:
            self.latencies.append((at - self.t0) * 1000)
            if len(self.latencies) == self.n:
                self.done.set()


async def subscribe(url: str, current: Round) -> StreamClient:
    """One subscriber, connected and past its snapshot frame; later frames go to `current`."""
    snapshot: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_text(at: float, payload: bytes) -> None:
        if snapshot.done():
            current.arrived(at, payload)
        else:
            snapshot.set_result(payload)

    client = await connect(url, on_text)
    json.loads(await asyncio.wait_for(snapshot, 60))
    return client


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(base: str, organ: str, n: int, rounds: int, pid: int) -> dict:
    ws_url = base.replace("http", "ws") + f"/organs/{organ}/stream?token={TOKEN}"
    current = Round(n)
    clients: list[StreamClient] = []
    for batch in range(0, n, 100):  # the handshakes in batches of 100
        clients += await asyncio.gather(*(subscribe(ws_url, current) for _ in range(batch, min(n, batch + 100))))
    gc.collect()
    gc.freeze()
    latencies: list[float] = []
    slowest: list[float] = []  # per round
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        full_gcs = await server_full_collections(client)
        cpu, own = cpu_seconds(pid), time.process_time()
        for r in range(rounds):
            state = CYCLE[r % len(CYCLE)]
            current.start(state)
            if state == "draft":
                resp = await client.post(f"/organs/{organ}/rebuild")
            else:
                resp = await client.post(f"/organs/{organ}/status", json={"state": state, "reason": "bench"})
            resp.raise_for_status()
            await asyncio.wait_for(current.done.wait(), 30)
            latencies += current.latencies
            slowest.append(current.latencies[-1])
        cpu, own = cpu_seconds(pid) - cpu, time.process_time() - own
        full_gcs = await server_full_collections(client) - full_gcs
    for c in clients:
        c.close()
    lat = {**summary(latencies), "p99_9": percentile(latencies, 99.9), "max": max(latencies)}
    return {"subscribers": n, "rounds": rounds, "deliveries": len(latencies), "latency_ms": lat,
            "slowest_per_round_ms": {"p50": percentile(slowest, 50), "max": max(slowest)},
            "rounds_over_100ms": sum(1 for v in slowest if v > 100), "server_full_gc_during_rounds": full_gcs,
            "server_cpu_us_per_delivery": round(cpu / len(latencies) * 1e6, 1),
            "client_cpu_us_per_delivery": round(own / len(latencies) * 1e6, 1)}


async def server_full_collections(client: httpx.AsyncClient) -> int:
    """How many full (generation 2) collections the server's cyclic GC has run so far."""
    text = (await client.get("/metrics")).text
    return int(float(re.search(r'^python_gc_collections_total\{generation="2"\} (\S+)$', text, re.M).group(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_neira(Path(tmp) / "data", stage_delays=HOUR_STAGES)
        try:
            organ = prepare(url)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the server runs on uvloop too
                result = runner.run(run(url, organ, args.subscribers, args.rounds, proc.pid))
        finally:
            proc.terminate()
            proc.wait(10)
    lat = result["latency_ms"]
    print(f"{result['subscribers']} subscribers x {result['rounds']} changes: delivery p50 {lat['p50']:.1f} ms, "
          f"p99 {lat['p99']:.1f} ms, p99.9 {lat['p99_9']:.1f} ms, max {lat['max']:.1f} ms; rounds over 100 ms: "
          f"{result['rounds_over_100ms']}; server full GCs during the rounds: {result['server_full_gc_during_rounds']}; "
          f"CPU per delivery: server {result['server_cpu_us_per_delivery']} µs, clients {result['client_cpu_us_per_delivery']} µs")
    print("saved", save("ws_fanout", result))


if __name__ == "__main__":
    main()
