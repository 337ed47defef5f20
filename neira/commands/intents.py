"""The one table of intents: what each one does with the world (reads, plans a change, or applies a plan)."""

from __future__ import annotations

from enum import StrEnum


class Does(StrEnum):
    """How an intent is carried out."""

    READ = "read"  # answered at once; any role may say it
    PLAN = "plan"  # answered with a plan; apply carries it out
    APPLY = "apply"  # carries out a saved plan
    RUN = "run"  # runs a cell or an organ at once: it changes nothing, but takes the run pool (not for viewers)
    RECORD = "record"  # records evidence at once (a review): it moves no lifecycle state (not for viewers)


INTENTS: dict[str, Does] = {
    "create_organ": Does.PLAN,
    "update_organ": Does.PLAN,
    "build_pipeline": Does.PLAN,
    "create_cell": Does.PLAN,
    "approve": Does.PLAN,
    "disable": Does.PLAN,
    "rollback": Does.PLAN,
    "cancel_build": Does.PLAN,
    "rebuild": Does.PLAN,
    "hold": Does.PLAN,  # a one-change plan (contract §5); "promote" is a word of approve
    "why": Does.READ,  # what a promotion waits for, with the evidence
    "apply": Does.APPLY,
    "run": Does.RUN,
    "train": Does.RUN,  # an iteration: runs the samples and keeps the result; no lifecycle state moves
    "review": Does.RECORD,  # the human's verdict is the decision itself: a plan to confirm it would ask twice
    "status": Does.READ,
    "list": Does.READ,
    "help": Does.READ,
}
"""intent → how it is carried out. A viewer (or an operator in safe mode) may say only the READ ones."""


def does(intent: str) -> Does:
    """How `intent` is carried out (an unknown intent plans nothing and reads nothing: it is refused as a write)."""
    return INTENTS.get(intent, Does.PLAN)
