"""RunService: what the routes, the chat and the CLI call to run a cell record or an organ (contract §6).

It decides whether a thing may run (state, implementation, the backend's gate), turns the pathway into
Steps (kept while nothing they depend on changes), runs them, counts the run in the metrics and in the
organ's recent-run window, and answers a RunResult."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import msgspec

from neira.catalog import Catalog
from neira.config import Settings
from neira.errors import CapabilityDisabled, InvalidRequest, NotRunnable
from neira.ids import new_id
from neira.planning import is_dead
from neira.lifecycle import OrganState
from neira.metrics import Metrics
from neira.policy import PolicyEngine
from neira.runtime.backends import AdapterBackend, Backend, Step
from neira.plan import Risk
from neira.runtime.chain import pathway_risks
from neira.runtime.memory import DbMemory
from neira.runtime.payloads import AnyPayload, as_payload, from_wire
from neira.runtime.pool import Pool
from neira.runtime.registry import Registry
from neira.runtime.results import RunResult
from neira.runtime.runner import Outcome, Runner
from neira.runtime.sandbox import ScriptBackend, WasmBackend
from neira.runtime.sandbox.limits import Limits, limits_of
from neira.runtime.sources import OrganView, RecordView, Sources
from neira.runtime.traffic import Guard, OpenGuard, Served, ServedListener
from neira.runtime.window import RunWindow
from neira.storage.db import Database
from neira.structs import Base
from neira.templates import OrganTemplate

log = logging.getLogger("neira.runtime")


class CellRun(Base):
    """Body of `POST /factory/cells/{id}/run`."""

    input: str | AnyPayload


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class OrganRun(Base):
    """Body of `POST /organs/{id}/run`."""

    input: str | AnyPayload
    pathway: Name | None = None


class NamedRun(Base):
    """Body of `POST /organs/run`: the organ by name («voice», `organ.voice`, `organ.voice.v2`)."""

    organ: Name
    input: str | AnyPayload
    pathway: Name | None = None


def decode(body: Any, shape: type[Base]) -> Any:
    """A run request; 400 `invalid_request` naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object with an `input`")
    try:
        return msgspec.convert(body, shape)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid run request: {exc}") from None


def payload_of(value: str | AnyPayload) -> AnyPayload:
    """The run's input payload (a bare string is text); 400 for an empty or overlong string."""
    try:
        return as_payload(value)
    except ValueError as exc:
        raise InvalidRequest(f"invalid run request: input: {exc}") from None


