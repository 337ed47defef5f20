"""Parse tree → Command: one Transformer method per grammar rule or alias.

The transformer runs inline in the LALR parser (no tree is built). It never consults the catalog: catalog
nouns stay alias lemmas and are mapped to ids by the resolver.
"""

from __future__ import annotations

import re

from lark import Token, Transformer

from neira.commands.model import (
    Apply, Approve, BuildPipeline, CancelBuild, CreateCell, CreateOrgan, Disable, Help, Item, ListItems, Rebuild,
    Hold, Review, Rollback, Run, Status, Target, Train, UpdateOrgan, Why,
)

_LIFECYCLE = {"APPROVE": Approve, "DISABLE": Disable, "ROLLBACK": Rollback, "CANCEL_BUILD": CancelBuild,
              "REBUILD": Rebuild, "HOLD": Hold}
_ITEM_KIND = {"ALIAS": "alias", "WORD": "word", "ID": "id", "ORGAN_ID": "id"}
_RECORD_ID = re.compile(r"(?:organ|cell|record|plan)[-_]\w+")
_LIST_WHAT = {"ORGAN": "organs", "CELL": "cells", "PIPELINE": "pipelines"}


class Rejected(Exception):
    """A well-formed phrase that still names nothing we can act on («make sandwich»); `word` is the culprit."""

    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def semver(raw: str) -> str:
    """v2 → 2.0.0, 2.1 → 2.1.0, 2.0.0 → 2.0.0."""
    parts = raw.lstrip("v").split(".")
    parts += ["0"] * (3 - len(parts))
    return ".".join(str(int(p)) for p in parts)


def _item(tok: Token) -> Item:
    value = tok.value[1:] if tok.type == "ALIAS" else tok.value
    return Item(kind=_ITEM_KIND[tok.type], value=value)  # type: ignore[arg-type]


def _pick(children: list, kind: type) -> list:
    return [c for c in children if isinstance(c, kind) and not isinstance(c, Token)]


def _first(children: list, kind: type):
    found = _pick(children, kind)
    return found[0] if found else None


class ToCommand(Transformer):
    """Builds Command structs; `lang` is filled in by parse() afterwards."""

    # ---- small pieces
    def item(self, children: list) -> Item:
        return _item(children[0])

    def items(self, children: list) -> tuple[Item, ...]:
        return tuple(children)

    def options(self, children: list) -> tuple[Item, ...]:
        return children[-1]

    def version(self, children: list) -> str:
        last = children[-1]
        return last.value[1:] if last.type == "RELVERSION" else semver(last.value)

    def organ_phrase(self, children: list) -> Item:
        return _item(next(t for t in children if t.type in _ITEM_KIND))

    organ_ref = organ_phrase

    def cell_phrase(self, children: list) -> tuple[str | None, Item]:
        kinds = [t.value[1:] for t in children if isinstance(t, Token) and t.type == "KIND"]
        return (kinds[0] if kinds else None, _first(children, Item))

    def target(self, children: list) -> Target:
        nouns = [t.type for t in children if t.type in ("CELL", "ORGAN")]
        ref = next(t for t in children if t.type in _ITEM_KIND)
        kind = None
        if nouns:
            kind = "cell" if nouns[0] == "CELL" else "organ"
        elif ref.type == "ORGAN_ID":
            kind = "organ"
        return Target(kind=kind, ref=_item(ref))

    # ---- commands
    def create_organ(self, children: list) -> CreateOrgan:
        return CreateOrgan(organ=_first(children, Item), version=_first(children, str),
                           options=_first(children, tuple) or ())

    def create_cell(self, children: list) -> CreateCell:
        cell_kind, cell = _first(children, tuple)
        return CreateCell(cell=cell, cell_kind=cell_kind, version=_first(children, str))

    def create_unmarked(self, children: list) -> CreateOrgan | CreateCell:
        return self._unmarked(_first(children, Item), _first(children, str), _first(children, tuple) or ())

    def _unmarked(self, item: Item, version: str | None, options: tuple[Item, ...]) -> CreateOrgan | CreateCell:
        if item.kind == "word":
            raise Rejected(item.value)
        if item.kind == "id" and _RECORD_ID.fullmatch(item.value):
            raise Rejected(item.value)  # «собери organ-1»: a record or an organ, never the name of a new cell
        if item.kind == "id" and not item.value.startswith("organ."):
            return CreateCell(cell=item, version=version)
        # an alias may name an organ, a cell or both; CreateOrgan with `organ` set lets the resolver decide
        return CreateOrgan(organ=item, version=version, options=options)

    def make_items(self, children: list) -> CreateOrgan | CreateCell | BuildPipeline:
        items = children[-1]
        if len(items) == 1:
            return self._unmarked(items[0], None, ())
        return BuildPipeline(steps=items)

    def update_add(self, children: list) -> UpdateOrgan:
        return UpdateOrgan(organ=_first(children, Item), version=_first(children, str), options=children[1])

    def build_named(self, children: list) -> BuildPipeline:
        return BuildPipeline(name=_first(children, Item), steps=_first(children, tuple))

    def build_unnamed(self, children: list) -> BuildPipeline:
        return BuildPipeline(steps=_first(children, tuple))

    def update_organ(self, children: list) -> UpdateOrgan:
        return UpdateOrgan(organ=_first(children, Item), version=_first(children, str),
                           options=_first(children, tuple) or ())

    def lifecycle_verb(self, children: list) -> str:
        return children[0].type

    def lifecycle(self, children: list):
        return _LIFECYCLE[children[0]](target=children[1])

    def why(self, children: list) -> Why:
        return Why(target=_first(children, Target))

    def status(self, children: list) -> Status:
        return Status(target=_first(children, Target))

    def list_items(self, children: list) -> ListItems:
        nouns = [t.type for t in children if t.type in _LIST_WHAT]
        return ListItems(what=_LIST_WHAT[nouns[0]] if nouns else "organs")  # type: ignore[arg-type]

    def apply(self, children: list) -> Apply:
        ids = [t.value for t in children if t.type == "ID"]
        return Apply(plan_id=ids[0] if ids else None)

    def run(self, children: list) -> Run:
        return Run(target=_first(children, Target))

    def say(self, children: list) -> Run:
        return Run(target=_first(children, Target), say=True)

    def train(self, children: list) -> Train:
        return Train(target=_first(children, Target))

    def accept_iteration(self, children: list) -> Review:
        return self._review(children, "accept")

    def reject_iteration(self, children: list) -> Review:
        return self._review(children, "reject")

    def _review(self, children: list, verdict: str) -> Review:
        number = next(t for t in children if isinstance(t, Token) and t.type == "NUMBER")
        if not number.value.isdigit():
            raise Rejected(number.value)  # «итерация 2.1» names no iteration
        return Review(iteration=int(number.value), verdict=verdict, target=_first(children, Target))  # type: ignore[arg-type]

    def help(self, children: list) -> Help:
        return Help()
