"""The Command Cell's answers: the command reply, its plan (neira/plan.py's PlanView) and the apply result."""

from __future__ import annotations

from typing import Any, Literal

from api.wire.base import Wire
from neira.plan import PlanView
from neira.runtime.results import RunResult


class Target(Wire):
    """What a command is about: `{kind: cell|organ, id}` (and the template id it was named by)."""

    kind: Literal["cell", "organ"]
    id: str
    template_id: str | None = None


class Violation(Wire):
    """A policy decision that denied the command."""

    rule: str
    reason: str
    decision_id: str | None = None
    action: str | None = None
    capability: str | None = None


class PolicyVerdict(Wire):
    """`{allowed, violations}`."""

    allowed: bool
    violations: list[Violation]


class CommandError(Wire):
    """Why a command was not understood (`unknown_command`, `typo`, ... with `position`, `expected`,
    `suggestions`) or not carried out (the contract's error body)."""

    code: str
    reason: str | None = None
    position: int | None = None
    word: str | None = None
    expected: list[str] | None = None
    suggestions: list[str] | None = None


class AppliedChange(Wire):
    """One change carried out by an apply, with the id it created or moved (`record_id` | `organ_id`)."""

    action: str
    kind: str
    id: str
    reason: str
    record_id: str | None = None
    organ_id: str | None = None
    before: Any = None
    after: Any = None


class ApplyResult(Wire):
    """`POST /api/neira/commands/plans/{plan_id}/apply`: `{plan_id, applied, summary, already_applied, plan, reply}`."""

    plan_id: str
    applied: list[AppliedChange]
    summary: str
    already_applied: bool
    plan: PlanView
    reply: str


class CommandReply(Wire):
    """`POST /api/neira/commands`, always 200: understood or not, the reply in the command's language, and
    whatever applies to its intent (a plan to apply, a read's `result`, a run, an apply's changes)."""

    understood: bool
    lang: str
    reply: str
    session_id: str
    intent: str | None = None
    spec: dict[str, Any] | None = None
    target: Target | None = None
    policy: PolicyVerdict | None = None
    plan: PlanView | None = None
    error: CommandError | None = None
    result: Any = None
    run: RunResult | None = None
    applied: list[AppliedChange] | None = None
    summary: str | None = None
    already_applied: bool | None = None
    understood_as: str | None = None  # the phrase said back when the frame tier read it («создать орган голосовой»)
