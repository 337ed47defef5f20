"""An organ's status as the builder answers it (`GET /organs/{id}/status`, the Command Cell's «статус» and «почему»):
typed, immutable (a settled organ's answer is remembered and shared), and encoded by msgspec field by field in the
order the JSON has always had."""

from __future__ import annotations

from typing import Literal

import msgspec

from neira.structs import Answer

Waiting = Literal["delay", "analysis", "approval", "gate"]


class OrganCell(Answer):
    """A cell of an organ and the state of the record it uses."""

    id: str
    record_id: str | None
    state: str | None


class RunWindow(Answer):
    """The organ's last runs: how many, the share that failed, and their latencies (null before any run)."""

    runs: int
    error_rate: float
    p50_ms: float | None
    p99_ms: float | None


class RunFigures(Answer):
    """The organ's recent runs (the status's `metrics.runs`)."""

    total: int
    ok: int
    failed: int
    window: RunWindow
    last_at: float | None


class OrganMetrics(Answer, omit_defaults=True):
    """A build's figures: attempts, stage times, durations, the next stage and when (or, while the gate holds
    it, the time left in its stage: `held_left_ms`). `runs` is added by the HTTP status route."""

    attempts: int
    stage_times: dict[str, float]
    build_started_at: float | None
    build_finished_at: float | None
    build_duration_ms: float | None
    elapsed_ms: float | None
    next_stage: str | None
    next_stage_at: float | None
    held_left_ms: float | None
    runs: RunFigures | None = None


class HoldInfo(Answer):
    """A human's hold on an organ (`POST /organs/{id}/hold`), until `approve`."""

    since: float
    actor: str
    reason: str | None = None


class VerdictSummary(Answer):
    """The canary verdict an organ's promotion waits on or rests on, as status, events and audit records show
    it (graduation's `Verdict`; the full answer: `GET /organs/{id}/analysis`)."""

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


class OrganStatus(Answer):
    """`GET /organs/{id}/status`. `waiting_for`: `delay` (its stage's minimum time), `analysis` (a canary verdict
    that is not in, or inconclusive), `approval` (a human: out of canary when the template says `hitl`, or a
    hold), `gate` (held by the closed gate `held_by`), or null when it does not progress by itself. `hold`: a
    human's hold on a building organ; `analysis`: the verdict in short; `override`: a manual move put the organ
    ahead of one of its cells."""

    id: str
    state: str
    template_id: str
    auto: bool
    waiting_for: Waiting | None
    held_by: str | None
    hold: HoldInfo | None
    analysis: VerdictSummary | None
    override: bool
    cells: list[OrganCell]
    metrics: OrganMetrics
    updated_at: float


class OrganMoved(Answer):
    """A lifecycle move's answer (`POST /organs/{id}/status`, `/approve`, `/hold`, `DELETE …/build`): the state
    after. An approve or a hold also says whether the organ is `held` and what its promotion waits for, with the
    verdict in short when that is the analysis (a hold released while the verdict is not in)."""

    id: str
    state: str
    held: bool | msgspec.UnsetType = msgspec.UNSET
    waiting_for: Waiting | msgspec.UnsetType = msgspec.UNSET
    analysis: VerdictSummary | msgspec.UnsetType = msgspec.UNSET


class BuildStarted(Answer):
    """A build started (`POST /organs/build`, 201) or started again (`POST /organs/{id}/rebuild`): in draft."""

    organ_id: str
    state: str
