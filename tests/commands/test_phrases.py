"""The phrase table: every row of public.tsv and ours, RU and EN, every intent and variation category."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest

from neira.commands import ParseFailure, parse, resolve
from tests.commands.phrase_table import Row, check, load_rows

ROWS = load_rows()
PUBLIC = Path(__file__).with_name("public.tsv")  # our copy of the public table: a fresh clone has it
SHARED = Path(__file__).resolve().parents[3] / "shared" / "commands" / "public.tsv"  # ../shared beside the repo, if any
INTENTS = {"create_organ", "update_organ", "build_pipeline", "create_cell", "approve", "disable", "rollback",
           "status", "list", "cancel_build", "rebuild", "apply", "run", "train", "review", "help"}


def understand(text: str, lexicon, known) -> dict:
    """parse → resolve, shaped like the HTTP reply (without policy and plan)."""
    command = parse(text, lexicon)
    result = command if isinstance(command, ParseFailure) else resolve(command, known)
    if isinstance(result, ParseFailure):
        return {"understood": False, "lang": result.lang, "error": msgspec.to_builtins(result)}
    return {"understood": True, "lang": result.lang, "intent": result.intent, "spec": result.spec,
            "target": result.target, "update_from": result.base, "new_cells": result.new_cells, "input": result.input,
            "iteration": result.iteration, "verdict": result.verdict}


@pytest.mark.parametrize("row", ROWS, ids=[f"L{r.line}" for r in ROWS])
def test_phrase(row: Row, lexicon, known):
    check(row, understand(row.text, lexicon, known))


def test_table_size_and_coverage():
    understood = [r for r in ROWS if r.expect.get("understood", True)]
    assert len(ROWS) >= 150
    assert {r.intent for r in understood} == INTENTS
    by_lang = Counter("ru" if any("\u0400" <= ch <= "\u04ff" for ch in r.text) else "en" for r in understood)
    assert by_lang["ru"] >= 50 and by_lang["en"] >= 50


def test_every_public_row_is_in_the_table():
    public = [line for line in PUBLIC.read_text(encoding="utf-8").splitlines()[1:] if line]
    ours = {(r.text, r.intent, msgspec.json.encode(r.expect)) for r in ROWS}
    for line in public:
        text, intent, expect = line.split("\t")
        assert (text, intent, msgspec.json.encode(msgspec.json.decode(expect))) in ours, line


def test_our_copy_of_the_public_table_is_current():
    """The copy kept here is the shared table, byte for byte, wherever ../shared is beside the checkout."""
    if not SHARED.exists():
        pytest.skip("../shared is not beside this checkout; the copy in tests/commands is the reference")
    assert PUBLIC.read_bytes() == SHARED.read_bytes(), f"copy {SHARED} over {PUBLIC}"


def test_seed_phrases_exactly(lexicon, known):
    voice = understand("создай голосовой орган v1", lexicon, known)
    assert (voice["intent"], voice["spec"]["kind"], voice["spec"]["template"]["id"]) == (
        "create_organ", "organ_template", "organ.voice.v1")
    vision = understand("обнови зрение до v2 (grayscale)", lexicon, known)
    assert vision["intent"] == "update_organ" and vision["update_from"] == "organ.vision.v1"
    assert vision["spec"]["template"]["id"] == "organ.vision.v2"
    assert "analysis.grayscale.v1" in vision["spec"]["template"]["cells"]
    speak = understand("собери speak-pipeline normalize→phonemes→adapter", lexicon, known)
    assert speak["intent"] == "build_pipeline"
    assert [p["cells"] for p in speak["spec"]["template"]["pathways"]] == [
        ["analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]]
