"""The second tier: when the strict LALR parse fails, a frame matcher reads the same classified tokens.

Each intent is a frame with typed slots (organ, version, cells to add, ordered steps, pipeline name, target,
iteration). Slots are filled from the tokens regardless of word order and across «и»/"and" clauses («создай
голосовой орган v2 и добавь в него суммаризацию»); every filled frame is a *reading*, scored by

    cue strength (a listed verb 1.0, a gapped verb "turn X off" 1.1, a synonym or question 0.9, a nominal 0.7,
    no verb at all 0.5) + 0.2 per optional slot filled − 0.6 per unexplained unknown word − 1.0 per unexplained
    catalog name or id − 0.7 per verb of another intent − 0.2 per unused noun or version.

The best reading is answered only when it scores at least MIN_SCORE and leads the next different reading by
MARGIN; otherwise the phrase is `ambiguous` and both readings are phrased back as candidates. A reading is the
same typed Command the grammar produces, so resolve/plan/apply do not know which tier read it; `gloss()` says
how it was understood («Понял так: …», "I understood: …"). Typos never reach this tier (parse.py answers them
with a suggestion first), so no slot is ever filled by a guess.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import msgspec

from neira.commands.lexicon import Lexicon
from neira.commands.model import (
    Apply, Approve, BuildPipeline, CancelBuild, Command, CreateCell, CreateOrgan, Disable, Help, Item, ListItems,
    ParseFailure, Rebuild, Review, Rollback, Run, Status, Target, Train, UpdateOrgan,
)
from neira.commands.normalize import pieces
from neira.commands.tokens import Stream, Tok
from neira.commands.transform import semver

MIN_SCORE = 0.4
MARGIN = 0.5
_STRENGTH = {None: 1.0, "synonym": 0.9, "question": 0.9, "form": 0.9, "nominal": 0.7}
GAPPED, IMPLICIT = 1.1, 0.5
SLOT, UNEXPLAINED, UNEXPLAINED_NAME, OTHER_VERB, UNUSED = 0.2, 0.6, 1.0, 0.7, 0.2
_CONTENT = frozenset({"WORD", "ALIAS", "ID", "ORGAN_ID"})
_VERSION = frozenset({"VERSION", "NUMBER", "RELVERSION"})
_NOUNS = frozenset({"ORGAN", "CELL", "PIPELINE", "KIND"})
_SEP = frozenset({"ARROW", "COMMA"})
_LIFECYCLE = {"APPROVE": Approve, "DISABLE": Disable, "ROLLBACK": Rollback, "CANCEL_BUILD": CancelBuild,
              "REBUILD": Rebuild}
_LIST_WHAT = {"ORGAN": "organs", "CELL": "cells", "PIPELINE": "pipelines"}
_ITEM_KIND = {"ALIAS": "alias", "WORD": "word", "ID": "id", "ORGAN_ID": "id"}


class Reading(NamedTuple):
    command: Command
    score: float


class _Frame:
    """The tokens of one phrase, indexed for the frame builders."""

    def __init__(self, s: Stream, lex: Lexicon) -> None:
        self.toks, self.lex, self.lang = s.toks, lex, s.lang
        self.cues: dict[str, list[tuple[int, float]]] = {}  # terminal → (token index, strength)
        self.gap_parts: set[int] = set()
        self.add_at: list[int] = []  # where a clause that adds cells starts («добавь», "with", "plus")
        words = [t.text for t in self.toks]
        gapped: dict[int, tuple[str, int | None]] = {}
        firsts = lex.gapped_by_first
        raw: list[str] | None = None
        for i, w in enumerate(words):
            for second, terminal in firsts.get(w, ()):
                j = next((k for k in range(i + 1, len(words)) if words[k] == second), None)
                if j is None:  # the particle may be a skipped word («собери organ-1 ещё раз»): look at the text
                    raw = raw if raw is not None else _raw_words(s.text[self.toks[i].end:])
                    if second not in raw:
                        continue
                gapped[i] = (terminal, j)
                break
        for i, t in enumerate(self.toks):
            if i in gapped:
                terminal, j = gapped[i]
                self.cues.setdefault(terminal, []).append((i, GAPPED))
                if j is not None:
                    self.gap_parts.add(j)
                continue
            if t.canon[:1] == "!":
                self.cues.setdefault(t.cls, []).append((i, _STRENGTH.get(lex.cue_kind.get(t.text), 0.9)))
            if t.text in lex.add_words and t.cls in ("MAKE", "FROM", "WORD", "ARROW"):
                self.add_at.append(i)
        self.paren = _inside_parens(self.toks)

    def of(self, *classes: str) -> list[int]:
        return [i for i, t in enumerate(self.toks) if t.cls in classes]

    def after_add(self, i: int) -> bool:
        return any(a < i for a in self.add_at) or i in self.paren

    def organ_aliases(self) -> list[int]:
        return [i for i in self.of("ALIAS") if self.lex.aliases.get(self.toks[i].canon[1:]) is not None
                and self.lex.aliases[self.toks[i].canon[1:]].organs]

    def names_cell(self, i: int) -> bool:
        tok = self.toks[i]
        if tok.cls == "ALIAS":
            alias = self.lex.aliases.get(tok.canon[1:])
            return alias is not None and bool(alias.cells)
        return tok.cls == "ID" and ("." in tok.text or "_" in tok.text)  # analysis.summarize.v1, text_normalize

    def score(self, terminal: str, used: set[int], slots: int, strength: float | None = None) -> float:
        """Cue strength + filled slots − what the reading leaves unexplained."""
        mine = self.cues.get(terminal, [])
        base = strength if strength is not None else max((s for _, s in mine), default=IMPLICIT)
        used = used | {i for i, _ in mine} | self.gap_parts
        penalty = 0.0
        for i, t in enumerate(self.toks):
            if i in used:
                continue
            if t.canon[:1] == "!":
                penalty += 0 if t.cls == terminal or i in self.add_at and terminal == "MAKE" else OTHER_VERB
            elif t.cls in _CONTENT:  # a catalog name or an id left out is a reading that drops what was asked
                penalty += UNEXPLAINED if t.cls == "WORD" else UNEXPLAINED_NAME
            elif t.cls in _NOUNS or t.cls in _VERSION:
                penalty += UNUSED
        return base + SLOT * slots - penalty


def _raw_words(text: str) -> list[str]:
    return [p.text for p in pieces(text) if p.shape == "word"]


def _inside_parens(toks: list[Tok]) -> set[int]:
    out, depth = set(), 0
    for i, t in enumerate(toks):
        if t.cls == "LPAR":
            depth += 1
        elif t.cls == "RPAR":
            depth = max(0, depth - 1)
        elif depth:
            out.add(i)
    return out


def _item(tok: Tok) -> Item:
    value = tok.canon[1:] if tok.cls == "ALIAS" else tok.text
    return Item(kind=_ITEM_KIND[tok.cls], value=value)  # type: ignore[arg-type]


def _version(f: _Frame) -> tuple[str | None, set[int]]:
    for i in f.of(*_VERSION):
        tok = f.toks[i]
        used = {i} | ({i - 1} if i and f.toks[i - 1].cls == "VWORD" else set())
        if tok.cls == "RELVERSION":
            return tok.canon[1:], used
        try:
            return semver(tok.canon), used
        except ValueError:
            return None, set()
    return None, set()


def _organ(f: _Frame, exclude: set[int] = frozenset()) -> tuple[int | None, set[int]]:  # type: ignore[assignment]
    """The organ slot: an organ alias (the one next to «орган» first, then one outside an add clause), an organ id."""
    nouns = f.of("ORGAN")
    ids = [i for i in f.of("ORGAN_ID", "ID") if i not in exclude
           and (f.toks[i].cls == "ORGAN_ID" or any(abs(i - n) == 1 for n in nouns))]
    aliases = [i for i in f.organ_aliases() if i not in exclude]
    for pool in ([i for i in aliases if any(abs(i - n) == 1 for n in nouns)],
                 [i for i in aliases if not f.after_add(i)], aliases, ids):
        if pool:
            i = pool[0]
            return i, {i} | {n for n in nouns if not f.after_add(n) or abs(n - i) == 1}
    return None, set()


def _options(f: _Frame, organ: int | None) -> tuple[tuple[Item, ...], set[int]]:
    """Cells to add: catalog cells named in parentheses or after an add word; unknown words only in parentheses."""
    items, used = [], set()
    for i, t in enumerate(f.toks):
        if i == organ or t.cls not in _CONTENT:
            continue
        if t.cls == "WORD" and i not in f.paren:
            continue
        if t.cls == "ALIAS" and not f.names_cell(i):
            continue
        if t.cls in ("ID", "ORGAN_ID") and not f.names_cell(i):
            continue
        items.append(_item(t))
        used.add(i)
    used |= {i for i in f.of("CELL") if f.after_add(i)} | set(f.add_at) | set(f.of("LPAR", "RPAR"))
    return tuple(items), used


def _target(f: _Frame) -> tuple[Target | None, set[int]]:
    refs = f.of("ID", "ORGAN_ID", "ALIAS")
    if not refs:
        return None, set()
    i = refs[0]
    nouns = f.of("CELL", "ORGAN")
    kind = None
    if nouns:
        kind = "cell" if f.toks[nouns[0]].cls == "CELL" else "organ"
    elif f.toks[i].cls == "ORGAN_ID":
        kind = "organ"
    return Target(kind=kind, ref=_item(f.toks[i])), {i, *nouns}


def _steps(f: _Frame) -> tuple[list[int], set[int]]:
    """The longest run of items joined by arrows, commas, «и»/"and" (with what joins them)."""
    best: list[int] = []
    run: list[int] = []
    joiners: set[int] = set()
    best_joiners: set[int] = set()
    expect_item = True
    for i, t in enumerate(f.toks):
        if t.cls in ("ALIAS", "WORD", "ID") and expect_item:
            run.append(i)
            expect_item = False
        elif t.cls in _SEP and run and not expect_item:
            joiners.add(i)
            expect_item = True
        else:
            if len(run) > len(best):
                best, best_joiners = run, joiners
            run, joiners = ([i], set()) if t.cls in ("ALIAS", "WORD", "ID") else ([], set())
            expect_item = not run
    if len(run) > len(best):
        best, best_joiners = run, joiners
    return best, best_joiners


# ---- frames: each returns readings (possibly none)

def _make(f: _Frame) -> list[Reading]:
    cue = f.cues.get("MAKE")
    strength = None if cue else IMPLICIT
    make_add_only = bool(cue) and all(i in f.add_at for i, _ in cue)
    out: list[Reading] = []
    version, v_used = _version(f)
    pipelines, cells = f.of("PIPELINE"), [i for i in f.of("CELL") if not f.after_add(i)]
    steps, joiners = _steps(f)
    # a pipeline: «собери speak-pipeline: …», "chain normalize and summarize into a pipeline"
    if pipelines or (cue and len(steps) >= 2 and not f.of("ORGAN")):
        name_idx = [i for i in f.of("ALIAS", "WORD", "ID") if i not in steps
                    and any(abs(i - p) == 1 or _between(f, p, i) for p in pipelines)]
        if steps and (pipelines or len(steps) >= 2) and (cue or len(steps) >= 2):
            name = None
            if name_idx:
                words = [f.toks[i] for i in name_idx]
                name = _item(words[0]) if len(words) == 1 else Item(kind="word", value=" ".join(t.text for t in words))
            used = set(steps) | joiners | set(pipelines) | set(name_idx) | set(f.of("FROM", "COLON", "TO"))
            command = BuildPipeline(name=name, steps=tuple(_item(f.toks[i]) for i in steps), lang=f.lang)  # type: ignore[arg-type]
            out.append(Reading(command, f.score("MAKE", used, 1 + bool(name), strength)))
    if not cue:
        strength = IMPLICIT
    organ, o_used = _organ(f)
    if cells and cue:  # «создай клетку суммаризации v1», "make a summarizer cell v1"
        kinds = f.of("KIND")
        items = [i for i in f.of("ALIAS", "WORD", "ID") if i != organ or not f.of("ORGAN")]
        if items and not f.of("ORGAN"):
            i = items[0]
            tok = f.toks[i]
            if tok.cls != "ALIAS" or f.names_cell(i):
                kind = f.toks[kinds[0]].canon[1:] if kinds else None
                command = CreateCell(cell=_item(tok), cell_kind=kind, version=version, lang=f.lang)  # type: ignore[arg-type]
                used = {i, *cells, *kinds, *v_used}
                out.append(Reading(command, f.score("MAKE", used, bool(version) + bool(kinds), strength)))
    if organ is not None and not pipelines and not cells:
        options, opt_used = _options(f, organ)
        used = o_used | v_used | opt_used
        tos = [i for i in f.of("TO") if i < organ]
        if make_add_only and options and (tos or f.add_at):  # «добавь оттенки серого в зрение»: an update
            command = UpdateOrgan(organ=_item(f.toks[organ]), version=version, options=options, lang=f.lang)  # type: ignore[arg-type]
            out.append(Reading(command, f.score("MAKE", used | set(f.of("TO")), 1 + bool(version))))
        elif cue or version is not None:  # no verb: «голосовой орган v1» asks for it, «голосовой орган» alone not
            command = CreateOrgan(organ=_item(f.toks[organ]), version=version, options=options, lang=f.lang)  # type: ignore[arg-type]
            out.append(Reading(command, f.score("MAKE", used | set(f.of("TO")), bool(version) + bool(options),
                                                strength)))
    return out


def _between(f: _Frame, p: int, i: int) -> bool:
    """A name of several words right after «пайплайн»/"pipeline", up to a colon or «из»/"from"."""
    if i <= p:
        return False
    return all(f.toks[k].cls == "WORD" for k in range(p + 1, i + 1)) and i + 1 < len(f.toks) \
        and f.toks[i + 1].cls in ("COLON", "FROM")


def _update(f: _Frame) -> list[Reading]:
    if "UPDATE" not in f.cues:
        return []
    organ, o_used = _organ(f)
    if organ is None:
        return []
    version, v_used = _version(f)
    options, opt_used = _options(f, organ)
    command = UpdateOrgan(organ=_item(f.toks[organ]), version=version, options=options, lang=f.lang)  # type: ignore[arg-type]
    used = o_used | v_used | opt_used | set(f.of("TO"))
    return [Reading(command, f.score("UPDATE", used, bool(version) + bool(options)))]


def _with_target(terminal: str, build: Callable[[Target | None], Command | None], required: bool = True):
    def frame(f: _Frame) -> list[Reading]:
        if terminal not in f.cues:
            return []
        target, used = _target(f)
        if target is None and required:
            return []
        command = build(target)
        if command is None:
            return []
        if terminal in ("ROLLBACK", "REBUILD"):  # «откати … к прошлой версии»: what rollback means anyway
            used |= _version(f)[1] | set(f.of("TO"))
        return [Reading(command, f.score(terminal, used, target is not None))]
    return frame


def _list(f: _Frame) -> list[Reading]:
    if "LIST" not in f.cues:
        return []
    refs = f.of("ID", "ORGAN_ID")
    if refs:
        target, used = _target(f)
        return [Reading(Status(target=target, lang=f.lang), f.score("LIST", used, 1))]  # type: ignore[arg-type]
    nouns = f.of("ORGAN", "CELL", "PIPELINE")
    if not nouns:  # "so what", «что за …»: a question word alone asks for nothing (a bare "list" is the grammar's)
        return []
    what = _LIST_WHAT[f.toks[nouns[0]].cls]
    return [Reading(ListItems(what=what, lang=f.lang), f.score("LIST", set(nouns), 1))]  # type: ignore[arg-type]


def _plain(terminal: str, command: Callable[[_Frame], Command]):
    def frame(f: _Frame) -> list[Reading]:
        if terminal not in f.cues:
            return []
        used = set(i for i in f.of("ID") if f.toks[i].text.startswith("plan")) if terminal == "APPLY" else set()
        return [Reading(command(f), f.score(terminal, used, 0))]
    return frame


def _apply(f: _Frame) -> Command:
    plans = [f.toks[i].text for i in f.of("ID") if f.toks[i].text.startswith("plan")]
    return Apply(plan_id=plans[0] if plans else None, lang=f.lang)  # type: ignore[arg-type]


def _review(terminal: str, verdict: str):
    def frame(f: _Frame) -> list[Reading]:
        if terminal not in f.cues:
            return []
        numbers = [i for i in f.of("NUMBER") if f.toks[i].canon.isdigit()]
        if not numbers:
            return []
        target, used = _target(f)
        command = Review(iteration=int(f.toks[numbers[0]].canon), verdict=verdict, target=target, lang=f.lang)  # type: ignore[arg-type]
        return [Reading(command, f.score(terminal, used | {numbers[0]}, 1))]
    return frame


def _lifecycle(cls: type) -> Callable[[Target | None], Command | None]:
    return lambda target: cls(target=target) if target is not None else None


FRAMES = (
    _make, _update, _list,
    *(_with_target(t, _lifecycle(c)) for t, c in _LIFECYCLE.items()),
    _with_target("STATUS", lambda t: Status(target=t), required=False),
    _with_target("TRAIN", lambda t: Train(target=t), required=False),
    _with_target("RUN", lambda t: Run(target=t)),
    _with_target("SAY", lambda t: Run(target=t, say=True), required=False),
    _plain("HELP", lambda f: Help()),
    _plain("APPLY", _apply),
    _review("ACCEPT_ITERATION", "accept"),
    _review("REJECT_ITERATION", "reject"),
)


def read(s: Stream, lex: Lexicon) -> Command | ParseFailure | None:
    """The best reading of a phrase the grammar rejected; `ambiguous` when two differ by less than MARGIN."""
    if not s.toks:
        return None
    f = _Frame(s, lex)
    readings: dict[bytes, Reading] = {}
    for frame in FRAMES:
        for reading in frame(f):
            command = reading.command
            if command.lang != s.lang:
                command = msgspec.structs.replace(command, lang=s.lang)
                reading = Reading(command, reading.score)
            key = _key(command)
            if key not in readings or readings[key].score < reading.score:
                readings[key] = reading
    ranked = sorted(readings.values(), key=lambda r: -r.score)
    if not ranked or ranked[0].score < MIN_SCORE:
        return None
    if len(ranked) > 1 and ranked[0].score - ranked[1].score < MARGIN and ranked[1].score >= MIN_SCORE:
        return ParseFailure(code="ambiguous", lang=s.lang,  # type: ignore[arg-type]
                            candidates=(gloss(ranked[0].command, s.lang), gloss(ranked[1].command, s.lang)))
    return ranked[0].command


def _key(command: Command) -> bytes:
    return msgspec.json.encode(command)


# ---- saying back how a phrase was understood

_VERBS = {
    "ru": {"create_organ": "создать орган", "update_organ": "обновить орган", "build_pipeline": "собрать пайплайн",
           "create_cell": "создать клетку", "approve": "одобрить", "disable": "отключить", "rollback": "откатить",
           "status": "статус", "list": "показать", "cancel_build": "отменить сборку", "rebuild": "пересобрать",
           "apply": "применить план", "run": "запустить", "train": "обучить", "review": "итерация", "help": "помощь"},
    "en": {"create_organ": "create the organ", "update_organ": "update the organ", "build_pipeline": "build a pipeline",
           "create_cell": "create the cell", "approve": "approve", "disable": "disable", "rollback": "roll back",
           "status": "status of", "list": "list", "cancel_build": "cancel the build of", "rebuild": "rebuild",
           "apply": "apply the plan", "run": "run", "train": "train", "review": "iteration", "help": "help"},
}
_WORDS = {"ru": {"version": "версия", "with": "с", "steps": "шаги", "named": "под именем", "accept": "принять",
                 "reject": "отклонить", "organs": "органы", "cells": "клетки", "pipelines": "пайплайны"},
          "en": {"version": "version", "with": "with", "steps": "steps", "named": "named", "accept": "accept",
                 "reject": "reject", "organs": "organs", "cells": "cells", "pipelines": "pipelines"}}


def gloss(command: Command, lang: str) -> str:
    """How a command reads back, in the user's language: «создать орган голосовой, версия 1.0.0»."""
    w = _WORDS.get(lang, _WORDS["en"])
    tag = command.__struct_config__.tag
    parts = [_VERBS.get(lang, _VERBS["en"])[tag]]  # type: ignore[index]
    match command:
        case CreateOrgan() | UpdateOrgan():
            parts.append(_said(command.organ))
            if command.version:
                parts.append(f"{w['version']} {command.version}")
            if command.options:
                parts.append(f"{w['with']} " + ", ".join(_said(o) for o in command.options))
        case BuildPipeline():
            if command.name is not None:
                parts.append(f"{w['named']} {_said(command.name)}")
            parts.append(f"{w['steps']}: " + " → ".join(_said(s) for s in command.steps))
        case CreateCell():
            parts.append(_said(command.cell))
            if command.version:
                parts.append(f"{w['version']} {command.version}")
        case Approve() | Disable() | Rollback() | CancelBuild() | Rebuild():
            parts.append(_said(command.target.ref))
        case Status() | Train() | Run():
            if command.target is not None:
                parts.append(_said(command.target.ref))
        case ListItems():
            parts.append(w[command.what])
        case Review():
            parts.append(f"{command.iteration}: {w[command.verdict]}")
    return " ".join(p for p in parts if p).replace(" :", ":")


def _said(item: Item) -> str:
    return item.value.replace("_", " ")
