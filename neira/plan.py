"""The one description of a change: typed steps (a tagged union), the plan that holds them with the facts it
was made against, and the one renderer — the contract's change JSON (§5) and the `+ ~ - =` text, in RU or EN.

Every dry-run (cells, organs) and every Command Cell plan is made of these steps; `neira/plan_apply.py`
carries out exactly these steps, in one transaction, after checking the facts.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from neira.selector import Candidate
from neira.structs import Answer, Base, Frozen

MARKERS = {"create": "+", "update": "~", "delete": "-", "reuse": "=", "no-op": "="}
"""The text marker of each change action; the pages render the text and the JSON they are given."""


class Step(Frozen, tag_field="op", kw_only=True):
    """One change a plan carries out. `why` names the reason; the renderer words it in the plan's language."""

    why: str = ""


class CreateRecord(Step, tag="create_record", kw_only=True):
    """A new draft record of a cell template on a backend; the template is registered when `register`. The plan
    carries the template's body only then: a catalog template is named (`template_id@version`, its digest one
    of the plan's facts), which keeps a saved plan a few hundred bytes instead of kilobytes a cell."""

    template: dict[str, Any] | None = None
    template_id: str
    version: str
    digest: str
    backend: str = "adapter"
    hitl: bool = True
    register: bool = False
    before: str | None = None  # the catalog's latest version of the template, when this one is newer
    word: str | None = None  # the word the user said for a drafted cell
    own_reason: bool = False  # the record's history keeps `reason` (a REST create: none, or its sandbox's
    reason: str | None = None  # limits and gate) instead of the change's own reason


class ReuseRecord(Step, tag="reuse_record", kw_only=True):
    """An existing record is used as it is; `same` when it already holds exactly this template (no-op)."""

    template_id: str
    version: str
    record_id: str
    state: str
    same: bool = False


class Blocked(Step, tag="blocked", kw_only=True):
    """A cell the plan cannot use (its only record is dead): nothing is done, and the policy denies the plan."""

    template_id: str
    version: str
    record_id: str
    state: str


class RegisterTemplate(Step, tag="register_template", kw_only=True):
    """A new organ template version in the catalog (`base`: the version it derives from)."""

    template: dict[str, Any]
    template_id: str
    version: str
    digest: str
    base: str | None = None
    added: list[str] = []


class StartBuild(Step, tag="start_build", kw_only=True):
    """A new organ built from a template, with the records chosen for its cells by the steps before it. The body
    (as registered) is carried when the plan registers the template or builds one inline; a saved plan names a
    catalog template instead (its digest is then one of the plan's facts)."""

    template_id: str
    version: str
    cells: list[str]
    template: dict[str, Any] | None = None


class ReuseOrgan(Step, tag="reuse_organ", kw_only=True):
    """A live organ of this template exists already: nothing to build (no-op)."""

    template_id: str
    organ_id: str
    state: str


class MoveRecord(Step, tag="move_record", kw_only=True):
    """A lifecycle move of one cell record (approve, disable, rollback)."""

    template_id: str
    record_id: str
    via: str
    before: str
    after: str


class MoveOrgan(Step, tag="move_organ", kw_only=True):
    """A lifecycle move of one organ (approve, cancel, rebuild, set)."""

    template_id: str
    organ_id: str
    via: str
    before: str
    after: str


AnyStep = CreateRecord | ReuseRecord | Blocked | RegisterTemplate | StartBuild | ReuseOrgan | MoveRecord | MoveOrgan


class Snapshot(Base):
    """What a plan was made from. Keys: cell template id; `(family, id)` for catalog versions."""

    latest: dict[str, dict[str, Any]]  # cell id → latest catalog body
    digests: dict[str, dict[str, str]]  # "family:id" → version → digest
    records: dict[str, list[Candidate]]  # cell template id → its records
    live_organs: dict[str, tuple[str, str]] = {}  # organ template id → (newest live organ id, state)


class Decision(Frozen):
    """A policy decision taken while planning, kept with the plan (the apply audits these ids)."""

    decision_id: str
    rule: str
    action: str
    reason: str
    capability: str | None = None


class Risk(Answer, kw_only=True, omit_defaults=True):
    """One finding of a dry-run or plan, cells and organs alike: `{code, severity, id?, message, cells?, cycle?,
    capability?}` (`cells`: the two cells a type chain breaks between; `cycle`: the links that close a cycle;
    `capability`: the closed gate)."""

    code: str
    severity: str
    id: str | None = None
    message: str
    cells: list[str] = []
    cycle: list[str] | None = None
    capability: str | None = None


