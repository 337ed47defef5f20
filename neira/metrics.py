"""Every metric the seeds name, declared once on a registry the app owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)
_RUN_MS_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
_FAST_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5)


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
        self.commands = Counter("neira_commands_total", "Commands by intent and outcome", ["intent", "outcome"], registry=r)
        self.command_parse_seconds = Histogram("neira_command_parse_seconds", "Command parse latency", buckets=_FAST_BUCKETS, registry=r)
        self.command_plan_seconds = Histogram("neira_command_plan_seconds", "Command resolve + plan latency", buckets=_FAST_BUCKETS, registry=r)
        # platform
        self.events = Counter("neira_events_total", "Events published", ["type"], registry=r)
        self.capability_state = Gauge("neira_capability_state", "1 for the capability's current state", ["capability", "state"], registry=r)
        self.safe_mode = Gauge("neira_safe_mode", "1 while safe mode is on", registry=r)
        self.policy_decisions = Counter("neira_policy_decisions_total", "Policy decisions", ["rule", "action"], registry=r)
        self.audit_records = Counter("neira_audit_records_total", "Audit records written", ["action"], registry=r)
