"""parse(text, lexicon) → Command | ParseFailure. Pure, no I/O; "not understood" is a value, not an exception.

text → normalise and classify (tokens.py) → Lark LALR with the contextual lexer over the canonical stream
(grammar/command.lark) → Command (transform.py). Raw Lark errors never leave this module: explain() turns
them into a ParseFailure with a position in the user's text, expected words in the user's language and,
when one known word is a single edit away, a suggestion.
"""

from __future__ import annotations

import re
from functools import lru_cache

import msgspec
from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from neira.commands.hints import expected_words
from neira.commands.lexicon import GRAMMAR_DIR, Lexicon
from neira.commands.frames import gloss, read
from neira.commands.normalize import pieces
from neira.commands.model import BuildPipeline, Command, CreateCell, ParseFailure, Run
from neira.commands.run_input import split_run
from neira.commands.tokens import Stream, Tok, stream
from neira.commands.transform import Rejected, ToCommand

MAX_TEXT = 10_000  # characters looked at; a command is a sentence, not an essay
MEMO_LIMIT = 4096
MEMO_TEXT = 512  # longer phrases (a run's input text) are parsed every time rather than kept
_RECORD_ID_RE = re.compile(r"(?:organ|cell|record|plan)[-_]\w+")
_NOUN_CLASSES = frozenset({"ORGAN", "CELL", "PIPELINE", "ALIAS"})
_DANGLING = frozenset({"TO", "FROM", "VWORD", "LPAR", "COLON", "ARROW", "COMMA"})
_NAME_NEIGHBOURS = ("PIPELINE", "COLON")
_VERB_CLASSES = frozenset({"MAKE", "UPDATE", "APPROVE", "DISABLE", "ROLLBACK", "STATUS", "LIST", "CANCEL_BUILD",
                           "REBUILD", "APPLY", "HELP", "RUN", "SAY", "TRAIN", "ACCEPT_ITERATION",
                           "REJECT_ITERATION"})


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The grammar compiled once: LALR, contextual lexer, transformer applied inline (no tree is built)."""
    text = (GRAMMAR_DIR / "command.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="contextual", transformer=ToCommand(), cache=False)


def parse(text: str, lexicon: Lexicon, *, memo: bool = True) -> Command | ParseFailure:
    """Understand one phrase. Never raises for any str input.

    The strict LALR grammar reads it first; when it fails, the frame tier (frames.py) does. Many phrasings share
    one canonical stream («создай голосовой орган v1», «создайте голосового органа версии 1» →
    `!make@голосовой#organ v1`), so the grammar's parses are memoised per canonical stream on the lexicon, and
    what was said per text (a phrase said again costs one lookup; both bounded, phrases up to MEMO_TEXT
    characters; `memo=False` skips them, to measure a phrase never seen before). Both memos live on the
    lexicon, which is made anew when the catalog's words change.
    """
    if memo and len(text) <= MEMO_TEXT:
        said = lexicon.text_memo.get(text)
        if said is None:
            said = _parse(text, lexicon, memo)
            _remember(lexicon.text_memo, text, said)
        return said  # type: ignore[return-value]
    return _parse(text, lexicon, memo)


def _parse(text: str, lexicon: Lexicon, memo: bool) -> Command | ParseFailure:
    split = split_run(text[:MAX_TEXT], lexicon)
    if split is not None and split.input is not None:  # the input is the user's own text: parse the rest
        command = parse(split.command, lexicon, memo=memo)
        if isinstance(command, Run):
            return msgspec.structs.replace(command, input=split.input)
    s = stream(text[:MAX_TEXT], lexicon)
    if not s.toks:
        return ParseFailure(code="empty", lang=s.lang)  # type: ignore[arg-type]
    command = lexicon.parse_memo.get(s.canon) if memo else None
    if command is not None:
        return _checked(command, s, lexicon)
    said = _grammar_or_frames(s, lexicon)
    if not isinstance(said, ParseFailure) and said.reading is None:  # the grammar's: one entry per stream
        if memo:
            _remember(lexicon.parse_memo, s.canon, said)
        return _checked(said, s, lexicon)
    return said if isinstance(said, ParseFailure) else _checked(said, s, lexicon)


def _remember(table: dict, key: str, value: object) -> None:
    if len(table) >= MEMO_LIMIT:
        table.clear()
    table[key] = value


class _Fed:
    """The classified tokens handed to the LALR parser as they are: they are lexed already (tokens.py), so
    Lark's own lexer does not read the canonical text again."""

    __slots__ = ("tokens",)

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens

    def lex(self, _state: object) -> list[Token]:
        return self.tokens


_TERMINAL = {"ARROW": "_ARROW", "COMMA": "_COMMA", "COLON": "_COLON", "LPAR": "_LPAR", "RPAR": "_RPAR"}
_ORGAN_ID_RE = re.compile(r"organ\.[a-z0-9_\-]+\.v\d+")
_GRAMMAR_ID_RE = re.compile(r"(?:[a-z][a-z0-9_\-]*(?:[.\-_][a-z0-9_\-]+)+|[a-z]+\d[a-z0-9_\-]*)")


