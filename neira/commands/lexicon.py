"""The lexicon: which words mean what. Function words come from grammar/lexicon.json, catalog nouns
from the templates' `metadata.aliases`, so a new organ kind or cell is a JSON file and no code change.

Every known word or phrase maps to an Entry: its class (a grammar terminal), the text it stands for in
the canonical token stream the grammar parses, and the language it belongs to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from neira.commands.fuzzy import FuzzyIndex, Guess
from neira.commands.morph import english_forms, phrase_forms
from neira.commands.forms import forms as russian_forms
from neira.commands.normalize import fold, pieces

GRAMMAR_DIR = Path(__file__).resolve().parents[2] / "grammar"
_NOUN_CLASS = {"organ": "ORGAN", "cell": "CELL", "pipeline": "PIPELINE"}
_PARTICLE_CLASS = {"to": ("TO", "^to"), "from": ("FROM", "^from"), "version": ("VWORD", "^version"), "then": ("ARROW", ">")}


class Entry(NamedTuple):
    """What a known word or phrase stands for."""

    cls: str
    canon: str
    lang: str


class Alias(NamedTuple):
    """A catalog noun: its lemma and the organ and cell template ids it names."""

    lemma: str
    organs: tuple[str, ...]
    cells: tuple[str, ...]
    words: dict[str, tuple[str, ...]]


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(p.text for p in pieces(phrase) if p.shape == "word")


def _aliases_of(template: Any) -> dict[str, list[str]]:
    """`metadata.aliases` as {lang: [phrases]}, tolerating the free-form shapes metadata may hold."""
    meta = template.get("metadata") if isinstance(template, dict) else None
    raw = meta.get("aliases") if isinstance(meta, dict) else None
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for lang in ("ru", "en"):
        value = raw.get(lang)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        out[lang] = [v for v in values if isinstance(v, str)]
    return out


def lemma_of(phrase: str) -> str:
    """The key an alias is known by: its folded words joined with '_' («оттенки серого» → оттенки_серого)."""
    return "_".join(_words(phrase))


class Lexicon:
    """Word → meaning tables, the fuzzy index over them, and the word lists replies and errors use."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.phrases: dict[tuple[str, ...], Entry] = {}
        self.max_len: dict[str, int] = {}
        self.multi_first: set[str] = set()  # words that start a phrase of two or more words
        self.word_memo: dict[str, tuple] = {}  # word → its tokens (tokens.py); a pure function of the lexicon
        self.parse_memo: dict[str, object] = {}  # canonical stream → Command (parse.py); ditto
        self.aliases: dict[str, Alias] = {}
        self.names: dict[tuple[str, str], list[str]] = {}  # (organs|cells, lang) → each template's first alias
        self.fuzzy = FuzzyIndex()
        self.verbs: dict[str, dict[str, list[str]]] = data["verbs"]
        self.nouns: dict[str, dict[str, list[str]]] = data["nouns"]
        self.particles: dict[str, dict[str, list[str]]] = data["particles"]
        self.run: dict[str, Any] = data.get("run", {})  # where a run's input starts; which organ speaks
        self.base: Lexicon = self  # the lexicon of the fixed words this one was laid over (`_over`), or itself
        for verb, spec in self.verbs.items():
            terminal = spec.get("terminal", verb)
            self._add_all({k: v for k, v in spec.items() if k != "terminal"}, Entry(terminal.upper(), "!" + terminal, ""))
        for noun, by_lang in self.nouns.items():
            entry = Entry(_NOUN_CLASS[noun], "#" + noun, "") if noun in _NOUN_CLASS else Entry("KIND", "%" + noun, "")
            self._add_all(by_lang, entry)
        for particle, by_lang in self.particles.items():
            cls, canon = _PARTICLE_CLASS[particle]
            self._add_all(by_lang, Entry(cls, canon, ""))
        self._add_all(data["fillers"], Entry("FILLER", "", ""))
        self.cue_kind: dict[str, str] = {}  # surface phrase → synonym | question | nominal | form (frames.py weighs them)
        self.cue_intent: dict[str, str] = {}  # surface phrase of a cue → the verb intent it stands for
        self.numbers: dict[str, int] = {}  # number word or ordinal form → its value
        self.relative: dict[str, str] = {}  # прошлую, previous → previous | next | latest (next to a version word)
        self.soft_verbs: set[str] = set()  # verbs that are openers when another verb follows («давай создадим»)
        cues = data.get("cues", {})
        self.add_words: frozenset[str] = frozenset(w for ws in cues.get("add", {}).values() for w in ws)
        self.gapped: list[tuple[tuple[str, str], str, str]] = [  # (verb, particle), intent, lang
            ((pair[0], pair[1]), verb, lang) for verb, by_lang in cues.get("gapped", {}).items()
            for lang, pairs in by_lang.items() for pair in pairs]
        self.gap_words: frozenset[str] = frozenset(pair[1] for pair, _, _ in self.gapped)
        self.gapped_by_first: dict[str, list[tuple[str, str]]] = {}  # first word → (particle, terminal)
        for (first, second), verb, _lang in self.gapped:
            terminal = str(self.verbs.get(verb, {}).get("terminal", verb)).upper()
            self.gapped_by_first.setdefault(first, []).append((second, terminal))
        self.text_memo: dict[str, object] = {}  # text → what parse() said (parse.py)
        for kind in ("synonyms", "questions", "nominal"):
            for verb, by_lang in cues.get(kind, {}).items():
                self._add_verb_words(verb, by_lang, kind.rstrip("s"), generated=False)
        for verb, by_lang in data.get("lemmas", {}).get("verbs", {}).items():
            self._add_verb_words(verb, by_lang, "form", generated=True)
        for table, entries in (("nouns", self._noun_entry), ("particles", self._particle_entry)):
            for key, by_lang in data.get("lemmas", {}).get(table, {}).items():
                self._add_forms(by_lang, entries(key))
        numbers = data.get("numbers", {})
        for lang in ("ru", "en"):
            for value, words in numbers.get(lang, {}).items():
                for word in words:
                    for form in (russian_forms(word) if lang == "ru" else (word,)):
                        self.numbers.setdefault(form, int(value))
                        self._put((form,), Entry("NUMWORD", value, lang), preferred=False, override=False)
        for kind, by_lang in numbers.get("relative", {}).items():
            for lang, words in by_lang.items():
                for word in words:
                    for form in (russian_forms(word) if lang == "ru" else (word,)):
                        self.relative.setdefault(form, kind)
        for lang, phrases in cues.get("discourse", {}).items():
            for phrase in phrases:
                words = _words(phrase)
                if not words:
                    continue
                known = self.phrases.get(words)
                if known is not None and known.canon.startswith("!"):
                    self.soft_verbs.add(" ".join(words))
                self._put(words, Entry("FILLER", "", lang), preferred=False, override=False)

    def _noun_entry(self, noun: str) -> Entry:
        return Entry(_NOUN_CLASS[noun], "#" + noun, "") if noun in _NOUN_CLASS else Entry("KIND", "%" + noun, "")

    def _particle_entry(self, particle: str) -> Entry:
        cls, canon = _PARTICLE_CLASS[particle]
        return Entry(cls, canon, "")

    def _add_verb_words(self, verb: str, by_lang: dict[str, list[str]], kind: str, generated: bool) -> None:
        """A verb intent's cue phrases (or, `generated`, its lemmas' forms) as words of the verb's class."""
        terminal = str(self.verbs.get(verb, {}).get("terminal", verb))
        entry = Entry(terminal.upper(), "!" + terminal, "")
        for lang, ps in by_lang.items():
            for phrase in ps:
                for form in sorted(_expand(phrase, lang)) if generated else [phrase]:
                    words = _words(form)
                    if not words:
                        continue
                    surface = " ".join(words)
                    if words not in self.phrases:
                        self.cue_kind.setdefault(surface, kind)
                        self.cue_intent.setdefault(surface, verb)
                    self._put(words, entry._replace(lang=lang), preferred=not generated, override=False)

    def _add_forms(self, by_lang: dict[str, list[str]], entry: Entry) -> None:
        for lang, phrases in by_lang.items():
            for phrase in phrases:
                for form in sorted(_expand(phrase, lang)):
                    words = _words(form)
                    if words:
                        self._put(words, entry._replace(lang=lang), preferred=False, override=False)

    def _over(self) -> Lexicon:
        """A lexicon that starts with this one's words and takes a catalog's aliases on top, leaving this one
        as it is: the tables aliases add to are copied (the fuzzy index is layered), the rest is shared, and
        the memos start empty (they are functions of the whole lexicon)."""
        lex = object.__new__(Lexicon)
        lex.__dict__.update(self.__dict__)
        lex.phrases, lex.max_len, lex.multi_first = dict(self.phrases), dict(self.max_len), set(self.multi_first)
        lex.word_memo, lex.parse_memo, lex.text_memo = {}, {}, {}
        lex.aliases, lex.names = {}, {}
        lex.fuzzy = self.fuzzy.over()
        return lex

    @classmethod
    def from_templates(cls, cells: Iterable[dict], organs: Iterable[dict], data: dict[str, Any] | None = None) -> "Lexicon":
        """Build the lexicon from grammar/lexicon.json (or `data`) plus the catalog's aliases. The words of
        grammar/lexicon.json are built once (again only when the file changes): a catalog change, which
        rebuilds the lexicon, then costs the aliases alone (bench/parse.py, "lexicon rebuild")."""
        lex = (_base() if data is None else cls(data))._over()
        found: dict[str, dict[str, Any]] = {}
        for kind, templates in (("organs", organs), ("cells", cells)):
            for template in templates:
                if not isinstance(template, dict) or not isinstance(template.get("id"), str):
                    continue
                aliases = _aliases_of(template)
                for lang in ("ru", "en"):
                    first = next(iter(aliases.get(lang) or ()), None)
                    names = lex.names.setdefault((kind, lang), [])
                    if first and fold(str(first)) not in names:
                        names.append(fold(str(first)))
                    for phrase in aliases.get(lang) or ():
                        words = _words(str(phrase))
                        if not words:
                            continue
                        slot = found.setdefault("_".join(words), {"organs": [], "cells": [], "words": {}})
                        if template["id"] not in slot[kind]:
                            slot[kind].append(template["id"])
                        slot["words"][lang] = words
        for lemma, slot in sorted(found.items()):
            lex.aliases[lemma] = Alias(lemma, tuple(slot["organs"]), tuple(slot["cells"]), slot["words"])
            for lang, words in slot["words"].items():
                lex._add_alias(words, lemma, lang)
        return lex

    def _add_all(self, by_lang: dict[str, list[str]], entry: Entry) -> None:
        for lang, phrases in by_lang.items():
            for phrase in phrases:
                words = _words(phrase)
                if words:
                    self._put(words, entry._replace(lang=lang), preferred=True, override=True)

    def _add_alias(self, words: tuple[str, ...], lemma: str, lang: str) -> None:
        entry = Entry("ALIAS", "@" + lemma, lang)
        alias = self.aliases[lemma]
        meaning = ("ALIAS", alias.organs + alias.cells)  # «голос» and «голосовой» name the same organ: no contest
        self._put(words, entry, preferred=True, override=False, meaning=meaning)
        for form in sorted(phrase_forms(words)):
            self._put(form, entry, preferred=False, override=False, meaning=meaning)

    def _put(self, words: tuple[str, ...], entry: Entry, preferred: bool, override: bool,
             meaning: tuple | None = None) -> None:
        if not override and words in self.phrases:
            return  # function words win over catalog nouns; the first alias to claim a form keeps it
        self.phrases[words] = entry
        self.max_len[words[0]] = max(self.max_len.get(words[0], 0), len(words))
        if len(words) > 1:
            self.multi_first.add(words[0])
        meaning = meaning or (entry.cls, entry.canon)
        for word in words:
            self.fuzzy.add(word, meaning, preferred=preferred)

    def match(self, words: list[str], start: int) -> tuple[Entry, int] | None:
        """The longest known phrase starting at words[start], and how many words it covers."""
        longest = self.max_len.get(words[start])
        if longest is None:
            return None
        for n in range(min(longest, len(words) - start), 0, -1):
            entry = self.phrases.get(tuple(words[start:start + n]))
            if entry is not None:
                return entry, n
        return None

    def guess(self, word: str, classes: set[str] | None = None) -> Guess:
        """A known word one edit away from `word`, restricted to terminal `classes` when given."""
        return self.fuzzy.guess(word, kinds=classes)

    def alias_words(self, lang: str, kind: str, limit: int = 4) -> list[str]:
        """The first alias of a few organs (`kind="organs"`) or cells in `lang`, for hints."""
        return self.names.get((kind, lang), [])[:limit]

    def verb_terminal(self, verb: str) -> str:
        """The grammar terminal a verb intent starts (create and build both start MAKE)."""
        return str(self.verbs.get(verb, {}).get("terminal", verb)).upper()

    def first_form(self, table: str, key: str, lang: str) -> str | None:
        """The dictionary form of a verb, noun or particle in `lang` (the first listed)."""
        forms = getattr(self, table).get(key, {}).get(lang) or []
        return forms[0] if forms else None


