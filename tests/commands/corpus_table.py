"""The understanding corpus (tests/commands/corpus.tsv): phrases as people type them, each with the whole meaning
expected, and a held-out quarter.

Each row is `split<TAB>text<TAB>expected`, where `expected` is the whole summary of what the phrase must mean
(`summary()` below: intent, template id and version, cells, pathways, target, planned drafts, …) or
`{"understood": false}`. The expectations were made once by `build_corpus()` from the source files in
tests/commands/corpus/ — groups of phrases under a canonical phrase the strict grammar already understood, so a
phrase means exactly what its canonical phrase means (the same typed spec). The split is fixed by a hash of the
text (a quarter `held`); held rows were never looked at while tuning the lexicon or the frame tier.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from neira.commands import ParseFailure, parse, resolve

HERE = Path(__file__).parent
TABLE = HERE / "corpus.tsv"
SOURCES = HERE / "corpus"


class Row(NamedTuple):
    split: str
    text: str
    expect: dict[str, Any]
    line: int


def split_of(text: str) -> str:
    """held for a quarter of the phrases (by a hash of the text), dev for the rest."""
    return "held" if hashlib.sha1(text.encode("utf-8")).digest()[0] % 4 == 0 else "dev"


def summary(text: str, lexicon, known) -> dict[str, Any]:
    """What a phrase means, as one whole value: the parts of the resolution a user would see in the plan."""
    command = parse(text, lexicon)
    res = command if isinstance(command, ParseFailure) else resolve(command, known)
    if isinstance(res, ParseFailure):
        return {"understood": False}
    out: dict[str, Any] = {"intent": res.intent}
    if res.spec is not None:
        template = res.spec["template"] if res.spec["kind"] == "organ_template" else res.spec["spec"]["template"]
        out["template"] = template["id"]
        out["version"] = template["version"]
        if res.spec["kind"] == "organ_template":
            out["cells"] = list(template.get("cells") or [])
            out["pathways"] = [list(p["cells"]) for p in template.get("pathways") or []]
    for key in ("target", "base", "what", "plan_id", "input", "iteration", "verdict"):
        value = getattr(res, key)
        if value is not None:
            out[key] = value
    if res.new_cells:
        out["new_cells"] = [c["id"] for c in res.new_cells]
    return out


def load_rows() -> list[Row]:
    rows = []
    for n, line in enumerate(TABLE.read_text(encoding="utf-8").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        split, text, expect = line.split("\t")
        rows.append(Row(split, text, json.loads(expect), n))
    return rows


def build_corpus(lexicon, known) -> str:  # pragma: no cover - run once by hand to make corpus.tsv
    """corpus.tsv's text from the sources; a canonical phrase the grammar does not understand is an error."""
    lines = ["# split\ttext\texpected (whole summary; see tests/commands/corpus_table.py). Made from "
             "tests/commands/corpus/source_*.txt by build_corpus()."]
    seen: set[str] = set()
    for path in sorted(SOURCES.glob("source_*.txt")):
        expect: dict[str, Any] | None = None
        for raw in path.read_text(encoding="utf-8").splitlines():
            if not raw.strip():
                continue
            if raw.startswith("= "):
                canon = raw[2:].strip()
                expect = {"understood": False} if canon == "!refuse" else summary(canon, lexicon, known)
                if canon != "!refuse" and not expect.get("intent"):
                    raise ValueError(f"{path.name}: canonical phrase not understood: {canon}")
                continue
            text = raw.strip()
            if text in seen:
                raise ValueError(f"{path.name}: duplicate phrase: {text}")
            seen.add(text)
            lines.append(f"{split_of(text)}\t{text}\t{msgspec.json.encode(expect).decode()}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.path.insert(0, str(HERE.parents[1]))
    from neira.commands import Known, Lexicon
    from tests.commands.conftest import load_examples

    cells, organs = load_examples()
    lex = Lexicon.from_templates(cells, organs)
    TABLE.write_text(build_corpus(lex, Known(cells, organs, lex)), encoding="utf-8")
    print(f"wrote {TABLE}")
