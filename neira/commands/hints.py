"""Words to show people: what would have fitted where a phrase went wrong, in their language.

Grammar terminal names (MAKE, ALIAS, __ANON_3…) never reach a user; each maps to one or two real words.
"""

from __future__ import annotations

from neira.commands.lexicon import Lexicon

_VERB_ORDER = ("create", "update", "approve", "disable", "rollback", "status", "list", "cancel_build", "rebuild",
               "apply", "help")
_FIXED = {
    "ru": {"VERSION": "v1", "NUMBER": "2", "ID": "organ-1", "ORGAN_ID": "organ.voice.v1", "_ARROW": "→",
           "_COMMA": ",", "_LPAR": "(", "_RPAR": ")", "_COLON": ":"},
    "en": {"VERSION": "v1", "NUMBER": "2", "ID": "organ-1", "ORGAN_ID": "organ.voice.v1", "_ARROW": "→",
           "_COMMA": ",", "_LPAR": "(", "_RPAR": ")", "_COLON": ":"},
}
_NOUN_TERMINAL = {"ORGAN": ("nouns", "organ"), "CELL": ("nouns", "cell"), "PIPELINE": ("nouns", "pipeline"),
                  "TO": ("particles", "to"), "FROM": ("particles", "from"), "VWORD": ("particles", "version")}
LIMIT = 10


def expected_words(terminals: set[str], lang: str, lexicon: Lexicon) -> tuple[str, ...]:
    """Real words (never terminal names) that the grammar would have accepted, verbs first, at most LIMIT."""
    out: list[str] = []
    for verb in _VERB_ORDER:
        if lexicon.verb_terminal(verb) in terminals:
            word = lexicon.first_form("verbs", verb, lang)
            if word:
                out.append(word)
    for terminal, (table, key) in _NOUN_TERMINAL.items():
        if terminal in terminals:
            word = lexicon.first_form(table, key, lang)
            if word:
                out.append(word)
    if "KIND" in terminals:
        out.extend(w for w in (lexicon.first_form("nouns", k, lang) for k in ("analysis", "action", "memory")) if w)
    if "ALIAS" in terminals:
        out.extend(lexicon.alias_words(lang, "organs", 3) + lexicon.alias_words(lang, "cells", 1))
    elif "ID" in terminals:
        out.append(_FIXED[lang]["ID"])
    for terminal in ("VERSION", "ORGAN_ID", "_ARROW", "_LPAR", "_RPAR"):
        if terminal in terminals:
            out.append(_FIXED[lang][terminal])
    seen: set[str] = set()
    unique = [w for w in out if not (w in seen or seen.add(w))]
    return tuple(unique[:LIMIT])
