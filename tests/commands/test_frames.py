"""The frame tier: readings in any word order, said back; ambiguity asks; typos and noun-like names are refused."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neira.commands import ParseFailure, parse, resolve
from neira.commands.model import CreateOrgan, Item, UpdateOrgan
from tests.commands.conftest import load_examples

from neira.commands import Known, Lexicon

CELLS, ORGANS = load_examples()
LEX = Lexicon.from_templates(CELLS, ORGANS)
KNOWN = Known(CELLS, ORGANS, LEX)


def test_a_reading_is_the_grammars_command_said_back():
    got = parse("голосовой орган v1 — создай", LEX)
    assert got == CreateOrgan(lang="ru", organ=Item(kind="alias", value="голосовой"), version="1.0.0",
                              reading="создать орган голосовой версия 1.0.0")
    assert parse("создай голосовой орган v1", LEX).reading is None  # the grammar read it


@pytest.mark.parametrize("frame, grammar", [
    ("обнови зрение до второй версии и добавь туда оттенки серого", "обнови зрение до v2 (grayscale)"),
    ("create a voice organ v2 and also put summarize in it", "create voice organ v2 (summarize)"),
    ("speak-pipeline: normalize → phonemes → adapter, собери", "собери speak-pipeline normalize→phonemes→adapter"),
    ("turn analysis.summarize.v1 off", "disable analysis.summarize.v1"),
    ("build a flow named speak-pipeline: normalize, phonemes, adapter", "build speak-pipeline normalize -> phonemes -> adapter"),
])
def test_same_spec_as_the_grammar(frame, grammar):
    a, b = parse(frame, LEX), parse(grammar, LEX)
    assert a.reading and b.reading is None
    ra, rb = resolve(a, KNOWN), resolve(b, KNOWN)
    assert (ra.intent, ra.spec, ra.target, ra.new_cells) == (rb.intent, rb.spec, rb.target, rb.new_cells)


@pytest.mark.parametrize("text", [
    "одобри organ-1 и отключи organ-2",
    "approve organ-1 and disable organ-2",
    "create voice organ v1 and vision organ v1",
])
def test_two_readings_close_together_are_ambiguous_and_both_said_back(text):
    got = parse(text, LEX)
    assert isinstance(got, ParseFailure) and got.code in ("ambiguous", "unexpected_word", "unknown_command")
    if got.code == "ambiguous":
        assert len(got.candidates) == 2 and all(got.candidates)


@pytest.mark.parametrize("text, candidates", [
    ("одобри или отключи organ-1", ("одобрить organ-1", "отключить organ-1")),
    ("approve or disable organ-1", ("approve organ-1", "disable organ-1")),
])
def test_ambiguous_readings_name_both(text, candidates):
    got = parse(text, LEX)
    assert isinstance(got, ParseFailure) and got.code == "ambiguous"
    assert sorted(got.candidates) == sorted(candidates)


@pytest.mark.parametrize("text, suggestion", [
    ("голосовй орган v1 — создай", "голосовой"),
    ("vision organ v1, creat it", "create"),
    ("обнови зренее до v2 и добавь оттенки серого", "зрение"),
])
def test_a_typo_is_suggested_never_read_around(text, suggestion):
    got = parse(text, LEX)
    assert isinstance(got, ParseFailure) and got.code == "unrecognized_word" and got.suggestions == (suggestion,)


@pytest.mark.parametrize("text", [
    "create a vision-organ cell", "make a cell called vision-organ", "создай клетку реверс-орган",
    "создай клетку голосовой орган", "create cell voice organ", "build organ-1", "собери organ-2",
    "build a pipeline: organ-1, organ-2", "make an organ organ", "создай органы", "create an organ",
])
def test_a_noun_like_word_never_creates_a_cell(text):
    got = parse(text, LEX)
    result = got if isinstance(got, ParseFailure) else resolve(got, KNOWN)
    if isinstance(result, ParseFailure):
        return
    assert result.intent != "create_cell"
    assert not any(c["id"].split(".")[1] in ("organ_1", "organ_2", "vision_organ", "revers_organ")
                   for c in result.new_cells)


def test_the_compound_refusal_suggests_its_parts():
    got = parse("make a cell called vision-organ", LEX)
    assert isinstance(got, ParseFailure) and got.suggestions == ("vision organ",)


@pytest.mark.parametrize("text", ["обнови зрение до", "create voice organ (grayscale", "update vision to"])
def test_an_unfinished_phrase_is_not_read_around(text):
    got = parse(text, LEX)
    assert isinstance(got, ParseFailure) and got.code == "incomplete"


# Russian word order is free: a frame reading keeps its meaning when the words are shuffled
RU_PHRASES = [
    ["создай", "голосовой", "орган", "v1"],
    ["одобри", "organ-1"],
    ["обнови", "зрение", "до v2"],
    ["отключи", "клетку", "analysis.summarize.v1"],
    ["статус", "organ-1"],
    ["обнови", "зрение", "до v2", "с оттенками серого"],
    ["пересобери", "organ-2"],
    ["откати", "analysis.summarize.v1"],
]


def _meaning(text: str):
    got = parse(text, LEX)
    return got if isinstance(got, ParseFailure) else msgspec.structs.replace(got, reading=None)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(RU_PHRASES).flatmap(lambda ws: st.tuples(st.just(ws), st.permutations(ws))))
def test_shuffled_russian_word_order_keeps_the_meaning(pair):
    words, shuffled = pair
    assert _meaning(" ".join(shuffled)) == _meaning(" ".join(words)), shuffled


def test_update_reading_takes_cells_in_any_order():
    got = _meaning("оттенки серого добавь в зрение, v2")
    assert got == UpdateOrgan(lang="ru", organ=Item(kind="alias", value="зрение"), version="2.0.0",
                              options=(Item(kind="alias", value="оттенки_серого"),))
