"""Russian word forms from a real morphological dictionary (pymorphy3 + OpenCorpora), generated ahead of time.

The hot path never analyses a word: `grammar/forms.ru.json` maps each Russian phrase the lexicon knows (verb
lemmas of every intent in both aspects, nouns, number words, the examples' catalog aliases) to its forms, and
the lexicon adds every form as one more dictionary key. `python -m neira.commands.forms` (or
`grammar/make_forms.py`) writes the table; a test checks that the shipped table is what the generator makes.
An alias the table lacks (a template registered at run time) is inflected when the lexicon is built, with the
same generator; pymorphy3 is imported only then.

Phrases are inflected word by word with agreement: the head noun and the adjectives before it take each case
and number together, the words after the head (its dependents) stay as written («оттенки серого» →
«оттенках серого», «детектор границ» → «детектором границ»). Verbs give the forms people type a command in:
the infinitive, the imperative (ты, вы, «давай создадим»), the 1st person («создам», «создадим»,
«подтверждаю») and the past («создал»).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

TABLE = Path(__file__).resolve().parents[2] / "grammar" / "forms.ru.json"
_CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
_NUMBERS = ("sing", "plur")
_DECLINED = frozenset({"NOUN", "ADJF", "NUMR", "PRTF"})


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    import pymorphy3  # build time only: the table is what the hot path reads

    return pymorphy3.MorphAnalyzer()


def _parses(word: str) -> list[Any]:
    """The analyses of a word that have it as their dictionary form (else the most likely one)."""
    found = _analyzer().parse(word)
    own = [p for p in found if _fold(p.normal_form) == word]
    return own or found[:1]


def verb_forms(lemma: str) -> list[str]:
    """Infinitive, imperative, 1st person and past forms of a verb given by its infinitive."""
    out = {lemma}
    for p in _parses(lemma):
        if p.tag.POS not in ("INFN", "VERB"):
            continue
        for form in p.lexeme:
            tag = form.tag
            if tag.POS not in ("INFN", "VERB"):
                continue  # participles and gerunds are not how a command is said
            if tag.POS == "INFN" or tag.mood == "impr" or tag.person == "1per" or tag.tense == "past":
                out.add(form.word)
    return sorted({_fold(w) for w in out})


def word_forms(word: str) -> list[str]:
    """Every case and number form of a declinable word (noun, adjective, numeral); the word itself otherwise."""
    out = {word}
    for p in _parses(word):
        if p.tag.POS in _DECLINED:
            out.update(f.word for f in p.lexeme if f.tag.POS in _DECLINED)
    return sorted({_fold(w) for w in out})


def phrase_forms(phrase: str) -> list[str]:
    """Forms of a phrase: one word → all its forms; several → the nominative words inflected together."""
    words = phrase.split()
    if len(words) == 1:
        if words[0].endswith(("ть", "ти", "чь")) and any(p.tag.POS == "INFN" for p in _parses(words[0])):
            return verb_forms(words[0])
        return word_forms(words[0])
    heads = [_head_parse(w) for w in words]
    noun = next((i for i, p in enumerate(heads) if p is not None and p.tag.POS == "NOUN"), len(words) - 1)
    heads = [p if i <= noun else None for i, p in enumerate(heads)]  # after the head noun: its dependents
    out = {phrase}
    for case in _CASES:
        for number in _NUMBERS:
            inflected = []
            for word, parse in zip(words, heads):
                if parse is None:
                    inflected.append(word)
                    continue
                form = parse.inflect({case, number})
                inflected.append(_fold(form.word) if form is not None else word)
            out.add(" ".join(inflected))
    return sorted(out)


def _head_parse(word: str) -> Any | None:
    """The nominative analysis of a word in a phrase (it agrees with the head), or None (it stays as written)."""
    for p in _analyzer().parse(word):
        if p.tag.POS in _DECLINED and p.tag.case == "nomn":
            return p
    return None


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е")


def generate(phrases: Iterable[str]) -> dict[str, list[str]]:
    """The table: phrase → its forms, for every phrase given (folded, sorted)."""
    return {p: phrase_forms(p) for p in sorted({_fold(p) for p in phrases if p.strip()})}


@lru_cache(maxsize=1)
def shipped() -> dict[str, tuple[str, ...]]:
    """The shipped table (empty when the file is missing: every phrase is then generated)."""
    if not TABLE.exists():
        return {}
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in data["forms"].items()}


@lru_cache(maxsize=4096)
def forms(phrase: str) -> tuple[str, ...]:
    """The forms of a Russian phrase: from the shipped table, else generated now (lexicon build time only)."""
    key = _fold(phrase)
    found = shipped().get(key)
    if found is not None:
        return found
    try:
        return tuple(phrase_forms(key))
    except ImportError:  # pragma: no cover - pymorphy3 is a dependency; without it the phrase is matched as written
        return (key,)


def table_inputs() -> list[str]:
    """Every Russian phrase the shipped table covers: lexicon lemmas and number words, the examples' aliases."""
    from neira.commands.lexicon import GRAMMAR_DIR

    data = json.loads((GRAMMAR_DIR / "lexicon.json").read_text(encoding="utf-8"))
    out: list[str] = []
    for key, table in data.get("lemmas", {}).items():
        if key.startswith("_"):
            continue
        for by_lang in table.values():
            out.extend(by_lang.get("ru", []))
    numbers = data.get("numbers", {})
    for words in numbers.get("ru", {}).values():  # noqa: B007
        out.extend(words)
    for by_lang in numbers.get("relative", {}).values():
        out.extend(by_lang.get("ru", []))
    examples = GRAMMAR_DIR.parent / "examples"
    for path in sorted(examples.glob("*/*.json")):
        template = json.loads(path.read_text(encoding="utf-8"))
        aliases = (template.get("metadata") or {}).get("aliases") or {}
        ru = aliases.get("ru") or []
        out.extend([ru] if isinstance(ru, str) else [a for a in ru if isinstance(a, str)])
    return out


def render_table() -> str:
    """The table file's text, as shipped."""
    comment = ("Generated by `python grammar/make_forms.py` (pymorphy3 + pymorphy3-dicts-ru) from the lemmas and "
               "number words in grammar/lexicon.json and the aliases in examples/. Do not edit.")
    rows = [f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
            for k, v in generate(table_inputs()).items()]
    return ('{\n"_comment": ' + json.dumps(comment, ensure_ascii=False) + ',\n"forms": {\n' + ",\n".join(rows)
            + "\n}\n}\n")


def main() -> None:
    TABLE.write_text(render_table(), encoding="utf-8")
    print(f"wrote {TABLE} ({len(shipped.__wrapped__())} phrases)")


if __name__ == "__main__":
    main()
