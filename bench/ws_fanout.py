"""WebSocket fan-out: N subscribers on one organ's stream; time from a stage change to its delivery.

A real server subprocess; the subscribers live in this (separate) process. Each round sets the organ's state
through `POST /organs/{id}/status` and measures, per subscriber, the time until the frame with that state
arrives. Usage: `python bench/ws_fanout.py [--subscribers 1000] [--rounds 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import save, summary  # noqa: E402
from api_load import TOKEN, prepare, start_neira  # noqa: E402


async def subscriber(url: str, ready: asyncio.Event, counter: list[int], total: int, inbox: asyncio.Queue) -> None:
    async with websockets.connect(url, max_queue=None, open_timeout=60) as ws:
        json.loads(await ws.recv())  # the snapshot frame
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        async for raw in ws:
            inbox.put_nowait((time.perf_counter(), json.loads(raw)))


async def run(base: str, organ: str, n: int, rounds: int) -> dict:
    ws_url = base.replace("http", "ws") + f"/organs/{organ}/stream?token={TOKEN}"
    ready, counter, inbox = asyncio.Event(), [0], asyncio.Queue()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(subscriber(ws_url, ready, counter, n, inbox)))
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the handshakes proceed in batches
    await asyncio.wait_for(ready.wait(), 120)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for r in range(rounds):
            state = "canary" if r % 2 == 0 else "experimental"
            t0 = time.perf_counter()
            resp = await client.post(f"/organs/{organ}/status", json={"state": state, "reason": "bench"})
            resp.raise_for_status()
            got = 0
            while got < n:
                at, frame = await asyncio.wait_for(inbox.get(), 30)
                if frame.get("state") == state:
                    latencies.append((at - t0) * 1000)
                    got += 1
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"subscribers": n, "rounds": rounds, "deliveries": len(latencies), "latency_ms": summary(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_neira(Path(tmp) / "data")
        try:
            organ = prepare(url)
            result = asyncio.run(run(url, organ, args.subscribers, args.rounds))
        finally:
            proc.terminate()
            proc.wait(10)
    lat = result["latency_ms"]
    print(f"{result['subscribers']} subscribers x {result['rounds']} changes: delivery p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    print("saved", save("ws_fanout", result))


if __name__ == "__main__":
    main()
