"""Pure planning over one snapshot, and the facts a plan rests on.

A `Snapshot` is what planning reads once (catalog versions, the records of the templates involved, the live
organ of each organ template, gate verdicts). `cell_step` and `organ_steps` decide each change from it, and
`facts` lists what each step assumed (a record's state, that an identity is still free, …). Apply reads the
same facts again inside its transaction (`read_facts`) and refuses a plan whose facts moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import literal_column, null, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.catalog import parse_cell, template_digest
from neira.lifecycle import DEAD_CELL_STATES, LIVE_ORGAN_STATES, CellState
from neira.plan import (
    AnyStep, Blocked, CreateRecord, MoveOrgan, MoveRecord, RegisterTemplate, ReuseOrgan, ReuseRecord, Snapshot, StartBuild,
)
from neira.selector import select as select_record
from neira.storage import tables
from neira.storage.db import Tx
from neira.templates import CellTemplate

DEAD = frozenset(s.value for s in DEAD_CELL_STATES)
Parse = Callable[[dict[str, Any]], tuple[CellTemplate, str]]


def is_dead(state: str, previous_state: str | None) -> bool:
    """Whether a record can never run again without a human: disabled, failed or rolled back, or healing from
    one of those (a heal returns to the previous state or fails, so it ends dead either way)."""
    return state in DEAD or (state == CellState.HEALING.value and previous_state in DEAD)


def generated_template(cell_id: str, context: Any) -> dict[str, Any]:
    """An adapter template for a cell the catalog does not know yet."""
    return {
        "id": cell_id, "version": "0.1.0", "analysis_type": "adapter", "links": [],
        "metadata": {"schema": "v1", "generated_for": context},
    }


def parse_with_digest(body: dict[str, Any]) -> tuple[CellTemplate, str]:
    """A cell body parsed (validated), with its digest."""
    t = parse_cell(body)
    return t, template_digest(t)


def cell_step(cell_id: str, snap: Snapshot, drafted: dict[str, Any] | None = None, word: str | None = None,
              context: str = "an organ build", parse: Parse = parse_with_digest) -> AnyStep:
    """How an organ gets a record of `cell_id`: reuse a live record (or a draft of the same content, or this
    very version), create a draft (from the catalog, from a drafted template, or from a generated adapter
    template), or Blocked when the only record of the version is dead."""
    body = drafted if drafted is not None else snap.latest.get(cell_id)
    known = cell_id in snap.latest
    generated = body is None
    if generated:
        body = generated_template(cell_id, context)
    t, digest = parse(body)
    own = snap.records.get(cell_id, [])
    choice = select_record(cell_id, t.version, t.kind, digest, own)
    if choice.action == "reuse":
        return ReuseRecord(template_id=cell_id, version=t.version, record_id=choice.record_id or "",
                           state=choice.state or "", why="reuse_draft" if choice.state == "draft" else "reuse")
    same = next((r for r in own if r.version == t.version and r.backend == "adapter"), None)
    if same is not None and is_dead(same.state, same.previous_state):
        return Blocked(template_id=cell_id, version=t.version, record_id=same.id, state=same.state)
    if same is not None:  # this very version exists, deprecated or healing: reuse it, say so
        return ReuseRecord(template_id=cell_id, version=t.version, record_id=same.id, state=same.state, same=True)
    registered = snap.digests.get(f"cell:{cell_id}", {})
    why = "drafted" if drafted is not None and not known else "generated" if generated else ("no_live" if own else "new_record")
    register = t.version not in registered
    return CreateRecord(template=body if register else None, template_id=cell_id, version=t.version, digest=digest,
                        register=register, why=why, word=word)


def organ_steps(template: dict[str, Any], digest: str, registered: bool, base: str | None, added: list[str],
                cell_steps: list[AnyStep], snap: Snapshot) -> list[AnyStep]:
    """The steps of an organ plan: each cell's step, the template's registration when it is new, and the build
    (or the live organ of that template, which makes the build a no-op)."""
    steps = list(cell_steps)
    tid = template["id"]
    if not registered:
        steps.append(RegisterTemplate(template=template, template_id=tid, version=template["version"], digest=digest,
                                      base=base if base != tid else None, added=added))
    live = snap.live_organs.get(tid)
    if live is not None:
        steps.append(ReuseOrgan(template_id=tid, organ_id=live[0], state=live[1]))
    else:  # a registered template is named, not carried (its digest becomes a fact)
        steps.append(StartBuild(template_id=tid, version=template["version"], cells=list(template["cells"]),
                                template=None if registered else template))
    return steps


def facts(steps: list[AnyStep], snap: Snapshot, gates: dict[str, str], states: dict[str, str] | None = None) -> dict[str, str]:
    """key → value of everything the steps assume, as planning saw it. `states`: record/organ id → state for
    lifecycle moves (read with the target)."""
    out = {f"gate:{name}": verdict for name, verdict in gates.items()}
    for step in steps:
        for key in fact_keys(step):
            out[key] = _planned(key, step, snap, states or {})
    return out


def fact_keys(step: AnyStep) -> list[str]:
    """What one step assumes, as fact keys."""
    match step:
        case CreateRecord():
            keys = [f"identity:{step.template_id}@{step.version}/{step.backend}"]
            return keys + [f"catalog:cell:{step.template_id}@{step.version}"]
        case ReuseRecord():  # only that it can still run: its organ may move it on (graduation) meanwhile
            return [f"uses:{step.record_id}"]
        case Blocked():
            return [f"record:{step.record_id}"]
        case RegisterTemplate():
            return [f"catalog:organ:{step.template_id}@{step.version}"]
        case StartBuild():
            named = [] if step.template is not None else [f"catalog:organ:{step.template_id}@{step.version}"]
            return [f"organ_of:{step.template_id}", *named]
        case ReuseOrgan():
            return [f"organ_of:{step.template_id}"]
        case MoveRecord():
            return [f"record:{step.record_id}"]
        case MoveOrgan():
            return [f"organ:{step.organ_id}"]
    return []


def _planned(key: str, step: AnyStep, snap: Snapshot, states: dict[str, str]) -> str:
    kind, _, rest = key.partition(":")
    if kind == "identity":
        tid, version, backend = _identity(rest)
        found = next((r for r in snap.records.get(tid, []) if r.version == version and r.backend == backend), None)
        return found.id if found else ""
    if kind == "catalog":
        family, _, ref = rest.partition(":")
        tid, _, version = ref.rpartition("@")
        return snap.digests.get(f"{family}:{tid}", {}).get(version, "")
    if kind == "uses":
        return "live"  # a reused record is never a dead one (cell_step blocks those)
    if kind == "record":
        if isinstance(step, Blocked):
            return step.state
        return states.get(rest, "")
    if kind == "organ_of":
        live = snap.live_organs.get(rest)
        return live[0] if live else ""
    return states.get(rest, "")  # organ:<id>


def _identity(rest: str) -> tuple[str, str, str]:
    ref, _, backend = rest.rpartition("/")
    tid, _, version = ref.rpartition("@")
    return tid, version, backend


async def live_organs(conn: AsyncConnection, template_ids: list[str],
                      states: Iterable[str] = LIVE_ORGAN_STATES) -> dict[str, tuple[str, str]]:
    """organ template id → (id, state) of its newest organ in `states` (by default: not failed)."""
    if not template_ids:
        return {}
    o = tables.organs.c
    rows = await conn.execute(select(o.id, o.state, o.template_id).where(
        o.template_id.in_(template_ids), o.state.in_([str(s) for s in states])))
    best: dict[str, Any] = {}
    for r in rows:  # newest first: the larger organ-<n> (ids come from a counter)
        key = (len(r.id), r.id)
        if r.template_id not in best or key > best[r.template_id][0]:
            best[r.template_id] = (key, r)
    return {tid: (r.id, r.state) for tid, (_, r) in best.items()}


async def read_facts(tx: Tx, keys: list[str], gates: dict[str, str]) -> dict[str, str]:
    """The current value of each fact, read inside the apply's transaction with one statement (a UNION ALL of
    the records', organs', live organs', identities' and catalog versions' rows), whatever the plan's size. A
    reused record's fact (`uses:`) is only whether it can still run (`live` | `dead`), not its stage."""
    want: dict[str, list[str]] = {}
    for key in keys:
        kind, _, rest = key.partition(":")
        want.setdefault(kind, []).append(rest)
    rows = await _fact_rows(tx, want)
    found: dict[str, str] = {}
    newest: dict[str, tuple[int, str]] = {}  # organ template → (len, id) of its newest live organ
    for kind, a, b, d, value in rows:
        if kind in ("record", "organ"):
            found[f"{kind}:{a}"] = value
        elif kind == "uses":  # b: the record's previous state (a heal from a dead state ends dead)
            found[f"uses:{a}"] = "dead" if is_dead(value, b) else "live"
        elif kind == "organ_of":  # newest first: the larger organ-<n> (ids come from a counter)
            if a not in newest or (len(b), b) > newest[a]:
                newest[a] = (len(b), b)
                found[f"organ_of:{a}"] = b
        elif kind == "identity":
            found.setdefault(f"identity:{a}@{b}/{d}", value)
        else:
            found[f"catalog:{a}:{b}@{d}"] = value
    return {key: gates.get(key[5:], "") if key.startswith("gate:") else found.get(key, "") or "" for key in keys}


