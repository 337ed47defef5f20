"""The same create/update/build intents written as a hassil grammar, the way a hassil user would.

Word lists come from the same data neira uses (verbs from grammar/lexicon.json, organ and cell aliases from
the catalog, fillers as skip words); hassil has no morphology, so the aliases go in as written.
Benchmark-only: hassil is in pyproject's `bench` extra.
"""

from __future__ import annotations

from typing import Any


def _alt(words: list[str]) -> str:
    return "(" + "|".join(sorted(set(words), key=len, reverse=True)) + ")"


def build_intents(lexicon_data: dict[str, Any], cells: list[dict], organs: list[dict]):
    """hassil Intents for create_organ, update_organ and build_pipeline (RU and EN in one bundle)."""
    from hassil import Intents

    verbs = lexicon_data["verbs"]
    nouns = lexicon_data["nouns"]
    particles = lexicon_data["particles"]
    both = lambda table: table["ru"] + table["en"]  # noqa: E731
    organ_values = [{"in": alias, "out": o["id"].split(".")[1]}
                    for o in organs for lang in ("ru", "en") for alias in o["metadata"]["aliases"][lang]]
    data = {
        "language": "ru",
        "intents": {
            "create_organ": {"data": [{"sentences": [
                "<make> {organ} <organ_word> [<version>]",
                "<make> <organ_word> {organ} [<version>]",
            ]}]},
            "update_organ": {"data": [{"sentences": [
                "<update> {organ} [<organ_word>] [<to>] [<version>]",
                "<update> <organ_word> {organ} [<to>] [<version>]",
                "<update> {organ} [<organ_word>] [<to>] [<version>] {options}",
                "<update> <organ_word> {organ} [<to>] [<version>] {options}",
            ]}]},
            "build_pipeline": {"data": [{"sentences": [
                "<make> {name}[-]<pipeline_word> {steps}",
                "<make> <pipeline_word> {name} {steps}",
            ]}]},
        },
        "expansion_rules": {
            "make": _alt(both(verbs["create"]) + both(verbs["build"])),
            "update": _alt(both(verbs["update"])),
            "organ_word": _alt(both(nouns["organ"])),
            "pipeline_word": _alt(both(nouns["pipeline"])),
            "to": _alt(both(particles["to"])),
            "version": "(v{major}|" + _alt(both(particles["version"])) + " {major}|{major}.0.0)",
        },
        "lists": {
            "organ": {"values": organ_values},
            "options": {"wildcard": True},  # «(grayscale)»: hassil cannot match punctuation in a list
            "major": {"range": {"from": 1, "to": 99}},
            "name": {"wildcard": True},
            "steps": {"wildcard": True},
        },
    }
    return Intents.from_dict(data), lexicon_data["fillers"]["ru"] + lexicon_data["fillers"]["en"]


def recognize(text: str, intents, skip_words: list[str]):
    """hassil's best match: (intent name, slots) or None."""
    from hassil import recognize as hassil_recognize

    result = hassil_recognize(text, intents, skip_words=skip_words)
    if result is None:
        return None
    return result.intent.name, {k: v.value for k, v in result.entities.items()}
