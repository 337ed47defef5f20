"""States, events and the one transition table that decides every lifecycle move of cells and organs."""

from __future__ import annotations

from enum import StrEnum

from neira.errors import InvalidTransition


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


S, E = CellState, CellEvent
_LIVE = (S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE)

CELL_TRANSITIONS: dict[tuple[CellState, CellEvent], CellState] = {
    (S.DRAFT, E.APPROVE): S.CANARY,
    (S.CANARY, E.APPROVE): S.EXPERIMENTAL,
    (S.EXPERIMENTAL, E.APPROVE): S.STABLE,
    (S.STABLE, E.DEPRECATE): S.DEPRECATED,
    (S.DEPRECATED, E.RESTORE): S.STABLE,
    **{(s, E.DISABLE): S.DISABLED for s in (*_LIVE, S.DEPRECATED, S.HEALING, S.FAILED)},
    **{(s, E.ROLLBACK): S.ROLLED_BACK for s in (*_LIVE, S.DEPRECATED, S.DISABLED, S.HEALING, S.FAILED)},
    **{(s, E.AUTO_ROLLBACK): S.ROLLED_BACK for s in (*_LIVE, S.DEPRECATED, S.DISABLED, S.HEALING, S.FAILED)},
    **{(s, E.HEAL): S.HEALING for s in (*_LIVE, S.DEPRECATED, S.DISABLED, S.FAILED)},
    (S.HEALING, E.HEAL_FAIL): S.FAILED,
}
"""(state, event) → next state. HEAL_OK is special: it returns to the state held before healing."""

EVENT_TARGET: dict[CellEvent, str] = {
    E.APPROVE: "next stage",
    E.DISABLE: S.DISABLED,
    E.ROLLBACK: S.ROLLED_BACK,
    E.AUTO_ROLLBACK: S.ROLLED_BACK,
    E.DEPRECATE: S.DEPRECATED,
    E.RESTORE: S.STABLE,
    E.HEAL: S.HEALING,
    E.HEAL_OK: "previous state",
    E.HEAL_FAIL: S.FAILED,
}


def advance(state: CellState | str, event: CellEvent | str, previous: CellState | str | None = None) -> CellState:
    """The state after `event`, or InvalidTransition. `previous` is the state before healing (for HEAL_OK)."""
    state, event = CellState(state), CellEvent(event)
    if event is E.HEAL_OK:
        if state is S.HEALING and previous is not None and CellState(previous) is not S.HEALING:
            return CellState(previous)
    elif (nxt := CELL_TRANSITIONS.get((state, event))) is not None:
        return nxt
    raise InvalidTransition(state.value, str(EVENT_TARGET[event]))


def can(state: CellState | str, event: CellEvent | str) -> bool:
    """Whether `event` is legal in `state` (HEAL_OK: only while healing)."""
    state, event = CellState(state), CellEvent(event)
    if event is E.HEAL_OK:
        return state is S.HEALING
    return (state, event) in CELL_TRANSITIONS


class OrganState(StrEnum):
    """States of an organ build."""

    DRAFT = "draft"
    CANARY = "canary"
    EXPERIMENTAL = "experimental"
    STABLE = "stable"
    FAILED = "failed"


ORGAN_STAGES: tuple[OrganState, ...] = (OrganState.DRAFT, OrganState.CANARY, OrganState.EXPERIMENTAL, OrganState.STABLE)


def next_organ_stage(state: OrganState | str) -> OrganState | None:
    """The automatic next stage of a build, or None when it is finished (stable or failed)."""
    state = OrganState(state)
    if state in (OrganState.STABLE, OrganState.FAILED):
        return None
    return ORGAN_STAGES[ORGAN_STAGES.index(state) + 1]


def organ_is_building(state: OrganState | str) -> bool:
    """A build is in flight until it is stable or failed."""
    return OrganState(state) not in (OrganState.STABLE, OrganState.FAILED)