class Plan(Base):
    """What was shown: its steps, the policy's decisions, and the facts (key → value) it was made against.
    `base` hashes the facts; apply reads the same facts again and refuses a plan whose facts moved."""

    id: str
    lang: str
    steps: list[AnyStep]
    decisions: list[Decision]
    facts: dict[str, str]
    risks: list[Risk] = []
    base: str = ""

    def __post_init__(self) -> None:
        if not self.base:
            self.base = base_of(self.facts)

    @property
    def allowed(self) -> bool:
        """No decision denies the plan."""
        return not any(d.action == "deny" for d in self.decisions)


class Change(Answer, kw_only=True, omit_defaults=True):
    """One change as the contract shows it: `{action, kind, id, record_id?, before?, after?, reason}`."""

    action: str
    kind: str
    id: str
    reason: str
    record_id: str | None = None
    before: Any = None
    after: Any = None


class PlanView(Answer, kw_only=True):
    """The plan as every answer carries it: `{id, base, changes, summary, text}`."""

    id: str | None
    base: str | None
    changes: list[Change]
    summary: str
    text: str
    risks: list[Risk] = []


def base_of(facts: dict[str, str]) -> str:
    """sha256 over the facts a plan depends on."""
    return hashlib.sha256(msgspec.json.encode(facts, order="sorted")).hexdigest()


_WHY: dict[str, dict[str, str]] = {
    "en": {
        "new_record": "new draft record of {tid} {version}",
        "new_version": "new draft record of {tid} {version} (the catalog has {before})",
        "drafted": "new adapter cell drafted for '{word}'",
        "generated": "not in the catalog: a generated adapter template {version}",
        "no_live": "new draft record of {tid} {version}: no live record can be reused",
        "reuse": "{record_id} runs {tid} {version} ({state})",
        "reuse_draft": "{record_id} is a draft of the same template content",
        "same": "{record_id} already holds {tid} {version} ({state}); it is returned unchanged",
        "dead": "{record_id} is {state}: it can never run again; register a new version of {tid}",
        "new_template": "new organ template {tid}",
        "derived": "new organ template {tid} from {base}{added}",
        "build": "a draft organ built from {tid}",
        "organ_exists": "{organ_id} already runs {tid} ({state})",
        "approve": "approve {record_id}: {before} → {after}",
        "disable": "disable {record_id}: {before} → {after}",
        "rollback": "roll back {record_id}: {before} → {after}; the last stable version becomes active again",
        "cancel": "cancel the build of {record_id}: {before} → {after}",
        "rebuild": "rebuild {record_id} from draft ({before} → {after})",
        "set": "set {record_id} by hand: {before} → {after}",
        "hold": "hold {record_id} in {before} until it is approved",
        "summary": "{create} to create, {update} to update, {delete} to delete, {same} unchanged",
        "line": "Plan: {summary}.",
    },
    "ru": {
        "new_record": "новая черновая запись {tid} {version}",
        "new_version": "новая черновая запись {tid} {version} (в каталоге {before})",
        "drafted": "новая adapter-клетка для «{word}»",
        "generated": "нет в каталоге: сгенерированный adapter-шаблон {version}",
        "no_live": "новая черновая запись {tid} {version}: живой записи для повторного использования нет",
        "reuse": "{record_id} уже работает: {tid} {version} ({state})",
        "reuse_draft": "{record_id} — черновик с тем же содержимым шаблона",
        "same": "{record_id} уже содержит {tid} {version} ({state}); остаётся без изменений",
        "dead": "{record_id} в состоянии {state} и больше не запустится; зарегистрируйте новую версию {tid}",
        "new_template": "новый шаблон органа {tid}",
        "derived": "новый шаблон органа {tid} на основе {base}{added}",
        "build": "черновая сборка органа из шаблона {tid}",
        "organ_exists": "{organ_id} уже собран из {tid} ({state})",
        "approve": "одобрить {record_id}: {before} → {after}",
        "disable": "отключить {record_id}: {before} → {after}",
        "rollback": "откатить {record_id}: {before} → {after}; снова активна последняя стабильная версия",
        "cancel": "отменить сборку {record_id}: {before} → {after}",
        "rebuild": "пересобрать {record_id} с черновика ({before} → {after})",
        "set": "вручную перевести {record_id}: {before} → {after}",
        "hold": "придержать {record_id} в {before} до одобрения",
        "summary": "создать {create}, обновить {update}, удалить {delete}, без изменений {same}",
        "line": "План: {summary}.",
    },
}


def _words(lang: str) -> dict[str, str]:
    return _WHY.get(lang, _WHY["en"])


