"""The Command Cell's reply: one typed value for every phrase, understood or not (the JSON of
`POST /api/neira/commands`, contract §5). A field left UNSET is not written; one set to None is written as
null (an understood reply always carries `intent`, `spec`, `policy` and `plan`, null where they do not apply)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from neira.plan import Decision as PlanDecision
from neira.plan import PlanView
from neira.plan_apply import Applied
from neira.policy import Decision
from neira.runtime.results import RunResult
from neira.structs import Answer
from neira.training import Iteration, Reviewed


class Target(Answer, kw_only=True, omit_defaults=True):
    """What a command is about: `{kind: cell|organ, id}` (and the template id it was named by)."""

    kind: Literal["cell", "organ"]
    id: str
    template_id: str | None = None


class Violation(Answer, kw_only=True, omit_defaults=True):
    """A policy decision that denied the command."""

    rule: str
    reason: str
    decision_id: str | None = None
    action: str | None = None
    capability: str | None = None


class PolicyVerdict(Answer, kw_only=True):
    """`{allowed, violations}`."""

    allowed: bool
    violations: list[Violation] = []


ALLOWED = PolicyVerdict(allowed=True)


def violation(d: Decision | PlanDecision) -> Violation:
    """A denying decision as the reply names it."""
    return Violation(rule=d.rule, reason=d.reason, decision_id=d.decision_id, action=d.action,
                     capability=d.capability)


class CommandReply(Answer, kw_only=True):
    """`POST /api/neira/commands`, always 200: understood or not, the reply in the command's language, and
    whatever applies to its intent (a plan to apply, a read's `result`, a run, a training iteration or review,
    an apply's changes). `error` is a parse failure (`unknown_command`, `typo`, ... with `position`,
    `expected`, `suggestions`) or the contract's error body of what could not be carried out."""

    understood: bool
    lang: str
    reply: str
    session_id: str
    intent: str | UnsetType = UNSET
    spec: dict[str, Any] | None | UnsetType = UNSET
    target: Target | UnsetType = UNSET
    policy: PolicyVerdict | UnsetType = UNSET
    plan: PlanView | None | UnsetType = UNSET
    error: dict[str, Any] | UnsetType = UNSET
    result: Any = UNSET
    run: RunResult | None | UnsetType = UNSET
    training: Iteration | None | UnsetType = UNSET
    review: Reviewed | None | UnsetType = UNSET
    applied: list[Applied] | UnsetType = UNSET
    summary: str | UnsetType = UNSET
    already_applied: bool | UnsetType = UNSET
    understood_as: str | UnsetType = UNSET  # the phrase said back when the frame tier read it


class Told(msgspec.Struct, kw_only=True, frozen=True):
    """What the run, train and review handlers add to the reply: its words, and the fields they fill (the
    reads answer `(result, reply)`, neira/commands/actions.py)."""

    reply: str
    target: Target | UnsetType = UNSET
    run: RunResult | None | UnsetType = UNSET
    training: Iteration | None | UnsetType = UNSET
    review: Reviewed | None | UnsetType = UNSET
