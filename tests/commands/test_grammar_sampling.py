"""Sentences sampled from the grammar itself parse back to the same Command.

A random derivation of grammar/command.lark gives a canonical token stream; each token is then spoken with a
random surface form from the lexicon (verb forms, nouns, particles, aliases, arrows) in one language. The
normaliser must turn the sentence back into the same stream, and parse() must give the Command the grammar
gives for that stream.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lark.grammar import NonTerminal

from neira.commands import Lexicon, ParseFailure, parse
import re

from neira.commands.model import BuildPipeline, CreateCell, Run
from neira.commands.parse import parser
from neira.commands.tokens import stream
from neira.commands.transform import Rejected
from tests.commands.conftest import load_examples
from tests.commands.render import SAFE_WORDS

LEX = Lexicon.from_templates(*load_examples())
RULES: dict[str, list[list]] = {}
for rule in parser().rules:
    RULES.setdefault(rule.origin.name, []).append(rule.expansion)
ARROWS = {"ru": ["→", "->", ">", "=>", "затем", "потом"], "en": ["→", "->", ">", "=>", "then", "and then"]}
PUNCT = {"_COMMA": ",", "_COLON": ":", "_LPAR": "(", "_RPAR": ")"}
RECORD_ID = re.compile(r"(?:organ|cell|record|plan)[-_]\w+")
IDS = ["organ-7", "cell-3", "analysis.summarize.v1", "text_normalize", "plan-1a2b"]


@lru_cache(maxsize=None)
def _surfaces(canon: str, lang: str | None) -> list[str]:
    """Surface forms that map to `canon`, preferring those that do not start a longer known phrase."""
    found = [(words, entry) for words, entry in LEX.phrases.items()
             if entry.canon == canon and (not lang or entry.lang in (lang, ""))]
    alone = [" ".join(w) for w, _ in found if not (len(w) == 1 and w[0] in LEX.multi_first)]
    return sorted(alone or [" ".join(w) for w, _ in found])


ALIASES = sorted(lemma for lemma, a in LEX.aliases.items()
                 if len(next(iter(a.words.values()))) == 1 and lemma not in LEX.multi_first
                 and LEX.phrases.get((lemma,), None) is not None and LEX.phrases[(lemma,)].canon == "@" + lemma)


def _terminal(draw, name: str, lang: str) -> tuple[str, str]:
    """(canonical token, surface words) for one terminal."""
    if name in PUNCT:
        return PUNCT[name], PUNCT[name]
    if name == "_ARROW":
        return ">", draw(st.sampled_from(ARROWS[lang]))
    if name == "ALIAS":
        lemma = draw(st.sampled_from(ALIASES))
        return "@" + lemma, lemma
    if name == "WORD":
        word = draw(st.sampled_from(SAFE_WORDS))
        return word, word
    if name in ("ID", "ORGAN_ID"):
        value = "organ.voice.v1" if name == "ORGAN_ID" else draw(st.sampled_from(IDS))
        return value, value
    if name == "VERSION":
        value = draw(st.sampled_from(["v1", "v2", "v3.1"]))
        return value, value
    if name == "RELVERSION":  # «прошлую», "previous" after a version word
        kind = draw(st.sampled_from(["previous", "next", "latest"]))
        words = sorted(w for w, k in LEX.relative.items() if k == kind and (w.isascii() == (lang == "en"))
                       and (w,) not in LEX.phrases)
        return "^" + kind, draw(st.sampled_from(words))
    if name == "NUMBER":
        value = draw(st.sampled_from(["1", "2", "2.0.0"]))
        return value, value
    canon = {"KIND": draw(st.sampled_from(["%analysis", "%action", "%memory"])), "TO": "^to", "FROM": "^from",
             "VWORD": "^version", "ORGAN": "#organ", "CELL": "#cell", "PIPELINE": "#pipeline"}.get(name)
    canon = canon or "!" + name.lower()
    return canon, draw(st.sampled_from(_surfaces(canon, lang)))


def derive(draw, symbol: str, lang: str, depth: int = 0) -> list[tuple[str, str]]:
    """A random derivation of `symbol`: a list of (canonical token, surface) pairs."""
    options = RULES[symbol]
    if depth > 4:  # stop recursion (items → item (_sep item)*): prefer expansions without the symbol itself
        options = [e for e in options if all(s.name != symbol for s in e)] or options
    expansion = draw(st.sampled_from(options))
    out: list[tuple[str, str]] = []
    for sym in expansion:
        if isinstance(sym, NonTerminal):
            out.extend(derive(draw, sym.name, lang, depth + 1))
        else:
            out.append(_terminal(draw, sym.name, lang))
    return out


def canonical(tokens: list[str]) -> str:
    """The stream as tokens.py joins it: a space only before a token that starts with a letter or digit."""
    parts: list[str] = []
    for tok in tokens:
        if parts and tok[:1].isalnum():
            parts.append(" ")
        parts.append(tok)
    return "".join(parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sampled_sentences_parse_back(data):
    lang = data.draw(st.sampled_from(["ru", "en"]))
    pairs = derive(data.draw, "start", lang)
    canon = canonical([c for c, _ in pairs])
    text = " ".join(s for _, s in pairs)
    assert stream(text, LEX).canon == canon, text
    try:
        expected = parser().parse(canon)
    except Rejected:  # the grammar refuses it; the frame tier may read it, and then says how it understood it
        got = parse(text, LEX)
        assert isinstance(got, ParseFailure) or got.reading, text
        return
    # run/say phrases are split into command and input before the grammar sees them (run_input.py: quotes, a
    # colon, a connector, or the words after «скажи»), which a sampled sentence cannot say; the phrase tables test them
    assume(not isinstance(expected, Run))
    # a record or organ id (organ-7) never names a new cell: parse.py refuses it where the grammar would draft one
    named = expected.steps if isinstance(expected, BuildPipeline) else (expected.cell,) if isinstance(expected, CreateCell) else ()
    assume(not any(RECORD_ID.fullmatch(i.value) for i in named if i.kind == "id"))
    got = parse(text, LEX)
    assert not isinstance(got, ParseFailure), (text, got)
    assert msgspec.structs.replace(got, lang=expected.lang) == expected, text
