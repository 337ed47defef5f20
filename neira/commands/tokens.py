"""Pieces of text → classified tokens, and the canonical token stream the grammar parses.

A token's class is a grammar terminal name (MAKE, ORGAN, ALIAS, WORD, ID, VERSION, ...); `canon` is how it
appears in the stream given to Lark («создайте» → `!make`, «голосового» → `@голосовой`); `start`/`end` is
the span in the user's text, so a parse error at a canonical offset maps back to what the user typed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

from neira.commands.lexicon import Lexicon, detect_lang
from neira.commands.normalize import Piece, pieces, word_shape

_PUNCT_CANON = {"ARROW": ">", "COMMA": ",", "COLON": ":", "LPAR": "(", "RPAR": ")"}
_SPLIT_RE = re.compile(r"[-_]+")
_ALPHA_RUN_RE = re.compile(r"[^\W\d_]+")


class Tok(NamedTuple):
    """One classified token with its span in the original text."""

    cls: str
    canon: str
    text: str
    start: int
    end: int
    lang: str


class Stream(NamedTuple):
    """Tokens, the canonical text for the grammar, where each token starts in it, and the language."""

    toks: list[Tok]
    canon: str
    offsets: list[int]
    lang: str
    text: str

    def index_at(self, canon_pos: int) -> int:
        """Index of the token that covers a character offset of the canonical text."""
        return max(0, bisect_right(self.offsets, canon_pos) - 1)


def _word_tok(lex: Lexicon, word: str, start: int, end: int) -> list[Tok]:
    entry = lex.phrases.get((word,))
    if entry is not None:  # known words first, hyphenated ones too («черно-белый»)
        return [] if entry.cls == "FILLER" else [Tok(entry.cls, entry.canon, word, start, end, entry.lang)]
    shape = word_shape(word)
    if shape == "PLAIN":
        return [Tok("WORD", word, word, start, end, "")]
    if shape == "VERSION_CYR":
        return [Tok("VERSION", "v" + word[1:], word, start, end, "")]
    if shape != "JUNK" and not ("-" in word or "_" in word):
        return [Tok(shape, word, word, start, end, "")]
    ordinal = _ORDINAL_RE.fullmatch(word)
    if ordinal is not None:  # 2nd, 3-й, 3-ей: a number that names a version or an iteration
        return [Tok("NUMWORD", ordinal.group(1), word, start, end, "")]
    parts = _SPLIT_RE.split(word)
    tail = lex.phrases.get((parts[-1],))
    if len(parts) > 1 and tail is not None and tail.cls == "PIPELINE":  # speak-pipeline → speak + pipeline
        head = "-".join(parts[:-1])
        return _word_tok(lex, head, start, end - len(parts[-1]) - 1) + [
            Tok("PIPELINE", tail.canon, parts[-1], end - len(parts[-1]), end, tail.lang)]
    if len(parts) > 1 and "-" in word and _names_a_noun(lex, parts):  # реверс-орган, vision-organ: the known parts
        return _compound(lex, word, start)
    if shape != "JUNK":
        return [Tok(shape, word, word, start, end, "")]
    return [Tok("WORD", run, run, start, end, "") for run in _ALPHA_RUN_RE.findall(word)]


_NOUN_PARTS = frozenset({"ORGAN", "CELL", "PIPELINE", "ALIAS", "KIND"})
_ORDINAL_RE = re.compile(r"(\d{1,3})(?:st|nd|rd|th|-?(?:й|я|е|ей|ий|ой|ая|ое|го|его|ого|ую|ю|му|ему|ому|м|ем|ом|ым|им))")


def _names_a_noun(lex: Lexicon, parts: list[str]) -> bool:
    """A hyphenated word is a compound of catalog nouns when one part is one («реверс-орган», "vision-organ");
    a real id (organ-1, edge-detect, analysis.summarize.v1) has no such part, or is known whole."""
    if not all(part.isalpha() for part in parts):  # organ-7, cell-3, plan-1a2b: ids
        return False
    return any((e := lex.phrases.get((part,))) is not None and e.cls in _NOUN_PARTS for part in parts)


def _compound(lex: Lexicon, word: str, start: int) -> list[Tok]:
    out: list[Tok] = []
    pos = start
    for part in word.split("-"):
        if part:
            out.extend(_word_tok(lex, part, pos, pos + len(part)))
        pos += len(part) + 1
    return out


_MEMO_LIMIT = 20_000
_make = tuple.__new__


def _word_protos(lex: Lexicon, word: str) -> tuple[tuple, ...]:
    """The tokens one word makes, with offsets relative to the word; memoised per lexicon (pure function)."""
    memo = lex.word_memo
    protos = memo.get(word)
    if protos is None:
        protos = tuple((t.cls, t.canon, t.text, t.start, t.end, t.lang) for t in _word_tok(lex, word, 0, len(word)))
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[word] = protos
    return protos


def _classify(lex: Lexicon, ps: list[Piece]) -> list[Tok]:
    words = [p.text if p.shape == "word" else "" for p in ps]
    out: list[Tok] = []
    append = out.append
    multi = lex.multi_first
    i, n_ps = 0, len(ps)
    while i < n_ps:
        p = ps[i]
        if p.shape != "word":
            append(_make(Tok, (p.shape, _PUNCT_CANON[p.shape], p.text, p.start, p.end, "")))
            i += 1
            continue
        found = lex.match(words, i) if p.text in multi else None
        if found is not None and found[1] > 1:
            entry, n = found
            if entry.cls != "FILLER":
                append(Tok(entry.cls, entry.canon, " ".join(words[i:i + n]), p.start, ps[i + n - 1].end, entry.lang))
            i += n
            continue
        start = p.start
        for cls, canon, text, s, e, lang in _word_protos(lex, p.text):
            append(_make(Tok, (cls, canon, text, start + s, start + e, lang)))
        i += 1
    return _trim(out)


def _trim(toks: list[Tok]) -> list[Tok]:
    """Drop separators left dangling by removed fillers: «пожалуйста, создай…», «…v1.»."""
    start, end = 0, len(toks)
    while start < end and toks[start].cls in ("COMMA", "COLON", "ARROW"):
        start += 1
    while end > start and toks[end - 1].cls in ("COMMA", "COLON", "ARROW"):
        end -= 1
    out: list[Tok] = []
    for tok in toks[start:end]:
        if tok.cls == "COMMA" and out and out[-1].canon.startswith("!"):
            continue  # «создай мне, пожалуйста, …»: the fillers are gone, their commas go too
        if out and tok.cls in ("COMMA", "ARROW") and out[-1].cls in ("COMMA", "ARROW", "COLON"):
            if tok.cls == "ARROW" and out[-1].cls == "COMMA":
                out[-1] = tok  # «a, затем b» is one separator
            continue
        out.append(tok)
    return out


_NUMBER_BEFORE = frozenset({"VWORD", "TO", "ACCEPT_ITERATION", "REJECT_ITERATION"})


def _numbers(lex: Lexicon, toks: list[Tok]) -> list[Tok]:
    """Number words, ordinals and «прошлую»/"previous" become versions where a version is said; elsewhere
    ("first normalize, then …", "the echo one") they are dropped rather than read as names.

    «третьей версии» → `^version 3`, "version three" → `^version 3`, «до второй» → `^to 2`,
    «прошлую версию» → `^version ^previous` (the resolver finds the catalog's previous major).
    """
    if not any(t.cls == "NUMWORD" or t.text in lex.relative for t in toks):
        return toks
    out: list[Tok] = []
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < n else None
        rel = lex.relative.get(tok.text) if tok.cls in ("WORD", "ARROW", "FILLER", "NUMWORD") else None
        prev = out[-1].cls if out else ""
        if rel is not None and nxt is not None and nxt.cls == "VWORD":  # «прошлую версию», "the next version"
            out.append(nxt)
            out.append(Tok("RELVERSION", "^" + rel, tok.text, tok.start, tok.end, tok.lang))
            i += 2
            continue
        if rel is not None and prev == "VWORD" and tok.cls != "ARROW":  # «версию прошлую»
            out.append(Tok("RELVERSION", "^" + rel, tok.text, tok.start, tok.end, tok.lang))
            i += 1
            continue
        if tok.cls == "NUMWORD":
            if nxt is not None and nxt.cls == "VWORD":  # «третьей версии»: the version word first
                out.append(nxt)
                out.append(Tok("NUMBER", tok.canon, tok.text, tok.start, tok.end, tok.lang))
                i += 2
                continue
            if prev in _NUMBER_BEFORE:
                out.append(Tok("NUMBER", tok.canon, tok.text, tok.start, tok.end, tok.lang))
            i += 1
            continue
        out.append(tok)
        i += 1
    return _trim(out)


def _soft_verbs(lex: Lexicon, toks: list[Tok]) -> list[Tok]:
    """«давай создадим», "let's build": an opener that is a verb alone («давай» = apply) yields to a later verb."""
    if not lex.soft_verbs:
        return toks
    verbs = [i for i, t in enumerate(toks) if t.canon[:1] == "!"]
    if len(verbs) < 2:
        return toks
    drop = {i for i in verbs[:-1] if toks[i].text in lex.soft_verbs and i + 1 < len(toks)
            and any(j > i for j in verbs)}
    return [t for i, t in enumerate(toks) if i not in drop] if drop else toks


def stream(text: str, lex: Lexicon) -> Stream:
    """Classify the text and render the canonical stream the grammar parses."""
    toks = _numbers(lex, _soft_verbs(lex, _classify(lex, pieces(text))))
    offsets: list[int] = []
    parts: list[str] = []
    pos = 0
    for tok in toks:
        if parts and tok.canon[:1].isalnum():  # sigil tokens delimit themselves; raw words need a space
            parts.append(" ")
            pos += 1
        offsets.append(pos)
        parts.append(tok.canon)
        pos += len(tok.canon)
    verb_langs = [t.lang for t in toks if t.lang and t.canon.startswith("!")]
    langs = verb_langs[:1] or [t.lang for t in toks if t.lang]  # the verb decides: «собери speak-pipeline …» is ru
    return _make(Stream, (toks, "".join(parts), offsets, detect_lang(langs, text), text))
