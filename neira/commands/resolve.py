"""Command → intent + spec + target, against known templates (plain data in, plain dicts out).

The spec has exactly the contract's shape: `{"kind": "organ_template", "template": {...}}` or
`{"kind": "factory_spec", "spec": {"backend", "template", "hitl"}}`; commands about something that exists
carry `target: {kind, id}`. Unknown pipeline steps become new adapter cell drafts (`new_cells`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from neira.commands.known import Known, split_id
from neira.commands.model import (
    Apply, Approve, BuildPipeline, CancelBuild, Command, CreateCell, CreateOrgan, Disable, Help, Item, ListItems,
    Hold, ParseFailure, Rebuild, Review, Rollback, Run, Status, Target, Train, UpdateOrgan, Why,
)
from neira.commands.morph import slug
from neira.commands.specs import Steps, derive_organ, new_cell, pipeline_organ, versioned_cell

BACKEND = "adapter"


class Resolution(msgspec.Struct, kw_only=True):
    """What a command means against the catalog: the contract's intent, spec and target."""

    intent: str
    lang: str
    spec: dict[str, Any] | None = None
    target: dict[str, str] | None = None
    base: str | None = None
    new_cells: list[dict[str, Any]] = []
    plan_id: str | None = None
    what: str | None = None
    input: str | None = None  # what a run is given: the user's own text
    iteration: int | None = None  # the training iteration a review is about
    verdict: str | None = None  # accept | reject


def resolve(command: Command, known: Known) -> Resolution | ParseFailure:
    """Map a parsed command onto catalog ids; a name that fits nothing or several things is a ParseFailure."""
    try:
        return _resolve(command, known)
    except Unresolved as exc:
        return ParseFailure(code=exc.code, lang=command.lang, word=exc.word, candidates=tuple(exc.candidates))  # type: ignore[arg-type]


RESOLVED_LIMIT = 4096


def resolve_known(command: Command, known: Known) -> Resolution | ParseFailure:
    """`resolve`, remembered on the view: while the catalog and organs it was made from stand still (a new
    Known is made when they move), the same command resolves the same way. Callers treat the answer as
    read-only: it is shared by every command that said the same."""
    hit = known.resolved.get(id(command))
    if hit is not None and hit[0] is command:
        return hit[1]  # type: ignore[return-value]
    res = resolve(command, known)
    if len(known.resolved) >= RESOLVED_LIMIT:
        known.resolved.clear()
    known.resolved[id(command)] = (command, res)
    return res


class Unresolved(Exception):
    """Raised inside the resolver; turned into a ParseFailure at the boundary."""

    def __init__(self, code: str, word: str, candidates: list[str]) -> None:
        super().__init__(word)
        self.code, self.word, self.candidates = code, word, candidates


def _resolve(command: Command, known: Known) -> Resolution:
    lang = command.lang
    match command:
        case CreateOrgan():
            return _create_organ(command, known)
        case UpdateOrgan():
            return _update_organ(command, known)
        case BuildPipeline():
            return _build_pipeline(command, known)
        case CreateCell():
            return _create_cell(command, known)
        case Approve() | Disable() | Rollback() | CancelBuild() | Rebuild() | Hold() | Why():
            return Resolution(intent=command.__struct_config__.tag, lang=lang, target=_target(command.target, known))  # type: ignore[arg-type]
        case Status():
            target = _target(command.target, known) if command.target else None
            return Resolution(intent="status", lang=lang, target=target)
        case ListItems():
            return Resolution(intent="list", lang=lang, what=command.what)
        case Apply():
            return Resolution(intent="apply", lang=lang, plan_id=command.plan_id)
        case Run():
            return _run(command, known)
        case Train():
            return Resolution(intent="train", lang=lang, target=_cell_target(command.target, known))
        case Review():
            return Resolution(intent="review", lang=lang, target=_cell_target(command.target, known),
                              iteration=command.iteration, verdict=command.verdict)
        case Help():
            return Resolution(intent="help", lang=lang)
    raise Unresolved("unknown_command", "", [])  # pragma: no cover - the union is exhaustive


def _run(command: Run, known: Known) -> Resolution:
    """The organ (or cell) to run: the one named, else for `say` verbs the organ that speaks."""
    if command.target is not None:
        target = _target(command.target, known)
    elif command.say:
        family = "organ." + str(known.lexicon.run.get("say_organ", "voice"))
        organ = known.newest_organ(family)
        target = {"kind": "organ", "id": organ["id"] if organ else family}
    else:
        raise Unresolved("incomplete", "", [])
    return Resolution(intent="run", lang=command.lang, target=target, input=command.input)