_LIVE = [str(s) for s in LIVE_ORGAN_STATES]
_FACT_SQL = {  # kind → (one SELECT of `(kind, a, b, c, value)` for `{}` placeholders, values per key)
    "record": ("SELECT 'record', id, NULL, NULL, state FROM cell_records WHERE id IN ({})", 1),
    "uses": ("SELECT 'uses', id, previous_state, NULL, state FROM cell_records WHERE id IN ({})", 1),
    "organ": ("SELECT 'organ', id, NULL, NULL, state FROM organs WHERE id IN ({})", 1),
    "organ_of": ("SELECT 'organ_of', template_id, id, NULL, state FROM organs WHERE template_id IN ({}) AND state IN ("
                 + ", ".join("?" * len(_LIVE)) + ")", 1),
    "identity": (("SELECT 'identity', template_id, version, backend, id FROM cell_records "
                  "WHERE (template_id, version, backend) IN (VALUES {})"), 3),
    "catalog": ("SELECT 'catalog', family, id, version, digest FROM catalog WHERE (family, id, version) IN (VALUES {})", 3),
}


def _fact_args(kind: str, rest: str) -> tuple[str, ...]:
    if kind == "identity":
        return _identity(rest)
    if kind == "catalog":
        family, _, ref = rest.partition(":")
        tid, _, version = ref.rpartition("@")
        return family, tid, version
    return (rest,)


