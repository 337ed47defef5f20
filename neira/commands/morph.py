"""Word forms the lexicon adds besides the ones it lists: Russian from the generated table (forms.py, pymorphy3),
English by a suffix rule for known lemmas only (-s, -ed, -ing); and transliteration for ids.
"""

from __future__ import annotations

from neira.commands.forms import forms as russian_phrase_forms

_VOWELS = set("aeiou")


def english_forms(phrase: str) -> set[str]:
    """A known English lemma with -s, -ed and -ing on its first word (create → creates, created, creating)."""
    first, _, rest = phrase.partition(" ")
    tail = " " + rest if rest else ""
    if len(first) < 3 or not first.isalpha() or not first.isascii():
        return {phrase}
    out = {first, _plural(first), _past(first), _gerund(first)}
    return {w + tail for w in out}


def _plural(w: str) -> str:
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2] not in _VOWELS:
        return w[:-1] + "ies"
    return w + "s"


def _short_cvc(w: str) -> bool:
    return len(w) <= 4 and w[-1] not in _VOWELS | set("wxy") and w[-2] in _VOWELS and w[-3] not in _VOWELS


def _past(w: str) -> str:
    if w.endswith("e"):
        return w + "d"
    if w.endswith("y") and w[-2] not in _VOWELS:
        return w[:-1] + "ied"
    return w + w[-1] + "ed" if _short_cvc(w) else w + "ed"


def _gerund(w: str) -> str:
    if w.endswith("ie"):
        return w[:-2] + "ying"
    if w.endswith("e") and not w.endswith("ee"):
        return w[:-1] + "ing"
    return w + w[-1] + "ing" if _short_cvc(w) else w + "ing"


def phrase_forms(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Forms of a known phrase: Russian from the morphology table, English nouns with a plural -s."""
    if is_cyrillic(words[0]):
        return {tuple(f.split()) for f in russian_phrase_forms(" ".join(words))} | {words}
    return {words, words[:-1] + (_plural(words[-1]),)}


def is_cyrillic(word: str) -> bool:
    """True when the word has at least one Cyrillic letter."""
    return any("\u0400" <= ch <= "\u04ff" for ch in word)


_TRANSLIT = dict(zip(
    "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "f",
     "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
))


def slug(text: str) -> str:
    """An id-safe slug: Cyrillic transliterated, anything else outside [a-z0-9_] becomes '_'."""
    out = []
    for ch in text.lower():
        if ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
        elif ch.isascii() and (ch.isalnum() or ch == "_"):
            out.append(ch)
        else:
            out.append("_")
    name = "_".join(part for part in "".join(out).split("_") if part)
    if not name or not name[0].isalpha():
        name = "x" + name
    return name[:48]
