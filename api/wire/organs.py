"""The organ builder's answers: build, list entry, status, moves."""

from __future__ import annotations

from typing import Any, Literal

from api.wire.base import Wire
from neira.plan import PlanView


class BuildStarted(Wire):
    """`POST /organs/build` (201) and `POST /organs/{id}/rebuild`: `{organ_id, state: "draft"}`."""

    organ_id: str
    state: str


class BuildDryRun(Wire):
    """`POST /organs/build` with `dryrun: true` (200): what the build would do; writes nothing."""

    organ_id: None
    dryrun: bool
    ok: bool
    report: dict[str, Any]
    plan: PlanView | None


class OrganEntry(Wire):
    """One item of `GET /organs`."""

    id: str
    state: str
    template_id: str
    updated_at: float


class OrganCell(Wire):
    """A cell of an organ and the state of the record it uses."""

    id: str
    record_id: str | None
    state: str | None


class RunFigures(Wire):
    """The organ's recent runs (the status's `metrics.runs`)."""

    total: int
    ok: int
    failed: int
    window: dict[str, Any]
    last_at: float | None


class OrganMetrics(Wire):
    """A build's figures: attempts, stage times, durations, the next stage and when (or, while the gate holds
    it, the time left in its stage)."""

    attempts: int
    stage_times: dict[str, float]
    build_started_at: float | None
    build_finished_at: float | None
    build_duration_ms: float | None
    elapsed_ms: float | None
    next_stage: str | None
    next_stage_at: float | None
    held_left_ms: float | None = None
    runs: RunFigures | None = None


class HoldInfo(Wire):
    """A human's hold on an organ (`POST /organs/{id}/hold`), until `approve`."""

    since: float
    actor: str
    reason: str | None = None


class VerdictSummary(Wire):
    """The canary verdict an organ's promotion waits on (the full answer: `GET /organs/{id}/analysis`)."""

    verdict: str
    stage: str | None
    runs: int
    errors: int
    error_rate: float
    p50_ms: float
    p99_ms: float
    baseline_id: str | None
    baseline_p99_ms: float | None
    min_runs: int
    reasons: list[str]


class OrganApproved(Wire):
    """`POST /organs/{id}/approve` and `/hold`: the organ's state after; `held`, and what its promotion waits for
    when it did not move (a hold released while the verdict is not in)."""

    id: str
    state: str
    held: bool | None = None
    waiting_for: Literal["delay", "analysis", "approval", "gate"] | None = None
    analysis: VerdictSummary | None = None


class OrganStatus(Wire):
    """`GET /organs/{id}/status`. `waiting_for`: `delay` (its stage's minimum time), `analysis` (a canary verdict
    that is not in, or inconclusive), `approval` (a human: out of canary when the template says `hitl`, or a
    hold), `gate` (held by the closed gate `held_by`), or null when it does not progress by itself. `analysis`:
    the verdict in short; `override`: a manual move put the organ ahead of one of its cells."""

    id: str
    state: str
    template_id: str
    auto: bool
    cells: list[OrganCell]
    metrics: OrganMetrics
    updated_at: float
    waiting_for: Literal["delay", "analysis", "approval", "gate"] | None = None
    held_by: str | None = None
    hold: HoldInfo | None = None
    analysis: VerdictSummary | None = None
    override: bool = False
