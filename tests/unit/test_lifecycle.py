"""The transition table, exhaustively, and random event sequences against its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neira.errors import InvalidTransition
from neira.lifecycle import (
    CELL_TRANSITIONS, ORGAN_TRANSITIONS, CellEvent, CellState, OrganEvent, OrganState, advance, can, machines,
    next_organ_stage, organ_move,
)

S, E = CellState, CellEvent

EXPECTED = {
    (S.DRAFT, E.APPROVE): S.CANARY,
    (S.CANARY, E.APPROVE): S.EXPERIMENTAL,
    (S.EXPERIMENTAL, E.APPROVE): S.STABLE,
    (S.STABLE, E.DEPRECATE): S.DEPRECATED,
    (S.DEPRECATED, E.RESTORE): S.STABLE,
    (S.HEALING, E.HEAL_FAIL): S.FAILED,
    (S.CANARY, E.FAIL): S.FAILED,  # a failing canary verdict (graduation)
    (S.EXPERIMENTAL, E.FAIL): S.FAILED,
}
for s in (S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE, S.DEPRECATED, S.HEALING, S.FAILED):
    EXPECTED[(s, E.DISABLE)] = S.DISABLED
for s in (S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE, S.DEPRECATED, S.DISABLED, S.HEALING, S.FAILED):
    if s is not S.DRAFT:  # a draft never served: it is disabled, not rolled back
        EXPECTED[(s, E.ROLLBACK)] = S.ROLLED_BACK
    EXPECTED[(s, E.AUTO_ROLLBACK)] = S.ROLLED_BACK
for s in (S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE, S.DEPRECATED, S.DISABLED, S.FAILED):
    EXPECTED[(s, E.HEAL)] = S.HEALING


@pytest.mark.parametrize(("state", "event"), list(itertools.product(CellState, [e for e in CellEvent if e is not E.HEAL_OK])))
def test_every_state_event_pair(state: CellState, event: CellEvent) -> None:
    expected = EXPECTED.get((state, event))
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            advance(state, event)
        assert info.value.body()["from"] == state.value
        assert not can(state, event)
    else:
        assert advance(state, event) is expected
        assert can(state, event)


def test_table_is_exactly_the_expected_one() -> None:
    assert CELL_TRANSITIONS == EXPECTED


def test_rolled_back_is_terminal() -> None:
    assert not any(can(S.ROLLED_BACK, e) for e in CellEvent)


@pytest.mark.parametrize("previous", [S.DRAFT, S.CANARY, S.EXPERIMENTAL, S.STABLE, S.DISABLED])
def test_heal_ok_returns_to_the_previous_state(previous: CellState) -> None:
    assert advance(advance(previous, E.HEAL), E.HEAL_OK, previous) is previous


def test_heal_ok_outside_healing_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        advance(S.CANARY, E.HEAL_OK, S.DRAFT)


def test_organ_stages() -> None:
    assert [next_organ_stage(s) for s in ("draft", "canary", "experimental", "stable", "failed")] == [
        "canary", "experimental", "stable", None, None,
    ]


@given(st.lists(st.sampled_from(list(CellEvent)), max_size=40))
def test_random_sequences_stay_legal(events: list[CellEvent]) -> None:
    """Any sequence: every accepted move is in the table, refused ones change nothing, and rolled_back is final."""
    state, before_heal = S.DRAFT, None
    for event in events:
        try:
            nxt = advance(state, event, before_heal)
        except InvalidTransition:
            assert not (state is S.HEALING and event is E.HEAL_OK and before_heal not in (None, S.HEALING))
            continue
        if event is E.HEAL_OK:
            assert nxt is before_heal
        else:
            assert CELL_TRANSITIONS[(state, event)] is nxt
        assert state is not S.ROLLED_BACK
        if nxt is S.HEALING:
            before_heal = state
        state = nxt


O, OE = OrganState, OrganEvent
STAGE_ORDER = [O.DRAFT, O.CANARY, O.EXPERIMENTAL, O.STABLE]
ORGAN_EXPECTED: set[tuple[OrganState, OrganEvent, OrganState]] = {
    (O.DRAFT, OE.ADVANCE, O.CANARY), (O.CANARY, OE.ADVANCE, O.EXPERIMENTAL), (O.EXPERIMENTAL, OE.ADVANCE, O.STABLE),
    (O.DRAFT, OE.APPROVE, O.CANARY), (O.CANARY, OE.APPROVE, O.EXPERIMENTAL), (O.EXPERIMENTAL, OE.APPROVE, O.STABLE),
    (O.DRAFT, OE.CANCEL, O.FAILED), (O.CANARY, OE.CANCEL, O.FAILED), (O.EXPERIMENTAL, OE.CANCEL, O.FAILED),
    *((s, OE.REBUILD, O.DRAFT) for s in OrganState),
    *((s, OE.SET, t) for i, s in enumerate(STAGE_ORDER) for t in STAGE_ORDER[i:]),  # forward by hand, or hold
    *((s, OE.SET, O.FAILED) for s in OrganState),
    (O.DRAFT, OE.HOLD, O.DRAFT), (O.CANARY, OE.HOLD, O.CANARY), (O.EXPERIMENTAL, OE.HOLD, O.EXPERIMENTAL),  # until approve
    (O.CANARY, OE.FAIL, O.FAILED), (O.EXPERIMENTAL, OE.FAIL, O.FAILED),  # a failing canary verdict
}


@pytest.mark.parametrize(("state", "via", "target"), list(itertools.product(OrganState, OrganEvent, OrganState)))
def test_every_organ_move(state: OrganState, via: OrganEvent, target: OrganState) -> None:
    """Every (from, via, to): legal exactly when it is in the table; a refusal names both states."""
    if (state, via, target) in ORGAN_EXPECTED:
        assert organ_move(state, via, target) is target
    else:
        with pytest.raises(InvalidTransition) as info:
            organ_move(state, via, target)
        assert (info.value.body()["from"], info.value.body()["to"]) == (state.value, target.value)


def test_organ_table_is_exactly_the_expected_one() -> None:
    assert ORGAN_TRANSITIONS == ORGAN_EXPECTED


def test_no_cancel_of_a_finished_build_and_no_way_back_but_rebuild() -> None:
    for done in (O.STABLE, O.FAILED):
        with pytest.raises(InvalidTransition):
            organ_move(done, OE.CANCEL)
    assert organ_move(O.FAILED, OE.REBUILD) is O.DRAFT
    with pytest.raises(InvalidTransition):
        organ_move(O.STABLE, OE.SET, O.CANARY)


def test_machines_list_every_legal_move_with_states_only() -> None:
    tables = machines()
    organ_moves = {(t.from_, t.via, t.to) for t in tables["organs"].transitions}
    assert organ_moves == {(s.value, v.value, t.value) for s, v, t in ORGAN_EXPECTED}
    cell_moves = {(t.from_, t.via, t.to) for t in tables["cells"].transitions}
    assert {(s.value, e.value, t.value) for (s, e), t in EXPECTED.items()} <= cell_moves
    assert tables["organs"].states == [s.value for s in OrganState]
