"""Shared fixtures: the example catalog, its lexicon, and a resolver view over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neira.commands import Known, Lexicon

ROOT = Path(__file__).resolve().parents[2]


def load_examples() -> tuple[list[dict], list[dict]]:
    """Cell and organ templates shipped in examples/."""
    cells = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "cells").glob("*.json"))]
    organs = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "organs").glob("*.json"))]
    return cells, organs


@pytest.fixture(scope="session")
def examples() -> tuple[list[dict], list[dict]]:
    return load_examples()


@pytest.fixture(scope="session")
def lexicon(examples) -> Lexicon:
    return Lexicon.from_templates(*examples)


@pytest.fixture(scope="session")
def known(examples, lexicon) -> Known:
    return Known(examples[0], examples[1], lexicon)