def _organ_family(item: Item, known: Known) -> str:
    if item.kind == "id":
        family, _ = split_id(item.value)
        if family in known.organ_majors:
            return family
        raise Unresolved("not_found", item.value, sorted(known.organs))
    families = known.organ_families(item.value) if item.kind == "alias" else []
    if len(families) == 1:
        return families[0]
    if len(families) > 1:
        raise Unresolved("ambiguous", item.value, families)
    raise Unresolved("not_found", item.value, sorted({split_id(o)[0] for o in known.organs}))


RELATIVE = frozenset({"previous", "next", "latest"})


def concrete_version(version: str | None, newest: int, word: str) -> str | None:
    """«прошлую версию» / "the next version" against the catalog: the newest major − 1, + 1, or itself."""
    if version not in RELATIVE:
        return version
    major = {"previous": newest - 1, "next": newest + 1, "latest": newest}[version]
    if major < 1:
        raise Unresolved("not_found", word, [f"v{newest}"] if newest else [])
    return f"{major}.0.0"


def _create_organ(command: CreateOrgan, known: Known) -> Resolution:
    item = command.organ
    if item.kind == "alias" and not known.organ_families(item.value) and known.cell_candidates(item.value):
        return _create_cell(CreateCell(lang=command.lang, cell=item, version=command.version), known)
    family = _organ_family(item, known)
    base = known.newest_organ(family)
    if base is None:
        raise Unresolved("not_found", item.value, [])
    command = msgspec.structs.replace(command, version=concrete_version(command.version, known.newest_major(family),
                                                                        item.value))
    major = int(command.version.split(".")[0]) if command.version else None
    existing = known.organs.get(f"{family}.v{major}") if major is not None else base
    if existing is not None and not command.options:
        return Resolution(intent="create_organ", lang=command.lang, spec=_organ_spec(existing))
    steps = _option_steps(command.options, family, base, known, command.lang)
    major = major or known.newest_major(family) + 1
    template = derive_organ(base, major, command.version or f"{major}.0.0", steps.ids, known)
    return Resolution(intent="create_organ", lang=command.lang, spec=_organ_spec(template), base=base["id"],
                      new_cells=steps.new)


def _update_organ(command: UpdateOrgan, known: Known) -> Resolution:
    family = _organ_family(command.organ, known)
    base = known.newest_organ(family)
    if base is None:
        raise Unresolved("not_found", command.organ.value, [])
    command = msgspec.structs.replace(command, version=concrete_version(command.version, known.newest_major(family),
                                                                        command.organ.value))
    major = int(command.version.split(".")[0]) if command.version else known.newest_major(family) + 1
    target = {"kind": "organ", "id": base["id"]}
    existing = known.organs.get(f"{family}.v{major}")
    if existing is not None and existing is base and command.options:
        steps = _option_steps(command.options, family, base, known, command.lang)
        if steps.new or not set(steps.ids) <= set(existing.get("cells") or []):
            raise Unresolved("version_exists", existing["id"], [f"v{known.newest_major(family) + 1}"])
        previous = known.organs.get(existing.get("metadata", {}).get("derived_from", ""))
        # said again after it was applied: the same version holds these cells already, so plan it as it is
        return Resolution(intent="update_organ", lang=command.lang, spec=_organ_spec(existing),
                          target={"kind": "organ", "id": previous["id"] if previous else existing["id"]},
                          base=previous["id"] if previous else None)
    if existing is not None:  # that version is in the catalog already: plan its build as it is
        return Resolution(intent="update_organ", lang=command.lang, spec=_organ_spec(existing), target=target,
                          base=base["id"])
    steps = _option_steps(command.options, family, base, known, command.lang)
    template = derive_organ(base, major, command.version or f"{major}.0.0", steps.ids, known)
    return Resolution(intent="update_organ", lang=command.lang, spec=_organ_spec(template), target=target,
                      base=base["id"], new_cells=steps.new)


def _option_steps(options: tuple[Item, ...], family: str, base: dict, known: Known, lang: str) -> Steps:
    context = {family.split(".")[-1]}
    return _steps(options, known, context, set(base.get("cells") or []), lang)


def _build_pipeline(command: BuildPipeline, known: Known) -> Resolution:
    name, context, context_cells = "pipeline", set(), set()
    if command.name is not None:
        name, context, context_cells = _pipeline_name(command.name, known)
    steps = _steps(command.steps, known, context, context_cells, command.lang)
    family = f"organ.{name}"
    major = known.newest_major(family) + 1
    template = pipeline_organ(family, major, name, steps.ids, command.lang, known)
    if not steps.new and (same := known.same_organ(family, template["cells"], template["pathways"])) is not None:
        template = same  # said before: the plan reuses that template (and its organ, if one runs)
    return Resolution(intent="build_pipeline", lang=command.lang, spec=_organ_spec(template), new_cells=steps.new)