_BASE: tuple[int, Lexicon] | None = None  # (lexicon.json's mtime, the lexicon of its words alone)


def _base() -> Lexicon:
    """The lexicon of grammar/lexicon.json's words, built once per version of the file."""
    global _BASE
    path = GRAMMAR_DIR / "lexicon.json"
    stamp = path.stat().st_mtime_ns
    if _BASE is None or _BASE[0] != stamp:
        _BASE = (stamp, Lexicon(json.loads(path.read_text(encoding="utf-8"))))
    return _BASE[1]


def _expand(phrase: str, lang: str) -> set[str]:
    """A lemma's forms: Russian from the morphology table, English by the suffix rule."""
    if lang == "ru":
        return set(russian_forms(phrase)) | {phrase}
    return english_forms(phrase)


def detect_lang(entries_langs: Iterable[str], text: str) -> str:
    """ru or en: by the known words first (verbs count double upstream), then by the letters typed."""
    ru = en = 0
    for lang in entries_langs:
        if lang == "ru":
            ru += 1
        elif lang == "en":
            en += 1
    if ru != en:
        return "ru" if ru > en else "en"
    folded = fold(text)
    cyr = sum(1 for ch in folded if "\u0400" <= ch <= "\u04ff")
    lat = sum(1 for ch in folded if "a" <= ch <= "z")
    return "ru" if cyr > lat else "en"