class RunService:
    """Runs cells and organs on the worker pool."""

    def __init__(self, settings: Settings, registry: Registry, db: Database, catalog: Catalog,
                 policy: PolicyEngine, metrics: Metrics, organ_row: Callable[[str], Awaitable[Any]],
                 records_generation: Callable[[], int]) -> None:
        self.registry, self.policy, self.metrics = registry, policy, metrics
        self.timeout_s = settings.run_timeout_ms / 1000
        self.sandbox_limits: Limits = limits_of(settings)
        self.backends: Mapping[str, Backend] = {"adapter": AdapterBackend(registry),
                                                "script": ScriptBackend(self.sandbox_limits),
                                                "wasm": WasmBackend(self.sandbox_limits)}
        warmers = tuple({i.warm for i in registry.impls.values() if i.warm is not None})
        self.pool = Pool(settings.workers, settings.run_queue, warmers)
        self.sources = Sources(db, catalog, organ_row, records_generation)
        self.memory = DbMemory(db)
        self.runner = Runner(self.pool, self.memory)
        self.window = RunWindow()
        self._steps: dict[tuple[str, str], tuple[OrganView, tuple[int, int], list[Step], str]] = {}
        self._children: dict[tuple[Any, ...], Any] = {}  # metric label children, looked up once
        self._failed_runs = metrics.factory_exec_errors.labels("run")
        self.guard: Guard = OpenGuard()  # which records get no traffic (the immune system's quarantine)
        self.listeners: list[ServedListener] = []  # told of every run a caller got its answer from

    def pathway_risks(self, organ: OrganTemplate, bodies: Mapping[str, Mapping[str, Any]]) -> list[Risk]:
        """The type chain of every pathway of `organ` (dry-run risks: `type_mismatch`, `no_implementation`);
        catalog cells come parsed from the catalog's cache."""
        return pathway_risks(organ, bodies, self.backends, lambda body: self.sources.catalog.parsed(body)[0])

    async def close(self) -> None:
        """Stop the workers."""
        await self.pool.close()

    # --- what may run ------------------------------------------------------------------------------
    def _backend(self, record: RecordView) -> Backend:
        backend = self.backends.get(record.backend)
        if backend is None:
            raise NotRunnable(f"cell record {record.id}: the {record.backend} backend cannot run cells yet",
                              cell=record.template.id)
        return backend

    def _check_gates(self, records: list[RecordView]) -> None:
        for record in records:
            gate = self._backend(record).gate
            try:
                self.policy.require(gate)
            except CapabilityDisabled:
                raise NotRunnable(f"the {gate} gate is closed, so {record.template.id} cannot run",
                                  capability=gate, cell=record.template.id) from None

    def _bind(self, record: RecordView, guarded: bool = True) -> Step:
        if is_dead(record.state, record.previous_state):
            raise NotRunnable(f"cell record {record.id} is {record.state}", cell=record.template.id)
        if guarded and (why := self.guard.blocked(record.id)):
            raise NotRunnable(f"cell record {record.id} is quarantined: {why}", cell=record.template.id)
        return self._backend(record).bind(record.template, record.id)

    async def _unblocked(self, organ: OrganView, cell: str, record: RecordView) -> RecordView:
        """The record that runs for `cell` in the organ: its own, or while that one is quarantined the
        template's previous stable version, as after a rollback (409 `not_runnable` when there is none)."""
        why = self.guard.blocked(record.id) or ("rolled back" if record.state == "rolled_back" else None)
        if not why:  # (a rolled-back record's template has its last stable version active again: that one runs)
            return record
        fallback = await self.sources.fallback(record, self.guard.blocked)
        if fallback is None:
            raise NotRunnable(f"cell {cell} of organ {organ.id}: record {record.id} is {'quarantined (' + why + ')' if why != 'rolled back' else 'rolled back'} and no "
                              f"earlier stable version of {record.template.id} can run instead", organ=organ.id, cell=cell)
        return fallback

    async def _organ_steps(self, organ: OrganView, pathway: str | None) -> tuple[list[Step], list[RecordView], str]:
        if organ.state == OrganState.FAILED.value:
            raise NotRunnable(f"organ {organ.id} is failed", organ=organ.id, state="failed")
        pathways = organ.template.pathways
        if not pathways:
            raise NotRunnable(f"organ {organ.id} has no pathway", organ=organ.id)
        chosen = next((p for p in pathways if p.name == pathway), None) if pathway else pathways[0]
        if chosen is None:
            raise InvalidRequest(f"organ {organ.id} has no pathway {pathway!r}; it has {', '.join(p.name for p in pathways)}")
        records = []
        for cell in chosen.cells:
            record_id = organ.records.get(cell)
            if not record_id:
                raise NotRunnable(f"cell {cell} of organ {organ.id} has no record yet", organ=organ.id, cell=cell)
            records.append(await self._unblocked(organ, cell, await self.sources.record(record_id)))
        return [self._bind(r) for r in records], records, chosen.name

    async def runnable_record(self, record_id: str) -> RecordView:
        """The record, when it may run now (400 malformed id, 404 unknown, 409 `not_runnable`)."""
        record = await self.sources.record(record_id)
        self._bind(record)
        self._check_gates([record])
        return record

    # --- runs --------------------------------------------------------------------------------------
    async def run_cell(self, record_id: str, body: Any) -> RunResult:
        """Run one cell record on `{input}` (not traffic: training and analysis run samples here)."""
        req: CellRun = decode(body, CellRun)
        return (await self._cell_run(record_id, payload_of(req.input)))[0]

    async def serve_cell(self, record_id: str, body: Any) -> RunResult:
        """Run one cell record on `{input}` for a caller (the route, the chat): traffic, so it is shadowed to
        the record's canary versions and counts in its error rate."""
        req: CellRun = decode(body, CellRun)
        payload = payload_of(req.input)
        result, record = await self._cell_run(record_id, payload)
        self._served(Served("cell", record.id, record.state, record.template.id, payload, None, result))
        return result

    async def _cell_run(self, record_id: str, payload: AnyPayload, guarded: bool = True,
                        wait: bool = True) -> tuple[RunResult, RecordView]:
        record = await self.sources.record(record_id)
        steps = [self._bind(record, guarded)]
        self._check_gates([record])
        return await self._run(steps, payload, f"cell:{record.id}", wait), record

    async def check_record(self, record_id: str, value: Any) -> RunResult:
        """Run a sample input (wire form) on a record even while it is quarantined: the heal's own check.
        Not traffic."""
        return (await self._cell_run(record_id, _sample(value), guarded=False))[0]

    async def trial(self, kind: str, id: str, payload: AnyPayload, pathway: str | None = None) -> RunResult:
        """A shadow run on a cell record or an organ: never waits for a worker (Busy when none is free, so it
        never queues ahead of a caller), not traffic (no window, no `organ_runs_total`, not shadowed again)."""
        if kind == "cell":
            return (await self._cell_run(id, payload, wait=False))[0]
        return (await self._organ_run(id, payload, pathway, wait=False))[0]

    def _served(self, served: Served) -> None:
        for listener in self.listeners:
            try:
                listener(served)
            except Exception as exc:  # the caller has its answer; a listener's slip must not take it away
                log.warning("a traffic listener failed (%s)", type(exc).__name__)

    async def run_organ(self, organ_id: str, body: Any) -> RunResult:
        """Run an organ's pathway (the first, or `pathway`) on `{input, pathway?}`."""
        req: OrganRun = decode(body, OrganRun)
        return await self.run_input(organ_id, payload_of(req.input), req.pathway)

    async def run_named(self, body: Any) -> RunResult:
        """Run the stable organ a name stands for on `{organ, input}`."""
        req: NamedRun = decode(body, NamedRun)
        return await self.run_input(await self.sources.stable_organ(req.organ), payload_of(req.input), req.pathway)

    async def organ_for(self, name: str) -> str:
        """The id of the organ that runs for a name (an organ id is itself)."""
        if name.startswith("organ-"):
            return (await self.sources.organ(name)).id
        return await self.sources.stable_organ(name)

    async def run_input(self, organ_id: str, payload: AnyPayload, pathway: str | None = None) -> RunResult:
        """Run an organ on a payload for a caller (the chat and the CLI come here too): traffic, so a stable
        organ's runs are shadowed to its family's canary (contract §7) once the answer is ready."""
        result, organ = await self._organ_run(organ_id, payload, pathway)
        self.window.add(organ_id, result.ok, result.ms)
        self._count(self.metrics.organ_runs, "ok" if result.ok else result.error.code)  # type: ignore[union-attr]
        self._served(Served("organ", organ_id, organ.state, organ.template_id, payload, pathway, result))
        return result

    async def probe_organ(self, organ_id: str, value: Any) -> RunResult:
        """Run an organ's first pathway on a sample input (wire form) for canary analysis: its cells count in
        the metrics like any run, but a probe is not traffic, so neither the organ's recent-run window nor
        `organ_runs_total` sees it (analysis keeps its own rows)."""
        return (await self._organ_run(organ_id, _sample(value), None))[0]

    async def _organ_run(self, organ_id: str, payload: AnyPayload, pathway: str | None,
                         wait: bool = True) -> tuple[RunResult, OrganView]:
        organ = await self.sources.organ(organ_id)
        generation = (self.sources.records_generation(), self.guard.generation)
        key = (organ_id, pathway or "")
        hit = self._steps.get(key)
        if hit is not None and hit[0] is organ and hit[1] == generation:
            steps, name = hit[2], hit[3]
            records = [await self.sources.record(s.record_id) for s in steps if s.record_id]
        else:
            steps, records, name = await self._organ_steps(organ, pathway)
            if len(self._steps) > 4096:
                self._steps.clear()
            self._steps[key] = (organ, generation, steps, name)
        self._check_gates(records)
        result = await self._run(steps, payload, f"organ:{organ_id}", wait)
        result.organ_id, result.pathway = organ_id, name
        return result, organ

    async def _run(self, steps: list[Step], payload: AnyPayload, scope: str, wait: bool = True) -> RunResult:
        start = time.perf_counter()
        out: Outcome = await self.runner.run(steps, payload, self.timeout_s, scope, wait)
        ms = round((time.perf_counter() - start) * 1000, 3)
        for entry in out.trace:
            outcome = "ok" if entry.ok else (entry.error.code if entry.error else "cell_failed")
            self._count(self.metrics.cell_runs, entry.impl, outcome)
            self._observe(entry.impl, entry.ms)
        if out.error is not None:
            self._failed_runs.inc()
        return RunResult(ok=out.error is None, run_id=new_id("run", 8), output=out.output,
                         trace=out.trace, ms=ms, error=out.error)

    def _count(self, metric: Any, *labels: str) -> None:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:  # labels() is a locked lookup; runs ask for the same few children
            child = self._children[key] = metric.labels(*labels)
        child.inc()

    def _observe(self, impl: str, ms: float) -> None:
        key = ("duration", impl)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics.cell_run_duration_ms.labels(impl)
        child.observe(ms)

    def figures(self, organ_id: str) -> dict[str, Any]:
        """The organ's recent run figures (for its status)."""
        return self.window.figures(organ_id)


def _sample(value: Any) -> AnyPayload:
    """A sample's input (wire form) as a payload; 400 for one that is none."""
    try:
        return from_wire(value)
    except (msgspec.ValidationError, ValueError) as exc:
        raise InvalidRequest(f"invalid sample input: {exc}") from None
