"""The facts an apply re-reads: one statement for any plan, the same on the driver path (SQLite) and on the
portable Core path, equal to what planning saw while nothing moved, and moved when something did."""

from __future__ import annotations

from neira.commands.plan_store import PlanStore
from neira.core import Core
from neira.planning import _fact_rows, _fact_union, read_facts

PHRASES = [
    "создай голосовой орган v1",  # reuses records, builds an organ: record and organ_of facts
    "build factsx-pipeline gqqaaa -> gqqaab -> analysis.text_normalize.v1",  # new cells: identity and catalog facts
]


async def _plan(core: Core, text: str):
    said = await core.commands.handle(text, "s-facts", "admin")
    assert said["understood"] and said["policy"]["allowed"], said["reply"]
    await core.commands.store.flush()
    async with core.db.transaction() as tx:
        return (await PlanStore.load_to_apply(tx, said["plan"]["id"])).body.plan


async def test_facts_read_in_one_statement_match_the_plan_and_both_paths(core: Core) -> None:
    seen: set[str] = set()
    for text in [*PHRASES, PHRASES[0]]:  # the voice organ again, applied: records and its live organ
        plan = await _plan(core, text)
        keys = list(plan.facts)
        kinds = {k.partition(":")[0] for k in keys}
        seen |= kinds
        async with core.db.transaction() as tx:
            now = await read_facts(tx, keys, {k[5:]: v for k, v in plan.facts.items() if k.startswith("gate:")})
            want: dict[str, list[str]] = {}
            for key in keys:
                kind, _, rest = key.partition(":")
                want.setdefault(kind, []).append(rest)
            driver = sorted(tuple(r) for r in await _fact_rows(tx, want))
            core_path = sorted(tuple(r) for r in await tx.conn.execute(
                _fact_union(want, [k for k in want if k != "gate"])))
        assert now == plan.facts, text
        assert driver == core_path, text
        assert len(kinds - {"gate"}) >= 2, kinds
        if text == PHRASES[0] and "uses" not in kinds:
            await core.commands.apply(plan.id, "admin")
    assert seen >= {"gate", "uses", "organ_of", "identity", "catalog"}, seen


async def test_a_moved_fact_is_read_as_moved(core: Core) -> None:
    await core.commands.apply((await _plan(core, PHRASES[0])).id, "admin")  # the voice organ's records exist now
    plan = await _plan(core, PHRASES[0])
    key = next(k for k in plan.facts if k.startswith("uses:"))
    record = key.partition(":")[2]
    await core.factory.approve(record, "admin")  # moving on (as with its organ) leaves the plan standing
    async with core.db.transaction() as tx:
        assert (await read_facts(tx, list(plan.facts), {}))[key] == "live" == plan.facts[key]
    await core.factory.disable(record, "admin", "test")  # a reused record that can no longer run moves it
    async with core.db.transaction() as tx:
        now = await read_facts(tx, list(plan.facts), {})
    assert now[key] == "dead" != plan.facts[key]
