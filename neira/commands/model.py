"""Typed results of parsing: one Command variant per intent (a msgspec tagged union) and ParseFailure.

Commands hold what was *said*, language-independently: catalog nouns as alias lemmas («голосовой» and
«голосового» are the same lemma), versions as SemVer strings, pipeline steps in order. Mapping lemmas to
catalog ids is the resolver's job, so parse() needs no catalog state beyond the lexicon.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Lang = Literal["ru", "en"]
ItemKind = Literal["alias", "id", "word"]
TargetKind = Literal["cell", "organ"]
CellKind = Literal["analysis", "action", "memory"]


class CommandBase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True, tag_field="intent"):
    """Wire behaviour shared by every command: keyword-only, strict, immutable, tagged by `intent`.

    `lang` is the language the command was said in; replies use it. `reading` is None when the grammar read the
    phrase; the frame tier (frames.py) sets it to the phrase said back («создать орган голосовой, версия 1.0.0»).
    """

    lang: Lang = "en"
    reading: str | None = None  # set when the frame tier read the phrase: how it was understood, said back


class Item(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A noun as said: a catalog alias lemma, a literal id (organ-1, analysis.summarize.v1), or an unknown word."""

    kind: ItemKind
    value: str


class Target(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """What a lifecycle command is about; `kind` is None when the phrase did not say cell or organ."""

    kind: TargetKind | None = None
    ref: Item


class CreateOrgan(CommandBase, kw_only=True, tag="create_organ"):
    """«создай голосовой орган v1»: an organ from the catalog, optionally at a version, with extra cells."""

    organ: Item
    version: str | None = None
    options: tuple[Item, ...] = ()


class UpdateOrgan(CommandBase, kw_only=True, tag="update_organ"):
    """«обнови зрение до v2 (grayscale)»: a new version of an organ, optionally with cells inserted."""

    organ: Item
    version: str | None = None
    options: tuple[Item, ...] = ()


class BuildPipeline(CommandBase, kw_only=True, tag="build_pipeline"):
    """«собери speak-pipeline normalize→phonemes→adapter»: an organ with one ordered pathway."""

    name: Item | None = None
    steps: tuple[Item, ...]


class CreateCell(CommandBase, kw_only=True, tag="create_cell"):
    """«создай клетку анализа summarize v1»: a factory spec for one cell."""

    cell: Item
    cell_kind: CellKind | None = None
    version: str | None = None


class Approve(CommandBase, kw_only=True, tag="approve"):
    """Move a cell record or an organ one lifecycle step forward."""

    target: Target


class Disable(CommandBase, kw_only=True, tag="disable"):
    """Disable a cell record or an organ."""

    target: Target


class Rollback(CommandBase, kw_only=True, tag="rollback"):
    """Roll a cell back to its last stable version."""

    target: Target


class Status(CommandBase, kw_only=True, tag="status"):
    """Status of one cell or organ, or of the whole system when no target is named."""

    target: Target | None = None


class ListItems(CommandBase, kw_only=True, tag="list"):
    """List organs (default), cells or pipelines."""

    what: Literal["organs", "cells", "pipelines"] = "organs"


class CancelBuild(CommandBase, kw_only=True, tag="cancel_build"):
    """Stop an organ build that is in flight."""

    target: Target


class Rebuild(CommandBase, kw_only=True, tag="rebuild"):
    """Build an organ again from its template."""

    target: Target


class Hold(CommandBase, kw_only=True, tag="hold"):
    """«придержи organ-1»: stop an organ's progression until it is approved."""

    target: Target


class Why(CommandBase, kw_only=True, tag="why"):
    """«почему organ-1 ждёт?»: what an organ's (or a record's) promotion waits for, with the evidence."""

    target: Target


class Apply(CommandBase, kw_only=True, tag="apply"):
    """Carry out a plan: the named one, or the session's last one."""

    plan_id: str | None = None


class Run(CommandBase, kw_only=True, tag="run"):
    """«запусти голосовой орган: привет»: run an organ (or a cell) on `input`, the user's own text; `say`
    verbs («скажи "привет"») run the organ that speaks when none is named."""

    target: Target | None = None
    say: bool = False
    input: str | None = None


class Train(CommandBase, kw_only=True, tag="train"):
    """«обучи клетку summarize»: one training iteration over the cell's samples, at once."""

    target: Target | None = None


class Review(CommandBase, kw_only=True, tag="review"):
    """«прими итерацию 3»: a human's verdict on a training iteration (of the named cell, else the session's
    last trained record)."""

    iteration: int
    verdict: Literal["accept", "reject"]
    target: Target | None = None


class Help(CommandBase, kw_only=True, tag="help"):
    """Show what the Command Cell understands."""


Command = (
    CreateOrgan | UpdateOrgan | BuildPipeline | CreateCell | Approve | Disable | Rollback | Status
    | ListItems | CancelBuild | Rebuild | Hold | Why | Apply | Run | Train | Review | Help
)

ErrorCode = Literal[
    "unknown_command", "unrecognized_word", "ambiguous", "incomplete", "unexpected_word", "empty", "not_found",
    "version_exists",
]


class ParseFailure(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A phrase that was not understood: a normal result, never an exception.

    `position` is a character offset in the text the user typed; `expected` lists words in the user's
    language that would have fit there; `suggestions` holds at most one close known word per unknown word
    (none when two readings are equally close: then `candidates` lists them and the code is `ambiguous`).
    """

    code: ErrorCode
    lang: Lang
    position: int | None = None
    word: str | None = None
    expected: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    corrected: str | None = None
