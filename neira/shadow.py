"""Shadow traffic (contract §7): while a cell record or an organ is in canary or experimental, a share
(`NEIRA_CANARY_SHARE`, default 0.2) of the runs of its family's stable version is run on it too. The caller
always has the stable answer already: a shadow starts after it is ready, never waits for a worker (when the pool
has none free, or runs are queued, the shadow is dropped and counted as a measurement-source error, never as a
failure), and at most `limit` shadows run at once. Each shadow is a measurement row of the canary
(`analysis_runs`, source `shadow`); `passed` says its answer equals the stable one's, so the analysis'
`divergence` covers answers that differ."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import delete, select

from neira.errors import Busy, InvalidRequest, NeiraError
from neira.metrics import Metrics
from neira.runtime.payloads import AnyPayload
from neira.runtime.results import RunResult
from neira.runtime.traffic import Served
from neira.storage import tables
from neira.storage.db import Database

log = logging.getLogger("neira.shadow")
A = tables.analysis_runs
FLUSH_S = 0.25  # shadow rows are written in batches: one transaction per batch, off the callers' path
WINDOW_RUNS = 5  # as neira/analysis.py: the newest WINDOW_RUNS × min_runs rows of a subject are kept


class Trials(Protocol):
    """What shadowing needs of the runtime: a run that never queues and is not traffic."""

    async def trial(self, kind: str, id: str, payload: AnyPayload, pathway: str | None = None) -> RunResult: ...


class Canaries(Protocol):
    """(id, state) of the canary/experimental versions beside a stable one."""

    async def canaries(self, kind: str, template_id: str) -> list[tuple[str, str]]: ...


class Stint(Protocol):
    """A subject's current stage (`state`), when it entered it (`since`), its `policy.min_runs`, `measuring`."""

    state: str
    since: float
    policy: Any
    measuring: bool


class Stints(Protocol):
    """The analysis' view of a subject (`cell:<id>` / `organ:<id>`), None when it is gone."""

    async def subject(self, key: str) -> Stint | None: ...


