"""Hypothesis: any text yields a well-formed result; sentences rendered from Commands parse back to them."""

from __future__ import annotations

import re

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neira.commands import Command, Known, ParseFailure, parse, resolve
from neira.commands.model import (
    Apply, Approve, BuildPipeline, CancelBuild, CreateCell, CreateOrgan, Disable, Help, Item, ListItems, Rebuild,
    Rollback, Status, Target, UpdateOrgan,
)
from tests.commands.conftest import load_examples
from tests.commands.render import SAFE_NAMES, SAFE_WORDS, render

from neira.commands import Lexicon

CELLS, ORGANS = load_examples()
LEX = Lexicon.from_templates(CELLS, ORGANS)
KNOWN = Known(CELLS, ORGANS, LEX)
CODES = {"unknown_command", "unrecognized_word", "ambiguous", "incomplete", "unexpected_word", "empty", "not_found",
         "version_exists"}
TERMINAL_RE = re.compile(r"__ANON|^[A-Z_]{3,}$|^\$END$")
COMMAND_DECODER = msgspec.json.Decoder(Command)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _alias_lemmas(kind: str) -> list[str]:
    out = []
    for lemma, alias in sorted(LEX.aliases.items()):
        if not getattr(alias, kind):
            continue
        words = next(iter(alias.words.values()))
        entry = LEX.phrases.get(words)
        if entry is not None and entry.canon == "@" + lemma:
            out.append(lemma)
    return out


ORGAN_ALIASES = _alias_lemmas("organs")
CELL_ALIASES = [a for a in _alias_lemmas("cells") if not LEX.aliases[a].organs]


def assert_well_formed(text: str, result) -> None:
    if isinstance(result, ParseFailure):
        assert result.code in CODES
        assert result.lang in ("ru", "en")
        assert result.position is None or 0 <= result.position <= len(text)
        for word in result.expected + result.suggestions + result.candidates:
            assert isinstance(word, str) and word and not TERMINAL_RE.search(word), word
        return
    assert COMMAND_DECODER.decode(msgspec.json.encode(result)) == result
    resolved = resolve(result, KNOWN)
    assert isinstance(resolved, ParseFailure) or resolved.intent


@SETTINGS
@given(st.text(max_size=10_000))
def test_any_unicode_never_raises(text):
    assert_well_formed(text, parse(text, LEX))


WORD_SOUP = st.lists(
    st.one_of(st.sampled_from(sorted({w for words in LEX.phrases for w in words})),
              st.sampled_from(["→", "->", ">", ",", ":", "(", ")", "v2", "2.0.0", "organ-1", "analysis.summarize.v1",
                               "ё", "сoздай", "?!", "—", "  "]),
              st.text(max_size=8)),
    max_size=25,
).map(" ".join)


@SETTINGS
@given(WORD_SOUP)
def test_word_soup_never_raises(text):
    assert_well_formed(text, parse(text, LEX))


def test_ten_kilobytes():
    text = ("создай голосовой орган v1 → (grayscale) ё " * 300)[:10_000]
    assert_well_formed(text, parse(text, LEX))


langs = st.sampled_from(["ru", "en"])
versions = st.one_of(st.none(), st.builds(lambda a, b: f"{a}.{b}.0", st.integers(1, 9), st.sampled_from([0, 0, 1, 3])))
organ_items = st.sampled_from(ORGAN_ALIASES).map(lambda v: Item(kind="alias", value=v))
cell_items = st.sampled_from(CELL_ALIASES).map(lambda v: Item(kind="alias", value=v))
step_items = st.one_of(cell_items, st.sampled_from(SAFE_WORDS).map(lambda v: Item(kind="word", value=v)),
                       st.sampled_from(["analysis.summarize.v1", "text_normalize"]).map(lambda v: Item(kind="id", value=v)))
ids = st.sampled_from(["organ-1", "organ-42", "cell-7", "analysis.summarize.v1", "organ.voice.v1"])
targets = st.builds(lambda k, i: Target(kind=k if k else ("organ" if i.startswith("organ.") else None),
                                        ref=Item(kind="id", value=i)),
                    st.sampled_from([None, "cell", "organ"]), ids)
options = st.lists(cell_items, max_size=3, unique=True).map(tuple)

commands = st.one_of(
    st.builds(CreateOrgan, lang=langs, organ=organ_items, version=versions, options=options),
    st.builds(UpdateOrgan, lang=langs, organ=organ_items, version=versions, options=options),
    st.builds(BuildPipeline, lang=langs,
              name=st.one_of(st.none(), st.sampled_from(SAFE_NAMES).map(lambda v: Item(kind="word", value=v))),
              steps=st.lists(step_items, min_size=2, max_size=5).map(tuple)),
    st.builds(CreateCell, lang=langs, cell=cell_items, cell_kind=st.sampled_from([None, "analysis", "action", "memory"]),
              version=versions),
    *(st.builds(cls, lang=langs, target=targets) for cls in (Approve, Disable, Rollback, CancelBuild, Rebuild)),
    st.builds(Status, lang=langs, target=st.one_of(st.none(), targets)),
    st.builds(ListItems, lang=langs, what=st.sampled_from(["organs", "cells", "pipelines"])),
    st.builds(Apply, lang=langs, plan_id=st.sampled_from([None, "plan-1a2b"])),
    st.builds(Help, lang=langs),
)


@SETTINGS
@given(st.data())
def test_rendered_sentences_parse_back(data):
    command = data.draw(commands)
    text = render(data.draw, command, LEX)
    assert parse(text, LEX) == command, text


def test_safe_words_are_not_typos():
    for word in SAFE_WORDS + SAFE_NAMES:
        assert (word,) not in LEX.phrases and LEX.guess(word) == (None, ()), word
