"""States, events and the one transition table each for cell records and organs. Every lifecycle move of
either is judged here (`advance`, `organ_move`); the named state sets are defined here and nowhere else."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from neira.errors import InvalidTransition
from neira.structs import Frozen


class CellState(StrEnum):
    """States of a factory cell record."""

    DRAFT = "draft"
    CANARY = "canary"
    EXPERIMENTAL = "experimental"
    STABLE = "stable"
    DEPRECATED = "deprecated"
    DISABLED = "disabled"
    ROLLED_BACK = "rolled_back"
    HEALING = "healing"
    FAILED = "failed"


class CellEvent(StrEnum):
    """What can happen to a cell record."""

    APPROVE = "approve"
    DISABLE = "disable"
    ROLLBACK = "rollback"
    DEPRECATE = "deprecate"  # a newer version of the same template became stable
    RESTORE = "restore"  # rollback of a newer version makes this (deprecated) stable again
    HEAL = "heal"
    HEAL_OK = "heal_ok"  # healing ends: back to the state before healing
    HEAL_FAIL = "heal_fail"
    AUTO_ROLLBACK = "auto_rollback"
    FAIL = "fail"  # a failing canary verdict (contract §7, Graduation)


S, E = CellState, CellEvent
CELL_STAGES: tuple[CellState, ...] = (S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE)
"""The promotion chain of a record; `approve` moves one step along it."""
LIVE_CELL_STATES = frozenset(CELL_STAGES)
"""Records that can run or be promoted (and be reused by a build)."""
SERVING_CELL_STATES = frozenset({S.CANARY, S.EXPERIMENTAL, S.STABLE})
"""Records that take traffic: approved at least once (the selector prefers them; the active gauge counts them)."""
DEAD_CELL_STATES = frozenset({S.DISABLED, S.FAILED, S.ROLLED_BACK})
"""Records that can never run again without a new version."""

CELL_TRANSITIONS: dict[tuple[CellState, CellEvent], CellState] = {
    (S.DRAFT, E.APPROVE): S.CANARY,
    (S.CANARY, E.APPROVE): S.EXPERIMENTAL,
    (S.EXPERIMENTAL, E.APPROVE): S.STABLE,
    (S.STABLE, E.DEPRECATE): S.DEPRECATED,
    (S.DEPRECATED, E.RESTORE): S.STABLE,
    **{(s, E.DISABLE): S.DISABLED for s in (*CELL_STAGES, S.DEPRECATED, S.HEALING, S.FAILED)},
    # a draft never served: there is nothing to roll back to (disable it instead)
    **{(s, E.ROLLBACK): S.ROLLED_BACK for s in (S.CANARY, S.EXPERIMENTAL, S.STABLE, S.DEPRECATED, S.DISABLED, S.HEALING, S.FAILED)},
    **{(s, E.AUTO_ROLLBACK): S.ROLLED_BACK for s in (*CELL_STAGES, S.DEPRECATED, S.DISABLED, S.HEALING, S.FAILED)},
    **{(s, E.HEAL): S.HEALING for s in (*CELL_STAGES, S.DEPRECATED, S.DISABLED, S.FAILED)},
    (S.HEALING, E.HEAL_FAIL): S.FAILED,
    (S.CANARY, E.FAIL): S.FAILED,
    (S.EXPERIMENTAL, E.FAIL): S.FAILED,
}
"""(state, event) → next state. HEAL_OK is special: it returns to the state held before healing."""


def cell_target(state: CellState, event: CellEvent, previous: CellState | str | None = None) -> CellState:
    """The state `event` aims at from `state`, legal or not (what an `invalid_transition` body names)."""
    if (nxt := CELL_TRANSITIONS.get((state, event))) is not None:
        return nxt
    if event is E.APPROVE:
        return S.STABLE  # the end of the chain: approving past it (or outside it) aims there
    if event is E.HEAL_OK:
        return CellState(previous) if previous else state
    return next(t for (_, e), t in CELL_TRANSITIONS.items() if e is event)


def advance(state: CellState | str, event: CellEvent | str, previous: CellState | str | None = None) -> CellState:
    """The state after `event`, or InvalidTransition. `previous` is the state before healing (for HEAL_OK)."""
    state, event = CellState(state), CellEvent(event)
    if event is E.HEAL_OK:
        if state is S.HEALING and previous is not None and CellState(previous) is not S.HEALING:
            return CellState(previous)
    elif (nxt := CELL_TRANSITIONS.get((state, event))) is not None:
        return nxt
    target = cell_target(state, event, previous)
    why = f"cannot {event.value} a {state.value} record" + (": it is already stable" if state is S.STABLE else "")
    raise InvalidTransition(state.value, target.value, f"{why} ({state.value} → {target.value} is not in the table)")


def can(state: CellState | str, event: CellEvent | str) -> bool:
    """Whether `event` is legal in `state` (HEAL_OK: only while healing)."""
    state, event = CellState(state), CellEvent(event)
    if event is E.HEAL_OK:
        return state is S.HEALING
    return (state, event) in CELL_TRANSITIONS


class OrganState(StrEnum):
    """States of an organ."""

    DRAFT = "draft"
    CANARY = "canary"
    EXPERIMENTAL = "experimental"
    STABLE = "stable"
    FAILED = "failed"


class OrganEvent(StrEnum):
    """What can happen to an organ. `advance` is the builder's own step (the stage delay passed and, under
    canary analysis, the verdict passed), `approve` a human's step forward (it also ends a hold), `hold` stops
    the automatic progression where it is until `approve`, `fail` is a failing verdict, `set` a manual move
    (forward by hand, hold where it is, or to failed), `cancel` stops a build, `rebuild` starts it again from
    draft."""

    ADVANCE = "advance"
    APPROVE = "approve"
    HOLD = "hold"
    FAIL = "fail"
    SET = "set"
    CANCEL = "cancel"
    REBUILD = "rebuild"


O, OE = OrganState, OrganEvent
ORGAN_STAGES: tuple[OrganState, ...] = (O.DRAFT, O.CANARY, O.EXPERIMENTAL, O.STABLE)
"""The stages of a build, in order."""
ANALYSED_STAGES = frozenset({"canary", "experimental"})
"""The stages (of organs and cell records alike) that canary analysis measures and graduation judges."""
BUILDING_ORGAN_STATES = frozenset({O.DRAFT, O.CANARY, O.EXPERIMENTAL})
"""A build is in flight until it is stable or failed."""
LIVE_ORGAN_STATES = frozenset(ORGAN_STAGES)
"""Organs that can run (every state but failed)."""


def _organ_table() -> dict[tuple[OrganState, OrganEvent, OrganState], None]:
    table: dict[tuple[OrganState, OrganEvent, OrganState], None] = {}
    for i, s in enumerate(ORGAN_STAGES[:-1]):
        nxt = ORGAN_STAGES[i + 1]
        table[(s, OE.ADVANCE, nxt)] = table[(s, OE.APPROVE, nxt)] = None
        table[(s, OE.CANCEL, O.FAILED)] = None
        table[(s, OE.HOLD, s)] = None  # progression stops where it is until approve
    for s in (O.CANARY, O.EXPERIMENTAL):  # the stages under analysis
        table[(s, OE.FAIL, O.FAILED)] = None
    for i, s in enumerate(ORGAN_STAGES):
        for t in ORGAN_STAGES[i:]:  # forward by hand, or hold where it is (stops the automatic progression)
            table[(s, OE.SET, t)] = None
        table[(s, OE.SET, O.FAILED)] = None
    table[(O.FAILED, OE.SET, O.FAILED)] = None
    for s in OrganState:
        table[(s, OE.REBUILD, O.DRAFT)] = None
    return table


ORGAN_TRANSITIONS: frozenset[tuple[OrganState, OrganEvent, OrganState]] = frozenset(_organ_table())
"""Every legal (from, via, to) of an organ."""


def organ_move(state: OrganState | str, event: OrganEvent | str, target: OrganState | str | None = None) -> OrganState:
    """The organ's state after `event` (aimed at `target` for `set`), or InvalidTransition naming both states."""
    state, event = OrganState(state), OrganEvent(event)
    if target is None:
        target = organ_target(state, event)
    target = OrganState(target)
    if (state, event, target) in ORGAN_TRANSITIONS:
        return target
    raise InvalidTransition(state.value, target.value)


