"""Replicas on one PostgreSQL: builds/s and commands/s with 1, 2 and 3 `neira serve` processes, SQLite with one as
the reference, and the delivery of a stage change made on replica A to a WebSocket on the last replica, in one run
(issue 16).

    .venv/bin/python bench/replicas.py [--url postgresql://user@host:port/db] [--builds 300] [--commands 100]
                                       [--concurrency 16] [--deliveries 50]

Without `--url` a throwaway cluster is started from Debian's server binaries (tests/postgres/cluster.py); with one,
each configuration gets a fresh database made from it. The replicas are started by the multi-replica suite's
harness (tests/postgres/replicas.py): real processes, each with its own data dir and port, one token and catalog.
Per configuration, in this order:
- builds: `--builds` `POST /organs/build` (organ.echo.v1, 1 ms stages) round-robin over the replicas,
  `--concurrency` in flight; builds/s = builds / (first request → the last build's `stable` event is stored).
  Builds answered with an error, or not stable within 60 s, are counted, not timed.
- commands: `--commands` pairs of «create cell benchN» said on replica i and its plan applied on replica i+1
  (a plan made on one replica applied on another, as behind a load balancer); commands/s = pairs / wall time.
- delivery (`--deliveries` builds, one at a time, made on A): per `organ.stage` event, the time from its
  stored `at` to its arrival on a `WS /api/neira/events/stream` on the last replica (A itself with one replica);
  p50/p99, and how many of the expected frames arrived within 2 s (after three builds with none, it stops).
- CPU per build and per command: user + system time of the replicas' processes and of the throwaway cluster's
  processes (from /proc) over each phase, divided by what succeeded (the database's only for its own cluster);
  in the delivery phase, per replica: the builds are made on A alone, so B's and C's CPU is what another
  replica's writes cost a replica.
Every replica and this load generator share the machine's cores: the figures say what one machine does, not
what three machines would."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import percentile, save
from tests.postgres.replicas import Replicas, client

CONFIGS = [("sqlite", 1), ("postgres", 1), ("postgres", 2), ("postgres", 3)]
ENV = {"ORGANS_BUILDER_STAGE_DELAYS": "1,1,1", "NEIRA_ANALYSIS_INTERVAL_MS": "0", "NEIRA_INTEGRITY_INTERVAL_S": "0"}
STAGES = ("draft", "canary", "experimental", "stable")  # one organ.stage event each
WAIT_S = 2.0  # a frame not there this long after its build is counted as not delivered


class Cluster:
    """Where the fresh databases come from: `--url`'s server, or a throwaway cluster started here."""

    def __init__(self, url: str | None) -> None:
        self.url, self.own = url, None
        self.names = itertools.count(1)
        if url is None:
            from tests.postgres.cluster import start_cluster

            self.own = start_cluster(Path(tempfile.mkdtemp(prefix="neira-bench-pg-")))

    def fresh(self) -> str:
        name = f"bench_replicas_{os.getpid()}_{next(self.names)}"
        if self.own is not None:
            return self.own.create(name)
        import asyncpg

        async def make() -> None:
            conn = await asyncpg.connect(self.url)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(make())
        return self.url.rsplit("/", 1)[0] + f"/{name}"  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.own is not None:
            self.own.stop()

    def server_pids(self) -> list[int]:
        """The throwaway cluster's postmaster and its children (backends, writers); none for `--url`'s server."""
        if self.own is None:
            return []
        postmaster = int((self.own.base / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]


def cpu_of(pids: list[int]) -> dict[int, float]:
    """pid → user + system CPU seconds it has used so far (a process that ended is left out)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (stat's 14, 15)
    return out


class Cpu:
    """CPU used by the replicas and by the database server across one phase of the run: per process, the time at
    the end less the time at the start (a database backend that started meanwhile counts whole; one that ended
    meanwhile is lost, so the database's figure is a floor)."""

    def __init__(self, group: Replicas, cluster: Cluster | None) -> None:
        self.replicas = [s.proc.pid for s in group.servers if s.proc is not None]
        self.cluster = cluster
        self.start = cpu_of(self.replicas), cpu_of(self._database())

    def _database(self) -> list[int]:
        return self.cluster.server_pids() if self.cluster is not None else []

    @staticmethod
    def _used(start: dict[int, float], end: dict[int, float]) -> float:
        return sum(t - start.get(pid, 0.0) for pid, t in end.items())

    def each(self, n: int) -> dict[str, float]:
        """CPU ms per unit of work (n units) of each replica apart (A, B, C) since the start."""
        end = cpu_of(self.replicas)
        return {name: round((end[pid] - self.start[0][pid]) * 1000 / n, 2)
                for name, pid in zip("ABC", self.replicas, strict=False) if pid in end}

    def per(self, n: int) -> dict[str, float | None]:
        """CPU ms per unit of work (n units) since the start, replicas and database apart."""
        replicas = self._used(self.start[0], cpu_of(self.replicas))
        database = self._used(self.start[1], cpu_of(self._database())) if self.cluster is not None else None
        return {"replicas_cpu_ms": round(replicas * 1000 / n, 2) if n else None,
                "database_cpu_ms": round(database * 1000 / n, 2) if n and database is not None else None}


async def events_after(c: httpx.AsyncClient, since: int) -> list[dict[str, Any]]:
    r = await c.get("/api/neira/events", params={"since": since, "limit": 1000})
    r.raise_for_status()
    return r.json()


async def last_seq(c: httpx.AsyncClient) -> int:
    seq = 0
    while batch := await events_after(c, seq):
        seq = batch[-1]["seq"]
    return seq


async def builds(clients: list[httpx.AsyncClient], n: int, concurrency: int) -> dict[str, Any]:
    watcher = clients[0]
    since = await last_seq(watcher)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str | None:
        async with gate:
            r = await clients[i % len(clients)].post("/organs/build", json={"organ_template": "organ.echo.v1"})
        return r.json()["organ_id"] if r.status_code == 201 else None

    t0 = time.perf_counter()
    ids = {x for x in await asyncio.gather(*(one(i) for i in range(n))) if x is not None}
    started = time.perf_counter() - t0
    left, end = set(ids), time.perf_counter()
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        batch = await events_after(watcher, since)
        for e in batch:
            since = e["seq"]
            if e["type"] == "organ.stage" and e["data"]["state"] == "stable":
                left.discard(e["subject"].removeprefix("organ:"))
        end = time.perf_counter()
        if left and not batch:
            await asyncio.sleep(0.02)  # the next poll of the stored events
    done = len(ids) - len(left)
    elapsed = end - t0
    stuck = {o: (await watcher.get(f"/organs/{o}/status")).json().get("state") for o in sorted(left)[:5]}
    return {"asked": n, "started": len(ids), "refused": n - len(ids), "stable": done, "not_stable_in_60s": len(left),
            "seconds": round(elapsed, 3), "builds_per_s": round(done / elapsed, 1) if done else 0.0,
            "starts_per_s": round(len(ids) / started, 1) if ids else 0.0, "not_stable_sample": stuck}


async def commands(clients: list[httpx.AsyncClient], n: int, concurrency: int, tag: str) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    errors: dict[str, int] = {}

    def error(where: str, r: httpx.Response) -> None:
        code = r.json().get("code", "?") if r.headers.get("content-type", "").startswith("application/json") else "?"
        errors[f"{where} {r.status_code} {code}"] = errors.get(f"{where} {r.status_code} {code}", 0) + 1

    async def one(i: int) -> bool:
        said_on, apply_on = clients[i % len(clients)], clients[(i + 1) % len(clients)]
        async with gate:
            said = await said_on.post("/api/neira/commands", json={"text": f"создай клетку {tag}{i}"})
            plan = said.json().get("plan") if said.status_code == 200 else None
            if plan is None:
                error("say", said)
                return False
            applied = await apply_on.post(f"/api/neira/commands/plans/{plan['id']}/apply")
        if applied.status_code != 200:
            error("apply", applied)
            return False
        return True

    t0 = time.perf_counter()
    ok = sum(await asyncio.gather(*(one(i) for i in range(n))))
    elapsed = time.perf_counter() - t0
    return {"asked": n, "applied": ok, "errors": errors, "seconds": round(elapsed, 3),
            "commands_per_s": round(ok / elapsed, 1) if ok else 0.0}


async def delivery(group: Replicas, clients: list[httpx.AsyncClient], n: int) -> dict[str, Any]:
    """Builds made on A one at a time; each stage event's arrival on the last replica's events stream."""
    target = len(group) - 1
    arrived: dict[tuple[str, str], float] = {}  # (subject, state) → ms from the event's `at` to its arrival
    latencies: list[float] = []
    async with connect(group.ws_url(target, "/api/neira/events/stream"), max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                e = json.loads(raw)
                if e.get("type") == "organ.stage":
                    arrived[(e["subject"], e["data"]["state"])] = (time.time() - e["at"]) * 1000

        reader = asyncio.create_task(receive())
        asked = 0
        for _ in range(n):
            r = await clients[0].post("/organs/build", json={"organ_template": "organ.echo.v1"})
            if r.status_code != 201:
                continue
            asked += len(STAGES)
            keys = [(f"organ:{r.json()['organ_id']}", s) for s in STAGES]
            deadline = time.monotonic() + WAIT_S
            while not all(k in arrived for k in keys) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)  # waiting for this build's frames before the next build
            latencies += [arrived[k] for k in keys if k in arrived]
            if asked >= 3 * len(STAGES) and not latencies:
                break  # nothing crosses: three builds are enough to say so
        reader.cancel()
    return {"from": "A", "to": "ABC"[target], "expected": asked, "delivered": len(latencies),
            "p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
            "p99_ms": round(percentile(latencies, 99), 2) if latencies else None,
            "max_ms": round(max(latencies), 2) if latencies else None}


async def measure(group: Replicas, args: argparse.Namespace, tag: str, cluster: Cluster | None) -> dict[str, Any]:
    clients = [client(s, args.concurrency) for s in group.servers]
    try:
        cpu = Cpu(group, cluster)
        out = {"builds": await builds(clients, args.builds, args.concurrency)}
        out["builds"]["per_build"] = cpu.per(out["builds"]["stable"])
        cpu = Cpu(group, cluster)
        out["commands"] = await commands(clients, args.commands, args.concurrency, tag)
        out["commands"]["per_command"] = cpu.per(out["commands"]["applied"])
        cpu = Cpu(group, cluster)
        out["delivery"] = await delivery(group, clients, args.deliveries)
        builds_made = out["delivery"]["expected"] // len(STAGES)
        # the builds are made on A only: what B and C spend is what another replica's writes cost them
        out["delivery"]["cpu_ms_per_build_on_a"] = cpu.each(builds_made) if builds_made else {}
        return out
    finally:
        for c in clients:
            await c.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=None, help="a PostgreSQL server to make the databases on (default: a throwaway cluster)")
    ap.add_argument("--builds", type=int, default=300)
    ap.add_argument("--commands", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--deliveries", type=int, default=50)
    ap.add_argument("--configs", default=",".join(f"{b}:{n}" for b, n in CONFIGS), help="backend:replicas, comma-separated")
    args = ap.parse_args()
    configs = [(b, int(n)) for b, n in (x.split(":") for x in args.configs.split(","))]
    cluster = Cluster(args.url)
    results = []
    try:
        for backend, n in configs:
            with tempfile.TemporaryDirectory(prefix="neira-bench-replicas-") as tmp:
                group = Replicas(Path(tmp), cluster.fresh() if backend == "postgres" else None, n, ENV)
                group.start()
                try:
                    figures = asyncio.run(measure(group, args, f"b{backend[0]}{n}x",
                                                  cluster if backend == "postgres" else None))
                finally:
                    group.stop()
                    # what went wrong, when something did: the replicas' logged errors (their data dirs go)
                    logged = [f"{name}: {line[:300]}" for name, s in zip("ABC", group.servers, strict=False)
                              for line in s.log().splitlines() if " ERROR " in line][:20]
                    if logged:  # keep the whole logs (tracebacks) for whoever reads the figures
                        keep = Path(tempfile.mkdtemp(prefix=f"neira-bench-replicas-{backend}{n}-logs-"))
                        for name, s in zip("ABC", group.servers, strict=False):
                            (keep / f"{name}.log").write_text(s.log())
                        logged.append(f"full logs: {keep}")
            figures["logged_errors"] = logged
            results.append({"backend": backend, "replicas": n, **figures})
            b, c, d = figures["builds"], figures["commands"], figures["delivery"]
            for line in figures["logged_errors"]:
                print("  logged:", line, flush=True)
            print(f"{backend} x{n}: {b['builds_per_s']} builds/s ({b['stable']}/{b['asked']} stable; CPU ms per build "
                  f"{b['per_build']}), {c['commands_per_s']} commands/s ({c['applied']}/{c['asked']} applied, "
                  f"{c['errors']}; CPU ms per command {c['per_command']}), "
                  f"delivery A→{d['to']} p50 {d['p50_ms']} ms p99 {d['p99_ms']} ms ({d['delivered']}/{d['expected']}; "
                  f"CPU ms per build made on A {d['cpu_ms_per_build_on_a']})",
                  flush=True)
    finally:
        cluster.stop()
    load = os.getloadavg()[0]
    print(save("replicas", {"args": vars(args), "load_average_1m_after": round(load, 2), "results": results}))


if __name__ == "__main__":
    main()