def change(step: AnyStep, lang: str = "en") -> Change:
    """The contract's change for one step, its reason in `lang`."""
    w = _words(lang)
    match step:
        case CreateRecord():
            why = step.why or ("new_version" if step.before else "new_record")
            reason = w[why].format(tid=step.template_id, version=step.version, before=step.before, word=step.word)
            action = "update" if step.before else "create"
            return Change(action=action, kind="cell", id=step.template_id, before=step.before, after=step.version,
                          reason=reason)
        case ReuseRecord():
            why = "same" if step.same else (step.why or "reuse")
            reason = w[why].format(record_id=step.record_id, tid=step.template_id, version=step.version, state=step.state)
            return Change(action="no-op" if step.same else "reuse", kind="cell", id=step.template_id,
                          record_id=step.record_id, reason=reason)
        case Blocked():
            reason = w["dead"].format(record_id=step.record_id, state=step.state, tid=step.template_id)
            return Change(action="no-op", kind="cell", id=step.template_id, record_id=step.record_id, reason=reason)
        case RegisterTemplate():
            added = f" (+ {', '.join(step.added)})" if step.added else ""
            reason = w["derived" if step.base else "new_template"].format(tid=step.template_id, base=step.base, added=added)
            return Change(action="update" if step.base else "create", kind="template", id=step.template_id,
                          before=step.base, after=step.template_id, reason=reason)
        case StartBuild():
            return Change(action="create", kind="organ", id=step.template_id, after={"state": "draft"},
                          reason=w["build"].format(tid=step.template_id))
        case ReuseOrgan():
            reason = w["organ_exists"].format(organ_id=step.organ_id, tid=step.template_id, state=step.state)
            return Change(action="no-op", kind="organ", id=step.template_id, record_id=step.organ_id, reason=reason)
        case MoveRecord():
            reason = w[step.via].format(record_id=step.record_id, before=step.before, after=step.after)
            return Change(action="update", kind="cell", id=step.template_id, record_id=step.record_id,
                          before=step.before, after=step.after, reason=reason)
        case MoveOrgan():
            reason = w[step.via].format(record_id=step.organ_id, before=step.before, after=step.after)
            return Change(action="update", kind="organ", id=step.template_id, record_id=step.organ_id,
                          before=step.before, after=step.after, reason=reason)
    raise TypeError(f"not a plan step: {step!r}")  # pragma: no cover - the union is exhaustive


_KIND = {"ru": {"cell": "клетка", "organ": "орган", "template": "шаблон"}}


def _line(c: Change, lang: str) -> str:
    what = f"{_KIND.get(lang, {}).get(c.kind, c.kind)} {c.record_id or c.id}"
    if c.record_id and c.kind == "cell" and c.record_id != c.id:
        what += f" ({c.id})"
    if c.action == "update" and c.kind != "template" and isinstance(c.before, str):
        what += f": {c.before} → {c.after}"
    return f"{MARKERS[c.action]} {what} — {c.reason}"


_RISK = {
    "en": {"type_mismatch": "! {a} → {b}: the types do not fit ({message})",
           "no_implementation": "! {id} has no implementation: it would be built but could not run"},
    "ru": {"type_mismatch": "! {a} → {b}: типы не совпадают ({message})",
           "no_implementation": "! у {id} нет реализации: клетку можно собрать, но не запустить"},
}


def _risk_line(r: Risk, lang: str) -> str:
    words = _RISK.get(lang, _RISK["en"])
    a, b = (r.cells + ["", ""])[:2] if r.cells else (r.id, r.id)
    return words.get(r.code, "! {message}").format(a=a, b=b, id=r.id, message=r.message)


def view(plan_id: str | None, base: str | None, steps: list[AnyStep], lang: str = "en",
         risks: list[Risk] | None = None) -> PlanView:
    """`{id, base, changes, summary, text, risks}`: the changes, the counts, one `+ ~ - =` line per change, and
    a `!` line per risk."""
    changes = [change(s, lang) for s in steps]
    counts = {a: sum(1 for c in changes if c.action == a) for a in MARKERS}
    w = _words(lang)
    summary = w["summary"].format(create=counts["create"], update=counts["update"], delete=counts["delete"],
                                  same=counts["reuse"] + counts["no-op"])
    lines = [*(_line(c, lang) for c in changes), *(_risk_line(r, lang) for r in risks or ())]
    text = "\n".join([*lines, w["line"].format(summary=summary)])
    return PlanView(id=plan_id, base=base, changes=changes, summary=summary, text=text, risks=list(risks or ()))


def plan_view(plan: Plan) -> PlanView:
    """The view of a saved plan."""
    return view(plan.id, plan.base, plan.steps, plan.lang, plan.risks)
