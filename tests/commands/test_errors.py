"""Errors people can use: position, expected words in their language, suggestions — never Lark internals."""

from __future__ import annotations

import json

import pytest

from neira.commands import Known, Lexicon, ParseFailure, parse, resolve
from tests.commands.conftest import load_examples

F = ParseFailure

CASES = [
    ("создай голосовй орган v1", F(code="unrecognized_word", lang="ru", position=7, word="голосовй",
                                   suggestions=("голосовой",), corrected="создай голосовой орган v1")),
    ("creat voice organ v1", F(code="unrecognized_word", lang="en", position=0, word="creat",
                               suggestions=("create",), corrected="create voice organ v1")),
    ("отключи клетку адаптр", F(code="unrecognized_word", lang="ru", position=15, word="адаптр",
                                suggestions=("адаптер",), corrected="отключи клетку адаптер")),
    ("собери speak-pipeline normalize→phonemes→adaptr",
     F(code="unrecognized_word", lang="ru", position=41, word="adaptr", suggestions=("adapter",),
       corrected="собери speak-pipeline normalize→phonemes→adapter")),
    ("create voice organ (grayscale", F(code="incomplete", lang="en", position=29, expected=(")",))),
    ("update vision to", F(code="incomplete", lang="en", position=16, expected=("version", "v1"))),
    ("обнови", F(code="incomplete", lang="ru", position=6,
                 expected=("орган", "эхо", "реверс", "зрение", "organ.voice.v1"))),
]


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    return Lexicon.from_templates(*load_examples())


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0] for c in CASES])
def test_failure_whole_value(text, expected, lex):
    assert parse(text, lex) == expected


@pytest.mark.parametrize("text,lang", [("свари кофе", "ru"), ("make me a sandwich", "en"), ("tell me a joke", "en"),
                                       ("какая сегодня погода", "ru"), ("голосовой орган", "ru")])
def test_unknown_requests_list_verbs_in_the_users_language(text, lang, lex):
    failure = parse(text, lex)
    assert isinstance(failure, ParseFailure) and failure.code == "unknown_command" and failure.lang == lang
    assert failure.expected[:3] == (("создай", "обнови", "одобри") if lang == "ru" else ("create", "update", "approve"))


def test_typos_are_never_executed(lex):
    for text in ["создай голосовой оргна v1", "crate voice organ v1", "собери speak-pipeline normalize→phonemez"]:
        assert isinstance(parse(text, lex), ParseFailure), text


def test_abstains_when_two_readings_are_equally_close():
    cells, organs = load_examples()
    cells = cells + [{"id": "analysis.adaptor.v1", "version": "1.0.0", "analysis_type": "adaptor", "links": [],
                      "metadata": {"schema": "v1", "aliases": {"ru": [], "en": ["adaptor"]}}}]
    lex = Lexicon.from_templates(cells, organs)
    failure = parse("собери speak-pipeline normalize → adaptir", lex)
    assert failure == F(code="ambiguous", lang="ru", position=34, word="adaptir", candidates=("adapter", "adaptor"))


def test_no_terminal_names_ever(lex):
    texts = ["", "(", "→ →", "создай (", "approve approve", "list list list", "v2", "organ-1", "обнови зрение до"]
    for text in texts:
        failure = parse(text, lex)
        assert isinstance(failure, ParseFailure)
        blob = json.dumps([failure.expected, failure.suggestions, failure.candidates])
        for leak in ("__ANON", "ALIAS", "WORD", "$END", "_ARROW", "MAKE", "VWORD"):
            assert leak not in blob, (text, blob)


def test_ambiguous_alias_asks_with_candidates(lex):
    cells, organs = load_examples()
    known = Known(cells, organs, lex)
    failure = resolve(parse("отключи клетку адаптер", lex), known)
    assert failure == F(code="ambiguous", lang="ru", word="адаптер",
                        candidates=("analysis.speak_adapter.v1", "analysis.vision_adapter.v1"))


def test_new_organ_kind_needs_only_a_json_file():
    cells, organs = load_examples()
    hearing = {"id": "organ.hearing.v1", "version": "1.0.0", "roles": ["hearing"], "cells": ["analysis.text_normalize.v1"],
               "pathways": [{"name": "main", "cells": ["analysis.text_normalize.v1"]}],
               "policies": {"stage": "draft", "hitl": True},
               "metadata": {"schema": "v1", "aliases": {"ru": ["слух", "слуховой"], "en": ["hearing"]}}}
    lex = Lexicon.from_templates(cells, organs + [hearing])
    known = Known(cells, organs + [hearing], lex)
    for text in ("создай орган слуха", "создай слуховой орган v1", "create hearing organ"):
        resolved = resolve(parse(text, lex), known)
        assert resolved.spec["template"]["id"] == "organ.hearing.v1", text


def test_odd_alias_shapes_do_not_break_the_lexicon():
    cells, organs = load_examples()
    odd = [{"id": "analysis.odd.v1", "version": "1.0.0", "analysis_type": "odd", "links": [],
            "metadata": {"schema": "v1", "aliases": {"ru": "странный", "en": [1, None, "odd"]}}},
           {"id": "analysis.bare.v1", "version": "1.0.0", "analysis_type": "bare", "links": [], "metadata": {"aliases": []}},
           "not a template"]
    lex = Lexicon.from_templates(cells + odd, organs)
    assert lex.aliases["странный"].cells == ("analysis.odd.v1",) and lex.aliases["odd"].cells == ("analysis.odd.v1",)


def test_a_lexicon_keeps_its_catalogs_words_to_itself():
    """The words of grammar/lexicon.json are built once and shared; each catalog's aliases stay in its own
    lexicon: one built after a catalog with «слух» neither knows the word nor guesses it for a typo."""
    cells, organs = load_examples()
    hearing = {"id": "organ.hearing.v1", "version": "1.0.0", "roles": ["hearing"], "cells": ["analysis.text_normalize.v1"],
               "pathways": [{"name": "main", "cells": ["analysis.text_normalize.v1"]}],
               "policies": {"stage": "draft", "hitl": True},
               "metadata": {"schema": "v1", "aliases": {"ru": ["слуховой"], "en": ["hearing"]}}}
    with_hearing = Lexicon.from_templates(cells, organs + [hearing])
    without = Lexicon.from_templates(cells, organs)
    assert with_hearing.guess("hearinq").suggestion == "hearing" and ("hearing",) in with_hearing.phrases
    assert without.guess("hearinq") == (None, ()) and ("hearing",) not in without.phrases
    assert "hearing" not in without.aliases
    typo = parse("create hearinq organ", without)
    assert isinstance(typo, ParseFailure) and "hearing" not in (typo.suggestions or ())
    # and the shared words still win over an alias that spells one of them, in every lexicon
    assert with_hearing.guess("creaet").suggestion == without.guess("creaet").suggestion == "create"