class Shadow:
    """Shadows a share of stable runs to their canaries and keeps each as a measurement row."""

    def __init__(self, db: Database, canaries: Canaries, trials: Trials, stints: Stints, metrics: Metrics,
                 share: float, limit: int, busy: Callable[[], bool]) -> None:
        self.db, self.canaries, self.trials, self.stints = db, canaries, trials, stints
        self.share, self.limit, self.busy = share, max(1, limit), busy
        self._outcomes = {o: metrics.canary_shadow_runs.labels(o) for o in ("ok", "diverged", "failed", "dropped")}
        self._credit: dict[tuple[str, str], float] = {}  # (kind, template id) → share accumulated so far
        self._targets: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (kind, template id) → canaries
        self._looking: set[tuple[str, str]] = set()
        self._unpruned: dict[str, int] = {}  # subject → rows written since its last prune
        self._moves = 0  # record and organ commits seen: a look-up that raced one is used once, not kept
        self._stints: dict[str, tuple[str, float, int] | None] = {}  # subject → (stage, since, rows kept), if measured
        self._inflight = 0
        self._rows: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._flush: asyncio.Task[None] | None = None
        db.feed.subscribe("cell_records", self._moved)
        db.feed.subscribe("organs", self._moved)

    def _moved(self, _changes: list[Any]) -> None:
        self._targets.clear()  # a record or organ moved: who is in canary (and since when) is asked again
        self._stints.clear()
        self._moves += 1

    def served(self, s: Served) -> None:
        """A caller got a stable version's answer: shadow it to the canaries when its share is due."""
        if self.share <= 0 or s.state != "stable":
            return
        key = (s.kind, s.template_id)
        targets = self._targets.get(key)
        if targets is None:
            if key not in self._looking:  # one look-up per version at a time; runs meanwhile are not shadowed
                self._looking.add(key)
                self._spawn(self._look_up(s, key))
            return
        if not targets:
            return
        credit = self._credit.get(key, 0.0) + self.share
        if credit < 1.0:
            self._credit[key] = credit
            return
        self._credit[key] = credit - 1.0
        for target, state in targets:
            if self._inflight >= self.limit or self.busy():
                self._outcomes["dropped"].inc()  # a measurement-source error: no worker to spare now
                continue
            self._inflight += 1
            self._spawn(self._shadow(s, target, state))

    async def _look_up(self, s: Served, key: tuple[str, str]) -> None:
        moves = self._moves
        try:
            found = await self.canaries.canaries(s.kind, s.template_id)
        finally:
            self._looking.discard(key)
        if moves == self._moves:  # else a record or organ moved meanwhile: this run goes unshadowed
            self._targets[key] = found
            self.served(s)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shadow(self, s: Served, target: str, state: str) -> None:
        try:
            result = await self.trials.trial(s.kind, target, s.payload, s.pathway)
        except (Busy, InvalidRequest):  # no free worker (or a pathway the canary lacks): nothing was measured
            self._outcomes["dropped"].inc()
            return
        except NeiraError:  # the canary cannot run now (a gate closed, a quarantine): an error of the canary
            result = None
        except Exception as exc:
            log.warning("a shadow run of %s failed to start (%s)", target, type(exc).__name__)
            self._outcomes["dropped"].inc()
            return
        finally:
            self._inflight -= 1
        ok = result is not None and result.ok
        same = ok and (not s.result.ok or result.output == s.result.output)  # type: ignore[union-attr]
        self._outcomes["ok" if same else "diverged" if ok else "failed"].inc()
        self._rows.append({"subject": f"{s.kind}:{target}", "stage": state, "source": "shadow", "ok": ok,
                           "passed": same, "ms": result.ms if result is not None else 0.0, "at": time.time()})
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(FLUSH_S)  # batching: one write for the shadows of the next FLUSH_S
            await self.flush()
        except Exception as exc:  # a lost batch of measurements must not stop shadowing
            log.warning("shadow rows were not written (%s)", type(exc).__name__)
        finally:
            self._flush = None
            if self._rows:
                self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def flush(self) -> None:
        """Write the shadow rows taken so far, each in its subject's current stint (a row of a subject that
        has left the stage it was measured in is dropped: that stint is over)."""
        rows, self._rows = self._rows, []
        if not rows:
            return
        stints = {key: await self._stint(key) for key in {r["subject"] for r in rows}}
        keep: list[dict[str, Any]] = []
        for row in rows:
            stint = stints[row["subject"]]
            if stint is not None and stint[0] == row["stage"]:
                keep.append({**row, "since": stint[1]})
        if not keep:
            return
        async with self.db.transaction() as tx:
            await tx.conn.execute(A.insert(), keep)
            for key in {r["subject"] for r in keep}:
                limit = stints[key][2]  # type: ignore[index]
                self._unpruned[key] = self._unpruned.get(key, 0) + sum(r["subject"] == key for r in keep)
                if self._unpruned[key] >= limit // 2:  # pruned now and then, not per batch: at most 1.5 × the window
                    await prune(tx.conn, key, limit)
                    self._unpruned[key] = 0

    async def _stint(self, key: str) -> tuple[str, float, int] | None:
        """(stage, since, rows to keep) of a subject under analysis, kept until a record or organ moves."""
        if key in self._stints:
            return self._stints[key]
        moves = self._moves
        found = await self.stints.subject(key)
        stint = (found.state, found.since, WINDOW_RUNS * found.policy.min_runs) if found is not None and found.measuring else None
        if moves == self._moves:
            self._stints[key] = stint
        return stint

    async def drain(self) -> None:
        """Wait for the shadows running now and write their rows (tests, benchmarks and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._flush is not None:
            self._flush.cancel()
            await asyncio.gather(self._flush, return_exceptions=True)
            self._flush = None
        await self.flush()

    async def close(self) -> None:
        """Stop: shadows in flight are cancelled (nothing waits for them); rows taken are written."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.drain()


async def prune(conn: Any, subject: str, keep: int) -> None:
    """Keep the newest `keep` rows of a subject."""
    cut = (await conn.execute(select(A.c.seq).where(A.c.subject == subject).order_by(A.c.seq.desc())
                              .offset(keep).limit(1))).scalar()
    if cut is not None:
        await conn.execute(delete(A).where(A.c.subject == subject, A.c.seq <= cut))
