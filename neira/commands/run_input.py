"""Where a run command's input starts. The input is the user's own text (case, punctuation and all), so it is
cut off the phrase before the phrase is normalised and parsed: a quoted span («…», "…", “…”), else what
follows the first colon, else what follows the first connector word after the organ («на», "on", "with").
The verbs and connectors are data (grammar/lexicon.json: verbs `run` and `say`, and `run`)."""

from __future__ import annotations

import re
import weakref
from typing import NamedTuple

from neira.commands.lexicon import Lexicon
from neira.commands.normalize import pieces

_ID = re.compile(r"^(?:organ|cell)[-.][\w.-]+$|^[a-z]+\.[\w.-]+$")
_NAMING = frozenset({"ALIAS", "ORGAN", "CELL", "FILLER", "KIND"})  # words that name what runs, not what it runs on
_QUOTED = re.compile(r"«([^»]*)»|\"([^\"]*)\"|“([^”]*)”|„([^“”]*)[“”]|'([^']*)'")


class RunSplit(NamedTuple):
    """The command words, and the input (None when the phrase gave none)."""

    command: str
    input: str | None


class _Words(NamedTuple):
    verbs: tuple[tuple[tuple[str, ...], str], ...]  # (verb phrase words, run | say), longest first
    firsts: frozenset[str]  # the first word of every verb phrase: most phrases are rejected by one lookup
    connectors: frozenset[str]


_WORDS: weakref.WeakKeyDictionary[Lexicon, _Words] = weakref.WeakKeyDictionary()


def _words(lexicon: Lexicon) -> _Words:
    """The run words of a lexicon, prepared once per lexicon of fixed words: they are all function words
    (a catalog alias never stands for a verb), so every catalog's lexicon over the same base shares them."""
    lexicon = lexicon.base
    found = _WORDS.get(lexicon)
    if found is None:
        listed = {(tuple(p.text for p in pieces(v) if p.shape == "word"), kind) for kind in ("run", "say")
                  for lang in ("ru", "en") for v in lexicon.verbs.get(kind, {}).get(lang, [])}
        formed = {(words, entry.canon[1:]) for words, entry in lexicon.phrases.items()
                  if entry.canon in ("!run", "!say")}  # «запускай», «прогоним», "launching": the lemmas' forms too
        verbs = sorted(listed | formed, key=lambda vk: (-len(vk[0]), vk))
        connectors = frozenset(c for lang in ("ru", "en") for c in lexicon.run.get("connectors", {}).get(lang, []))
        found = _WORDS[lexicon] = _Words(tuple(v for v in verbs if v[0]), frozenset(v[0][0] for v in verbs if v[0]), connectors)
    return found


def _input(text: str) -> str | None:
    text = text.strip()
    return text or None


def split_run(text: str, lexicon: Lexicon) -> RunSplit | None:
    """For a phrase that starts with a run or say verb: its command part and its input; None otherwise."""
    words = [p for p in pieces(text) if p.shape == "word"]
    while words and _cls(lexicon, words[0].text) == "FILLER":  # «пожалуйста, запусти …», "please run …"
        words = words[1:]
    known = _words(lexicon)
    if not words or words[0].text not in known.firsts:
        return None
    verb = next(((len(v), kind) for v, kind in known.verbs
                 if len(v) <= len(words) and tuple(w.text for w in words[:len(v)]) == v), None)
    if verb is None:
        return None
    n, kind = verb
    after_verb = words[n - 1].end
    quoted = _QUOTED.search(text, after_verb)
    if quoted is not None:
        inner = next(g for g in quoted.groups() if g is not None)
        return RunSplit(_strip_connector(text[:quoted.start()], lexicon), _input(inner))
    colon = text.find(":", after_verb)
    if colon >= 0:
        return RunSplit(text[:colon], _input(text[colon + 1:]))
    connectors = known.connectors
    for w in words[n + 1:]:  # at least one word (the organ) between the verb and the connector
        if w.text in connectors:
            return RunSplit(text[:w.start], _input(text[w.end:]))
    if kind == "say":  # «скажи привет»: everything after the verb (and after a named organ) is said
        rest = words[n:]
        named = 0
        while named < len(rest) and (_cls(lexicon, rest[named].text) in _NAMING or _ID.match(rest[named].text)):
            named += 1
        if len(rest) > named:
            return RunSplit(text[:rest[named].start], _input(text[rest[named].start:]))
    return RunSplit(text, None)


def _cls(lexicon: Lexicon, word: str) -> str | None:
    entry = lexicon.phrases.get((word,))
    return entry.cls if entry is not None else None


def _strip_connector(command: str, lexicon: Lexicon) -> str:
    """«run organ-2 with "текст"» → «run organ-2»: the connector before a quote belongs to neither part."""
    connectors = _words(lexicon).connectors
    words = [p for p in pieces(command) if p.shape == "word"]
    if words and words[-1].text in connectors:
        return command[:words[-1].start]
    return command