def _lalr(s: Stream) -> Command:
    """The grammar over the stream's tokens; the canonical text through Lark's contextual lexer when a token's
    terminal depends on the parser state (an organ id where only an id fits) or its shape is unusual."""
    tokens: list[Token] = []
    for tok, pos in zip(s.toks, s.offsets):
        cls = _TERMINAL.get(tok.cls, tok.cls)
        if cls == "ID":
            if _ORGAN_ID_RE.fullmatch(tok.canon):
                return parser().parse(s.canon)
            if not _GRAMMAR_ID_RE.fullmatch(tok.canon):
                return parser().parse(s.canon)
        elif cls in ("WORD", "VERSION", "NUMBER") and not _SHAPES[cls].fullmatch(tok.canon):
            return parser().parse(s.canon)
        tokens.append(Token(cls, tok.canon, start_pos=pos))
    return parser().parser.parser.parse(_Fed(tokens), "start")


_SHAPES = {"WORD": re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*"), "VERSION": re.compile(r"v\d+(?:\.\d+){0,2}"),
           "NUMBER": re.compile(r"\d+(?:\.\d+){0,2}")}


def _grammar_or_frames(s: Stream, lexicon: Lexicon) -> Command | ParseFailure:
    """The strict grammar first; the frame tier when it fails; the grammar's explanation when neither reads it."""
    try:
        return _lalr(s)
    except UnexpectedInput as exc:
        command = _second_tier(s, lexicon)
        return command if command is not None else _compound_hint(explain(exc, s, lexicon), s)
    except Rejected as exc:
        command = _second_tier(s, lexicon)
        if command is not None:
            return command
        index = next((i for i, t in enumerate(s.toks) if t.cls == "WORD" and t.text == exc.word), len(s.toks) - 1)
        return _failure_at(index, s, lexicon, expected=set())


def _checked(command: Command, s: Stream, lexicon: Lexicon) -> Command | ParseFailure:
    """A reading still refused: a typo of a catalog name in it, a new cell named like a record or a compound."""
    if any(t.cls == "WORD" for t in s.toks):
        typo = _typo_in_items(command, s, lexicon)
        if typo is not None:
            return typo
    junk = _noun_like_cell(command, s, lexicon)
    if junk is not None:
        return junk
    return command if command.lang == s.lang else msgspec.structs.replace(command, lang=s.lang)


def _second_tier(s: Stream, lexicon: Lexicon) -> Command | ParseFailure | None:
    """The frame tier (frames.py) for a phrase the grammar rejected, unless a word in it looks like a typo of a
    known one: a typo is answered with a suggestion, never read around."""
    for i, tok in enumerate(s.toks):
        if tok.cls == "WORD" and tok.text not in lexicon.add_words and tok.text not in lexicon.gap_words:
            typo = _guess_failure(i, tok, s, lexicon, classes=None)
            if typo is not None:
                return typo
    dangling = s.toks[-1].cls in _DANGLING and _last_piece(s.text, lexicon) in _DANGLING
    opened = sum(t.cls == "LPAR" for t in s.toks) - sum(t.cls == "RPAR" for t in s.toks)
    if dangling or opened:  # «обнови зрение до», "(grayscale": the phrase is not finished
        return None
    found = read(s, lexicon)
    if isinstance(found, ParseFailure) or found is None:
        return found
    return msgspec.structs.replace(found, reading=gloss(found, s.lang))


def _compound_hint(failure: ParseFailure, s: Stream) -> ParseFailure:
    """«a vision-organ cell»: a compound of catalog nouns that fits nowhere; suggest it as separate words."""
    if failure.suggestions:
        return failure
    for a, b in zip(s.toks, s.toks[1:]):
        if b.start == a.end + 1 and s.text[a.end:b.start] == "-" and a.cls in _NOUN_CLASSES | {"WORD"} \
                and b.cls in _NOUN_CLASSES | {"WORD"}:
            return msgspec.structs.replace(failure, word=s.text[a.start:b.end], position=a.start,
                                           suggestions=(f"{a.text} {b.text}",))
    return failure


def _last_piece(text: str, lexicon: Lexicon) -> str:
    """The class of what the user typed last, fillers included («… до» → TO; "… to it" → a filler)."""
    ps = pieces(text[-200:])
    if not ps:
        return ""
    last = ps[-1]
    if last.shape != "word":
        return last.shape
    entry = lexicon.phrases.get((last.text,))
    return entry.cls if entry is not None else "WORD"


def _noun_like_cell(command: Command, s: Stream, lexicon: Lexicon) -> ParseFailure | None:
    """A new cell is never named after an id of a record or an organ (organ-1) or a compound of catalog nouns
    ("vision-organ"): such a name is refused, with the catalog words it is made of as the suggestion."""
    if isinstance(command, CreateCell):
        names = [command.cell]
    elif isinstance(command, BuildPipeline):
        names = list(command.steps)
    else:
        return None
    for item in names:
        if item.kind == "alias":
            continue
        parts = item.value.split("-")
        known = [p for p in parts if (e := lexicon.phrases.get((p,))) is not None and e.cls in _NOUN_CLASSES] \
            if all(p.isalpha() for p in parts) else []
        if _RECORD_ID_RE.fullmatch(item.value) or known:
            tok = next((t for t in s.toks if t.text == item.value or item.value in t.text), None)
            return ParseFailure(code="unrecognized_word", lang=s.lang, word=item.value,  # type: ignore[arg-type]
                                position=tok.start if tok else None, suggestions=(" ".join(parts),) if known else ())
    return None


