"""Render a Command back into a sentence, choosing surface forms at random (for round-trip tests).

The choices mirror the grammar's alternatives and the lexicon's word lists: verb forms per intent and
language, fillers, version forms, separators, case. A sentence rendered from a Command must parse back to it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from neira.commands.lexicon import Lexicon
from neira.commands.model import (
    Apply, Approve, BuildPipeline, CancelBuild, CreateCell, CreateOrgan, Disable, Help, Item, ListItems, Rebuild,
    Rollback, Status, Target, UpdateOrgan,
)

LIFECYCLE = {Approve: "approve", Disable: "disable", Rollback: "rollback", CancelBuild: "cancel_build",
             Rebuild: "rebuild"}
SEPARATORS = {"ru": [" → ", " -> ", " > ", ", ", " затем ", ", потом ", " => "],
              "en": [" → ", " -> ", " > ", ", ", " then ", ", and then ", " => "]}
FILLERS = {"ru": ["", "", "пожалуйста, ", "будь добр, ", "будьте добры, "], "en": ["", "", "please ", "kindly "]}
SAFE_WORDS = ["vocoder", "tokenizer", "denoiser", "upscaler", "sharpen", "blur"]
SAFE_NAMES = ["speak", "morning", "daily", "audio", "quick"]


def render(draw, command, lex: Lexicon) -> str:
    """One random surface sentence for `command` (draw is Hypothesis' draw function)."""
    lang = command.lang
    verb = _verb(draw, lex, lang)
    words: list[str]
    match command:
        case CreateOrgan():
            organ = _noun(draw, lex, "organ", lang)
            alias = _item(command.organ, lex, lang)
            words = [verb(draw(st.sampled_from(["create", "build"])))] + draw(st.sampled_from([[alias, organ], [organ, alias]]))
            words += _version(draw, command.version, lang, with_to=False) + _options(draw, command.options, lex, lang)
        case UpdateOrgan():
            words = [verb("update"), _item(command.organ, lex, lang)] + _version(draw, command.version, lang, True)
            words += _options(draw, command.options, lex, lang)
        case BuildPipeline():
            sep = draw(st.sampled_from(SEPARATORS[lang]))
            steps = sep.join(_item(s, lex, lang) for s in command.steps)
            head = [_item(command.name, lex, lang) + "-" + _noun(draw, lex, "pipeline", lang)] if command.name else \
                [_noun(draw, lex, "pipeline", lang)]
            words = [verb(draw(st.sampled_from(["create", "build"])))] + head + [steps]
        case CreateCell():
            kind = [_noun(draw, lex, command.cell_kind, lang)] if command.cell_kind else []
            cell = _noun(draw, lex, "cell", lang)
            words = [verb("create")] + draw(st.sampled_from([kind + [cell], [cell] + kind]))
            words += [_item(command.cell, lex, lang)] + _version(draw, command.version, lang, with_to=False)
        case Approve() | Disable() | Rollback() | CancelBuild() | Rebuild():
            words = [verb(LIFECYCLE[type(command)])] + _target(draw, command.target, lex, lang)
        case Status():
            words = [verb("status")] + (_target(draw, command.target, lex, lang) if command.target else [])
        case ListItems():
            words = [verb("list"), _noun(draw, lex, command.what[:-1], lang)]
        case Apply():
            words = [verb("apply")] + ([command.plan_id] if command.plan_id else [])
        case Help():
            words = [verb("help")]
    text = draw(st.sampled_from(FILLERS[lang])) + " ".join(w for w in words if w)
    return draw(st.sampled_from([text, text.upper(), text.capitalize(), "  " + text + " ", text + "?", text + "."]))


def _verb(draw, lex: Lexicon, lang: str):
    def pick(intent: str) -> str:
        canon = "!" + lex.verbs[intent].get("terminal", intent)
        forms = [f for f in lex.verbs[intent][lang] if _is(lex, f, canon)]
        return draw(st.sampled_from(forms))
    return pick


def _is(lex: Lexicon, phrase: str, canon: str) -> bool:
    entry = lex.phrases.get(tuple(phrase.split()))
    return entry is not None and entry.canon == canon


def _noun(draw, lex: Lexicon, noun: str, lang: str) -> str:
    forms = [f for f in lex.nouns[noun][lang] if " " not in f]
    return draw(st.sampled_from(forms))


def _item(item: Item, lex: Lexicon, lang: str) -> str:
    if item.kind == "alias":
        alias = lex.aliases[item.value]
        return " ".join(alias.words.get(lang) or next(iter(alias.words.values())))
    return item.value


def _version(draw, version: str | None, lang: str, with_to: bool) -> list[str]:
    if version is None:
        return []
    major, minor, _ = version.split(".")
    short = major if minor == "0" else f"{major}.{minor}"
    word = {"ru": "версии", "en": "version"}[lang]
    forms = [f"v{short}", f"{word} {short}", version] if minor == "0" else [f"v{short}", version]
    to = [{"ru": "до", "en": "to"}[lang]] if with_to and draw(st.booleans()) else []
    return to + [draw(st.sampled_from(forms))]


def _options(draw, options: tuple[Item, ...], lex: Lexicon, lang: str) -> list[str]:
    if not options:
        return []
    return ["(" + ", ".join(_item(o, lex, lang) for o in options) + ")"]


def _target(draw, target: Target, lex: Lexicon, lang: str) -> list[str]:
    noun = [_noun(draw, lex, target.kind, lang)] if target.kind else []
    return noun + [_item(target.ref, lex, lang)]
