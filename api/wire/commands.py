"""The Command Cell's answers, as the core gives them: the command reply (neira/commands/answer.py), its plan
(neira/plan.py's PlanView) and the apply result (neira/plan_apply.py)."""

from __future__ import annotations

from neira.commands.answer import CommandReply, PolicyVerdict, Target, Violation
from neira.plan import PlanView
from neira.plan_apply import Applied, ApplyResult

__all__ = ["Applied", "ApplyResult", "CommandReply", "PlanView", "PolicyVerdict", "Target", "Violation"]
