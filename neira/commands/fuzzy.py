"""Typo suggestions constrained to the lexicon: one edit (insert, delete, substitute, swap) at most.

A suggestion is only a suggestion: the Command Cell never executes a guessed word. When two different
meanings are equally close the index abstains, because picking one would be a coin toss.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, NamedTuple

MIN_LENGTH = 4  # shorter words have too many one-edit neighbours to guess from
SHORT = 4


class Guess(NamedTuple):
    """Outcome of a lookup: the suggested surface word, or the competing words when it abstained."""

    suggestion: str | None
    candidates: tuple[str, ...]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion, substitution or adjacent swap."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]


class FuzzyIndex:
    """Maps a misspelt word to known words one edit away (a symmetric-delete index). `over()` gives an index
    that holds this one's words and takes more on top, leaving this one as it is: the lexicon's fixed words
    are indexed once, each catalog's aliases on a layer of their own."""

    def __init__(self, base: FuzzyIndex | None = None) -> None:
        if base is not None and base._base is not None:
            raise ValueError("an index is layered over an index without a base")
        self._base = base
        self._by_variant: dict[str, set[str]] = defaultdict(set)
        self._meaning: dict[str, Hashable] = {}
        self._preferred: set[str] = set()

    def over(self) -> FuzzyIndex:
        """A new index over this one (see the class)."""
        return FuzzyIndex(self)

    def _known(self, word: str) -> bool:
        return word in self._meaning or (self._base is not None and word in self._base._meaning)

    def add(self, word: str, meaning: Hashable, preferred: bool = False) -> None:
        """Index `word`; words with the same `meaning` (forms of one lemma) never compete with each other."""
        if len(word) < MIN_LENGTH - 1 or self._known(word):
            return
        self._meaning[word] = meaning
        if preferred:
            self._preferred.add(word)
        self._by_variant[word].add(word)
        for variant in _deletes(word):
            self._by_variant[variant].add(word)

    def _near(self, word: str) -> set[str]:
        """Known words sharing a delete-variant with `word` (the candidates within one edit)."""
        found: set[str] = set()
        for index in (self, self._base) if self._base is not None else (self,):
            by_variant = index._by_variant
            found |= by_variant.get(word, set())
            for variant in _deletes(word):
                found |= by_variant.get(variant, set())
        return found

    def guess(self, word: str, allowed: set[Hashable] | None = None, kinds: set[str] | None = None) -> Guess:
        """The closest known word, or none; `kinds` restricts meanings to those whose first element is listed."""
        if len(word) < MIN_LENGTH or self._known(word):
            return Guess(None, ())
        by_meaning: dict[Hashable, list[str]] = defaultdict(list)
        for cand in self._near(word):
            meaning = self._meaning[cand] if cand in self._meaning else self._base._meaning[cand]  # type: ignore[union-attr]
            if kinds is not None and meaning[0] not in kinds:  # type: ignore[index]
                continue
            if allowed is not None and meaning not in allowed:
                continue
            if len(word) <= SHORT and cand[0] != word[0]:
                continue  # «tell» is not a typo of «cell»: short words must at least start right
            if within_one_edit(word, cand):
                by_meaning[meaning].append(cand)
        if not by_meaning:
            return Guess(None, ())
        best = [self._best(words) for words in by_meaning.values()]
        if len(best) > 1:
            return Guess(None, tuple(sorted(best)))
        return Guess(best[0], ())

    def _preferred_word(self, word: str) -> bool:
        return word in self._preferred or (self._base is not None and word in self._base._preferred)

    def _best(self, words: list[str]) -> str:
        preferred = sorted(w for w in words if self._preferred_word(w))
        return preferred[0] if preferred else sorted(words, key=lambda w: (len(w), w))[0]
