"""Russian word forms and transliteration, just enough for catalog aliases.

Aliases in the catalog are written in the dictionary form («голосовой», «зрение», «адаптер»); people type
them inflected («голосового органа», «органа зрения», «адаптером»). Instead of a morphological analyser the
lexicon expands each alias into its common case forms once, so matching stays one dict lookup per word.
"""

from __future__ import annotations

_ADJ_ENDINGS = ("ой", "ый", "ий", "ая", "яя", "ое", "ее")
_ADJ_FORMS_HARD = ("ой", "ый", "ого", "ому", "ым", "ом", "ая", "ую", "ое", "ые", "ых", "ыми")
_ADJ_FORMS_SOFT = ("ий", "его", "ему", "им", "ем", "яя", "юю", "ее", "ие", "их", "ими", "ая", "ую", "ое", "ого", "ому", "ом")
_SOFT_STEM_LAST = set("кгхжшчщ")


def _adjective_forms(word: str) -> set[str]:
    stem = word[:-2]
    if word.endswith("ий") and stem[-1:] not in _SOFT_STEM_LAST:
        return {stem + e for e in _ADJ_FORMS_SOFT}
    if word.endswith("ий"):  # русский, легкий: hard-ish after к/г/х/ж/ш/ч/щ
        return {stem + e for e in _ADJ_FORMS_HARD + ("ий", "ие", "их", "ими", "им", "ем")}
    return {stem + e for e in _ADJ_FORMS_HARD}


def _noun_forms(word: str) -> set[str]:
    if word.endswith(("ие", "ье")):
        stem = word[:-1]
        return {stem + e for e in ("е", "я", "ю", "ем", "и", "й", "ям", "ями", "ях")}
    if word.endswith("ия"):
        stem = word[:-1]
        return {stem + e for e in ("я", "и", "ю", "ей", "ям", "ями", "ях", "й")}
    if word.endswith(("а", "я")):
        stem = word[:-1]
        soft = word.endswith("я") or stem[-1:] in _SOFT_STEM_LAST
        return {stem + e for e in ("а", "я", "у", "ю", "ы", "и", "е", "ой", "ей", "ам", "ами", "ах")} if soft \
            else {stem + e for e in ("а", "у", "ы", "е", "ой", "ам", "ами", "ах")}
    if word.endswith(("ы", "и")):  # plural: фонемы, границы
        stem = word[:-1]
        return {stem + e for e in ("ы", "и", "", "ам", "ами", "ах", "ов", "ям")}
    if word.endswith("ь"):
        stem = word[:-1]
        return {stem + e for e in ("ь", "и", "ю", "ью", "я", "ем", "ей", "ям", "ями", "ях")}
    if word.endswith(("о", "е")):
        stem = word[:-1]
        return {stem + e for e in ("о", "е", "а", "у", "ом", "ы", "ам", "ами", "ах")}
    if word.endswith("й"):
        stem = word[:-1]
        return {stem + e for e in ("й", "я", "ю", "ем", "е", "и", "ев", "ям", "ями", "ях")}
    return {word + e for e in ("", "а", "у", "ом", "е", "ы", "и", "ов", "ам", "ами", "ах")}


def russian_forms(word: str) -> set[str]:
    """Common case forms of one Russian word (adjective or noun), the word itself included."""
    if len(word) < 3 or not is_cyrillic(word):
        return {word}
    forms = _adjective_forms(word) if word.endswith(_ADJ_ENDINGS) and len(word) > 4 else _noun_forms(word)
    forms.add(word)
    return forms


def phrase_forms(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Forms of a phrase: a single word is inflected; in a longer phrase only the head (first word) is."""
    if len(words) == 1:
        return {(f,) for f in russian_forms(words[0])}
    if all(is_cyrillic(w) for w in words[:1]):
        return {(f,) + words[1:] for f in russian_forms(words[0])}
    return {words}


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