def _pipeline_name(item: Item, known: Known) -> tuple[str, set[str], set[str]]:
    if item.kind == "alias":
        families = known.organ_families(item.value)
        if len(families) == 1:
            organ = known.newest_organ(families[0]) or {}
            name = families[0].split(".", 1)[1]
            return name, {name}, set(organ.get("cells") or [])
    name = slug(item.value)
    return name, {name, item.value}, set()


def _steps(items: tuple[Item, ...], known: Known, context: set[str], context_cells: set[str], lang: str) -> Steps:
    out = Steps()
    for item in items:
        previous = out.ids[-1] if out.ids else None
        cell_id = _step_cell(item, known, context, context_cells, previous)
        if cell_id is None:
            draft = new_cell(item.value, lang, previous if previous in known.cells else None)
            cell_id = draft["id"]
            if cell_id in known.cells:
                draft = None
            elif all(d["id"] != cell_id for d in out.new):
                out.new.append(draft)
        if cell_id in out.ids:
            raise Unresolved("ambiguous", item.value, [cell_id])  # a pathway may not visit a cell twice
        out.ids.append(cell_id)
    return out


def _step_cell(item: Item, known: Known, context: set[str], context_cells: set[str], previous: str | None) -> str | None:
    if item.kind == "id":
        return known.cell_by_id_or_type(item.value)
    if item.kind == "word":
        return None
    candidates = known.cell_candidates(item.value)
    if not candidates:
        raise Unresolved("not_found", item.value, [])  # names an organ, not a cell
    chosen = known.pick(candidates, context, context_cells, previous)
    if chosen is None:
        raise Unresolved("ambiguous", item.value, candidates)
    return chosen


def _create_cell(command: CreateCell, known: Known) -> Resolution:
    item, lang = command.cell, command.lang
    if item.kind == "alias":
        candidates = [c for c in known.cell_candidates(item.value)
                      if command.cell_kind is None or c.startswith(command.cell_kind + ".")]
        if len(candidates) > 1:
            raise Unresolved("ambiguous", item.value, candidates)
        cell_id = candidates[0] if candidates else None
    else:
        cell_id = known.cell_by_id_or_type(item.value) if item.kind == "id" else None
    if cell_id is not None and command.version in RELATIVE:
        command = msgspec.structs.replace(command, version=concrete_version(
            command.version, split_id(cell_id)[1], item.value))
    if cell_id is None:
        if command.version in RELATIVE:
            raise Unresolved("not_found", item.value, [])
        template = new_cell(item.value, lang, None, kind=command.cell_kind or "analysis", version=command.version)
        return Resolution(intent="create_cell", lang=lang, spec=_factory_spec(template))
    template = versioned_cell(known.cells[cell_id], command.version)
    target = {"kind": "cell", "id": cell_id} if template["id"] == cell_id else None
    return Resolution(intent="create_cell", lang=lang, spec=_factory_spec(template), target=target,
                      base=cell_id if target is None else None)


def _target(target: Target, known: Known) -> dict[str, str]:
    ref = target.ref
    if ref.kind == "alias":
        families = known.organ_families(ref.value) if target.kind != "cell" else []
        if len(families) == 1:
            organ = known.newest_organ(families[0])
            return {"kind": "organ", "id": organ["id"] if organ else families[0]}
        cells = known.cell_candidates(ref.value) if target.kind != "organ" else []
        if len(cells) == 1:
            return {"kind": "cell", "id": cells[0]}
        raise Unresolved("ambiguous" if len(cells) + len(families) > 1 else "not_found", ref.value, cells + families)
    kind = target.kind or ("organ" if ref.value.startswith("organ") else "cell")
    return {"kind": kind, "id": ref.value}


def _cell_target(target: Target | None, known: Known) -> dict[str, str] | None:
    """Training is about cells: a name is looked up among the cells first (the summarize cell, not an organ)."""
    if target is None:
        return None
    if target.kind is None and target.ref.kind == "alias":
        target = Target(kind="cell", ref=target.ref)
    return _target(target, known)


def _organ_spec(template: dict) -> dict[str, Any]:
    return {"kind": "organ_template", "template": template}


def _factory_spec(template: dict) -> dict[str, Any]:
    return {"kind": "factory_spec", "spec": {"backend": BACKEND, "template": template, "hitl": True}}