def _typo_in_items(command: Command, s: Stream, lexicon: Lexicon) -> ParseFailure | None:
    """An unknown step, option or cell name one edit from a catalog alias is a typo: suggest, don't execute."""
    name = command.name.value if isinstance(command, BuildPipeline) and command.name else None
    for i, tok in enumerate(s.toks):
        if tok.cls != "WORD":
            continue
        if tok.text == name and _is_name_position(s.toks, i):
            continue
        failure = _guess_failure(i, tok, s, lexicon, classes={"ALIAS"})
        if failure is not None:
            return failure
    return None


def _is_name_position(toks: list[Tok], i: int) -> bool:
    before = toks[i - 1].cls if i > 0 else ""
    after = toks[i + 1].cls if i + 1 < len(toks) else ""
    return before in _NAME_NEIGHBOURS or after in _NAME_NEIGHBOURS or before == "MAKE"


def explain(exc: UnexpectedInput, s: Stream, lexicon: Lexicon) -> ParseFailure:
    """Turn a raw Lark error into a ParseFailure the user can act on."""
    if isinstance(exc, UnexpectedCharacters):
        index, expected = s.index_at(exc.pos_in_stream), set(exc.allowed or ())
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        index, expected = s.index_at(exc.token.start_pos), set(exc.expected or ())
    else:  # ran out of words
        expected = set(getattr(exc, "expected", ()) or ())
        typo = _earlier_typo(len(s.toks) - 1, s, lexicon)
        if typo is not None:
            return typo
        return _failure(s, lexicon, "incomplete", None, expected, position=_text_end(s))
    return _failure_at(index, s, lexicon, expected)


def _failure_at(index: int, s: Stream, lexicon: Lexicon, expected: set[str]) -> ParseFailure:
    tok = s.toks[index]
    if tok.cls == "WORD":
        classes = {t for t in expected if t in lexicon_classes()} or None
        failure = _guess_failure(index, tok, s, lexicon, classes=classes)
        if failure is None and classes is not None:
            failure = _guess_failure(index, tok, s, lexicon, classes=None)
        if failure is not None:
            return failure
    typo = _earlier_typo(index - 1, s, lexicon)
    if typo is not None:
        return typo
    only_verbs_before = all(t.cls in _VERB_CLASSES for t in s.toks[:index])
    if (tok.cls == "WORD" and only_verbs_before) or (index == 0 and tok.cls not in _VERB_CLASSES):
        return _failure(s, lexicon, "unknown_command", tok, expected or set(_VERB_CLASSES))
    code = "unrecognized_word" if tok.cls == "WORD" else "unexpected_word"
    return _failure(s, lexicon, code, tok, expected)


def _earlier_typo(last: int, s: Stream, lexicon: Lexicon) -> ParseFailure | None:
    for i in range(last, -1, -1):
        if s.toks[i].cls == "WORD":
            failure = _guess_failure(i, s.toks[i], s, lexicon, classes=None)
            if failure is not None:
                return failure
    return None


def _guess_failure(index: int, tok: Tok, s: Stream, lexicon: Lexicon, classes: set[str] | None) -> ParseFailure | None:
    guess = lexicon.guess(tok.text, classes)
    if guess.suggestion is not None:
        corrected = _original(s, tok, guess.suggestion)
        return ParseFailure(code="unrecognized_word", lang=s.lang, position=tok.start, word=tok.text,  # type: ignore[arg-type]
                            suggestions=(guess.suggestion,), corrected=corrected)
    if guess.candidates:
        return ParseFailure(code="ambiguous", lang=s.lang, position=tok.start, word=tok.text,  # type: ignore[arg-type]
                            candidates=guess.candidates)
    return None


def _failure(s: Stream, lexicon: Lexicon, code: str, tok: Tok | None, expected: set[str],
             position: int | None = None) -> ParseFailure:
    return ParseFailure(code=code, lang=s.lang, position=tok.start if tok else position,  # type: ignore[arg-type]
                        word=tok.text if tok else None, expected=expected_words(expected, s.lang, lexicon))


def _original(s: Stream, tok: Tok, replacement: str) -> str:
    """The user's phrase with one word replaced, for «did you mean …» replies."""
    return s.text[:tok.start] + replacement + s.text[tok.end:]


def _text_end(s: Stream) -> int:
    return s.toks[-1].end if s.toks else 0


@lru_cache(maxsize=1)
def lexicon_classes() -> frozenset[str]:
    """Terminal classes that come from the lexicon (candidates for typo suggestions)."""
    return _VERB_CLASSES | {"ORGAN", "CELL", "PIPELINE", "KIND", "TO", "FROM", "VWORD", "ALIAS"}
