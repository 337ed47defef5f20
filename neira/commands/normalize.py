"""Text → tokens: fold case, ё and look-alike letters, split words, arrows and punctuation.

Every token keeps the span it came from in the text the user typed, so errors can point at it.
Word-level meaning (verbs, nouns, aliases, fillers) is the lexicon's business; this module only
decides what a piece of text *looks* like: a plain word, an id, a version, a number, an arrow.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

_LAT_TO_CYR = str.maketrans("aceopxykmthb", "асеорхукмтнв")
_CYR_TO_LAT = str.maketrans("асеорхукмтнв", "aceopxykmthb")
_LAT_LOOKALIKES = frozenset("aceopxykmthb")
_CYR_LOOKALIKES = frozenset("асеорхукмтнв")

_TOKEN_RE = re.compile(
    r"(?P<arrow>[-=—–]+>|[→⟶➝➔⇒»>]|(?<!\S)[—–-](?!\S))"
    r"|(?P<word>[^\W_]+(?:['\-_.][^\W_]+|_+[^\W_]+)*)"
    r"|(?P<punct>[,;:()\[\]])"
)
_PUNCT = {",": "COMMA", ";": "COMMA", ":": "COLON", "(": "LPAR", "[": "LPAR", ")": "RPAR", "]": "RPAR"}
VERSION_RE = re.compile(r"[vв]\d+(?:\.\d+){0,2}")  # «в2»: a Cyrillic в typed for v
NUMBER_RE = re.compile(r"\d+(?:\.\d+){0,2}")
ID_RE = re.compile(r"[a-z][a-z0-9_\-]*(?:[.\-_][a-z0-9_\-]+)+|[a-z]+\d[a-z0-9_\-]*")
PLAIN_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


class Piece(NamedTuple):
    """A raw piece of the user's text: its shape (`word`, `arrow`, punctuation name), folded text and span."""

    shape: str
    text: str
    start: int
    end: int


def fold(text: str) -> str:
    """Lower-case, ё→е, typographic apostrophes → ', keeping every character at its offset."""
    low = text.lower()
    if len(low) != len(text):  # a few letters (İ) lower-case into two characters: fold one by one
        low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return low.replace("ё", "е").replace("’", "'").replace("`", "'")


_LATIN_RE = re.compile(r"[a-z]")


def fix_script(word: str) -> str:
    """Make a word that mixes Latin and Cyrillic look-alike letters consistent («сoздай» → «создай»)."""
    if word.isascii() or _LATIN_RE.search(word) is None:  # the common case: one script only
        return word
    cyr = sum(1 for ch in word if "\u0400" <= ch <= "\u04ff")
    if not cyr:
        return word
    lat = sum(1 for ch in word if "a" <= ch <= "z")
    if not lat:
        return word
    lat_letters = {ch for ch in word if "a" <= ch <= "z"}
    cyr_letters = {ch for ch in word if "\u0400" <= ch <= "\u04ff"}
    if cyr >= lat and lat_letters <= _LAT_LOOKALIKES:
        return word.translate(_LAT_TO_CYR)
    if cyr_letters <= _CYR_LOOKALIKES:
        return word.translate(_CYR_TO_LAT)
    if lat_letters <= _LAT_LOOKALIKES:
        return word.translate(_LAT_TO_CYR)
    return word


@lru_cache(maxsize=65536)
def _fix_word(word: str) -> str:
    if word.isascii():
        return word
    if "-" in word or "_" in word or "." in word:  # fix each part: «speak-пайплайн» keeps both scripts
        return re.sub(r"[^\-_.]+", lambda m: fix_script(m.group()), word)
    return fix_script(word)


@lru_cache(maxsize=64)
def pieces(text: str) -> tuple[Piece, ...]:
    """Split folded text into words, arrows and punctuation; everything else (?, !, quotes) is dropped.

    Pure, and asked twice per phrase (run_input.py looks for a run verb, tokens.py classifies), so the last
    few texts are kept."""
    return tuple(_pieces(text))


def _pieces(text: str) -> list[Piece]:
    out: list[Piece] = []
    append = out.append
    make = tuple.__new__  # Piece(...) without the namedtuple's Python-level __new__: this loop is hot
    for m in _TOKEN_RE.finditer(fold(text)):
        kind = m.lastindex
        start, end = m.span()
        if kind == 2:
            append(make(Piece, ("word", _fix_word(m.group()), start, end)))
        elif kind == 1:
            append(make(Piece, ("ARROW", ">", start, end)))
        else:
            append(make(Piece, (_PUNCT[m.group()], m.group(), start, end)))
    return out


def word_shape(word: str) -> str:
    """What a word looks like: VERSION (v2), NUMBER (2.0.0), ID (organ-1), PLAIN (letters) or JUNK."""
    if word.isalpha():
        return "PLAIN"
    if VERSION_RE.fullmatch(word):
        return "VERSION" if word[0] == "v" else "VERSION_CYR"
    if NUMBER_RE.fullmatch(word):
        return "NUMBER"
    if PLAIN_RE.fullmatch(word):
        return "PLAIN"
    if ID_RE.fullmatch(word):
        return "ID"
    return "JUNK"