async def _fact_rows(tx: Tx, want: dict[str, list[str]]) -> list[Any]:
    """The rows behind the facts wanted, in one statement: on SQLite written here and sent to the driver (no
    compile per plan shape), elsewhere the same UNION ALL in Core."""
    kinds = [k for k in _FACT_SQL if want.get(k)]
    if not kinds:
        return []
    drv = await tx.driver()
    if drv is not None:
        selects, params = [], []
        for kind in kinds:
            sql, width = _FACT_SQL[kind]
            one = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
            selects.append(sql.format(", ".join([one] * len(want[kind]))))
            for rest in want[kind]:
                params.extend(_fact_args(kind, rest))
            if kind == "organ_of":
                params.extend(_LIVE)
        return await drv.execute_fetchall(" UNION ALL ".join(selects), params)
    return list(await tx.conn.execute(_fact_union(want, kinds)))


def _fact_union(want: dict[str, list[str]], kinds: list[str]) -> Any:
    r, c, o = tables.cell_records.c, tables.catalog.c, tables.organs.c
    none = null()
    parts: list[Any] = []
    if want.get("record"):
        parts.append(select(literal_column("'record'"), r.id, none, none, r.state).where(r.id.in_(want["record"])))
    if want.get("uses"):
        parts.append(select(literal_column("'uses'"), r.id, r.previous_state, none, r.state).where(r.id.in_(want["uses"])))
    if want.get("organ"):
        parts.append(select(literal_column("'organ'"), o.id, none, none, o.state).where(o.id.in_(want["organ"])))
    if want.get("organ_of"):
        parts.append(select(literal_column("'organ_of'"), o.template_id, o.id, none, o.state).where(
            o.template_id.in_(want["organ_of"]), o.state.in_(_LIVE)))
    if want.get("identity"):
        parts.append(select(literal_column("'identity'"), r.template_id, r.version, r.backend, r.id).where(
            tuple_(r.template_id, r.version, r.backend).in_([_fact_args("identity", k) for k in want["identity"]])))
    if want.get("catalog"):
        parts.append(select(literal_column("'catalog'"), c.family, c.id, c.version, c.digest).where(
            tuple_(c.family, c.id, c.version).in_([_fact_args("catalog", k) for k in want["catalog"]])))
    return parts[0] if len(parts) == 1 else union_all(*parts)
