"""Word forms: the shipped Russian table is what the generator makes, and the lexicon knows the forms people type."""

from __future__ import annotations

import pytest

from neira.commands import parse, resolve
from neira.commands.forms import TABLE, phrase_forms, render_table
from neira.commands.morph import english_forms
from neira.commands.tokens import stream


def test_shipped_table_is_what_the_generator_makes():
    assert TABLE.read_text(encoding="utf-8") == render_table(), "run: .venv/bin/python grammar/make_forms.py"


@pytest.mark.parametrize("phrase, form", [
    ("создать", "создадим"), ("создать", "создайте"), ("создавать", "создавай"), ("собрать", "соберем"),
    ("вернуть", "верну"), ("показать", "покажите"), ("третий", "третьей"), ("третий", "третью"), ("один", "одну"),
    ("оттенки серого", "оттенках серого"), ("детектор границ", "детектором границ"), ("речевой адаптер", "речевому адаптеру"),
    ("зрение", "зрением"), ("голосовой", "голосовую"),
])
def test_generator_gives_the_form(phrase, form):
    assert form in phrase_forms(phrase)


def test_dependents_stay_as_written():
    assert "адаптеров зрений" not in phrase_forms("адаптер зрения")
    assert all(f.endswith(" серого") for f in phrase_forms("оттенки серого"))


def test_english_suffix_rule_on_known_lemmas():
    assert english_forms("create") == {"create", "creates", "created", "creating"}
    assert english_forms("stop") >= {"stopped", "stopping"}
    assert english_forms("roll back") >= {"rolled back", "rolling back"}


@pytest.mark.parametrize("text, canon", [
    ("создадим голосовой орган v1", "!make@голосовой#organ v1"),
    ("давайте соберём голосовой орган v1", "!make@голосовой#organ v1"),
    ("создавай орган речевого адаптера", "!make#organ@речевой_адаптер"),
    ("обновляю зрение", "!update@зрение"),
    ("created the voice organ", "!make@voice#organ"),
    ("откатываем analysis.summarize.v1", "!rollback analysis.summarize.v1"),
])
def test_verb_forms_in_both_aspects(text, canon, lexicon):
    assert stream(text, lexicon).canon == canon


def test_word_by_word_alias_forms(lexicon, known):
    command = parse("обнови зрение до v2 (в оттенках серого)", lexicon)
    resolved = resolve(command, known)
    assert "analysis.grayscale.v1" in resolved.spec["template"]["cells"]


@pytest.mark.parametrize("text, organ, said", [
    ("запускай голосовой орган: привет", "голосовой", "привет"),
    ("прогоним реверс на «тест»", "реверс", "тест"),
])
def test_run_verbs_in_their_forms_keep_the_input(text, organ, said, lexicon):
    command = parse(text, lexicon)
    assert (command.target.ref.value, command.input) == (organ, said)
