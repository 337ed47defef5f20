"""Every metric the seeds name, declared once on a registry the app owns.

The few counted on every command (commands, policy decisions, parse and plan latency) are `LoopCounter` and
`LoopHistogram`: plain numbers bumped on the event loop's thread and turned into metric families when
`/metrics` is scraped. prometheus_client's own take a lock per increment and walk every bucket per
observation; seven of those were about 6% of a command's time on the loop (py-spy under bench/api_load.py).
The exposition is the same: `<name>_total` for counters, `_bucket`/`_sum`/`_count` for histograms."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)
_RUN_MS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
_FAST_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5)


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LoopCounter(Collector):
    """A counter with labels, written only from the event loop's thread (no lock)."""

    def __init__(self, name: str, doc: str, labelnames: list[str], registry: CollectorRegistry) -> None:
        self.name, self.doc, self.labelnames = name.removesuffix("_total"), doc, labelnames
        self.children: dict[tuple[str, ...], _Count] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Count:
        """The child for these label values (made on first use)."""
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = _Count()
        return child

    def collect(self) -> Iterator[Any]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for values, child in list(self.children.items()):
            family.add_metric(list(values), child.value)
        yield family


class LoopHistogram(Collector):
    """A histogram without labels, written only from the event loop's thread (no lock; one bisect)."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...], registry: CollectorRegistry) -> None:
        self.name, self.doc, self.bounds = name, doc, buckets
        self.counts = [0] * (len(buckets) + 1)  # per bucket, not cumulative; the last one is +Inf
        self.total = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def collect(self) -> Iterator[Any]:
        family = HistogramMetricFamily(self.name, self.doc)
        family.add_metric([], cumulative(self.bounds, self.counts), self.total)
        yield family


def cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, int]]:
    """Per-bucket counts (the last one +Inf) as the exposition's cumulative `le` buckets."""
    out, running = [], 0
    for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=True):
        running += n
        out.append((bound, running))
    return out


class Metrics:
    """The app's metrics. Each is emitted where its thing happens."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        # factory
        self.factory_cells_created = Counter("factory_cells_created_total", "Cell records created", ["backend"], registry=r)
        self.factory_cells_active = Gauge("factory_cells_active", "Cell records in a live state (canary, experimental, stable)", registry=r)
        self.factory_exec_errors = Counter("factory_exec_errors_total", "Factory operations that failed (auto-heal failures, rejected creates, failed runs)", ["operation"], registry=r)
        self.factory_dryrun_requests = Counter("factory_dryrun_requests_total", "Factory dry-runs", ["ok"], registry=r)
        self.factory_approvals = Counter("factory_approvals_total", "Approvals of cell records", ["to"], registry=r)
        self.factory_rollbacks = Counter("factory_rollbacks_total", "Rollbacks of cell records", ["kind"], registry=r)
        # training orchestrator (HITL, neira/training.py): counted by the orchestrator where each happens
        self.training_iterations = Counter("training_iterations_total", "Training iterations run over a record's samples", registry=r)
        self.training_converged = Counter("training_converged_total", "Times a record's training converged (a review completed the accepted run)", registry=r)
        # organs
        self.organ_build_attempts = Counter("organ_build_attempts_total", "Organ builds started (builds and rebuilds)", registry=r)
        self.organ_build_failures = Counter("organ_build_failures_total", "Organ builds that ended failed", registry=r)
        self.organ_build_duration_ms = Histogram("organ_build_duration_ms", "Organ build duration from start to stable, ms", buckets=_MS_BUCKETS, registry=r)
        self.organ_build_status_queries = Counter("organ_build_status_queries_total", "Client queries of organ status", registry=r)
        self.organs_building = Gauge("organs_building", "Organ builds in flight", registry=r)
        # runs (neira/runtime): outcome is ok or the error code that stopped the run
        self.organ_runs = Counter("organ_runs_total", "Organ runs by outcome", ["outcome"], registry=r)
        self.cell_runs = Counter("cell_runs_total", "Cell runs by implementation and outcome", ["impl", "outcome"], registry=r)
        self.cell_run_duration_ms = Histogram("cell_run_duration_ms", "Time of one cell's implementation, ms", ["impl"], buckets=_RUN_MS_BUCKETS, registry=r)
        # shadow traffic and the immune system (neira/shadow.py, neira/immune.py)
        self.canary_shadow_runs = Counter("canary_shadow_runs_total", "Runs shadowed to a canary: ok, failed, or dropped (the pool was busy: a measurement-source error, not a failure)", ["outcome"], registry=r)
        self.immune_quarantines = Counter("immune_quarantines_total", "Cell records quarantined by the immune system", ["cause"], registry=r)
        self.immune_integrity_checks = Counter("immune_integrity_checks_total", "Catalog integrity checks by outcome", ["outcome"], registry=r)
        # commands
        self.commands = LoopCounter("neira_commands_total", "Commands by intent and outcome", ["intent", "outcome"], r)
        self.command_parse_seconds = LoopHistogram("neira_command_parse_seconds", "Command parse latency", _FAST_BUCKETS, r)
        self.command_plan_seconds = LoopHistogram("neira_command_plan_seconds", "Command resolve + plan latency", _FAST_BUCKETS, r)
        # platform
        self.events = Counter("neira_events_total", "Events published", ["type"], registry=r)
        self.capability_state = Gauge("neira_capability_state", "1 for the capability's current state", ["capability", "state"], registry=r)
        self.safe_mode = Gauge("neira_safe_mode", "1 while safe mode is on", registry=r)
        self.policy_decisions = LoopCounter("neira_policy_decisions_total", "Policy decisions", ["rule", "action"], r)
        self.audit_records = Counter("neira_audit_records_total", "Audit records written", ["action"], registry=r)