def organ_target(state: OrganState, event: OrganEvent) -> OrganState:
    """Where `event` leads from `state` when it has one destination (advance, approve, cancel, rebuild)."""
    if event in (OE.ADVANCE, OE.APPROVE):
        return next_organ_stage(state) or O.STABLE
    if event in (OE.CANCEL, OE.FAIL):
        return O.FAILED
    if event is OE.HOLD:
        return state
    if event is OE.REBUILD:
        return O.DRAFT
    raise ValueError("a manual move names its target state")


def next_organ_stage(state: OrganState | str) -> OrganState | None:
    """The automatic next stage of a build, or None when it is finished (stable or failed)."""
    state = OrganState(state)
    if state not in BUILDING_ORGAN_STATES:
        return None
    return ORGAN_STAGES[ORGAN_STAGES.index(state) + 1]


def stage_index(state: str) -> int | None:
    """The place of a state in the promotion chain shared by records and organs (draft 0 … stable 3), or None
    outside it (failed, disabled, deprecated, ...)."""
    try:
        return ORGAN_STAGES.index(OrganState(state))
    except ValueError:
        return None


def organ_is_building(state: OrganState | str) -> bool:
    """A build is in flight until it is stable or failed."""
    return OrganState(state) in BUILDING_ORGAN_STATES


class Transition(Frozen):
    """One legal move, as `GET /api/neira/lifecycle` lists it."""

    from_: str = msgspec.field(name="from")
    to: str
    via: str


class Machine(Frozen):
    """The states and legal moves of one kind of thing."""

    states: list[str]
    stages: list[str]
    transitions: list[Transition]


def machines() -> dict[str, Machine]:
    """Both transition tables for clients: `{cells: {states, stages, transitions}, organs: {...}}`."""
    cell_moves = [Transition(from_=s.value, to=t.value, via=e.value) for (s, e), t in CELL_TRANSITIONS.items()]
    cell_moves.append(Transition(from_=S.HEALING.value, to="previous", via=E.HEAL_OK.value))
    organ_moves = [Transition(from_=s.value, to=t.value, via=e.value)
                   for s in OrganState for e in OrganEvent for t in OrganState if (s, e, t) in ORGAN_TRANSITIONS]
    return {
        "cells": Machine(states=[s.value for s in CellState], stages=[s.value for s in CELL_STAGES], transitions=cell_moves),
        "organs": Machine(states=[s.value for s in OrganState], stages=[s.value for s in ORGAN_STAGES], transitions=organ_moves),
    }
