"""What the resolver knows: templates and organ versions as plain data (testable without storage).

`Known` indexes cell and organ templates by id and family («organ.vision» → versions 1, 2, …) and picks
one cell when an alias names several («adapter»): the context (a pipeline's own name, the organ being
changed, the previous step's links) breaks the tie, and if nothing does, the caller asks.
"""

from __future__ import annotations

import re
from typing import Iterable

from neira.commands.lexicon import Lexicon
from neira.templates import body_kind

_MAJOR_RE = re.compile(r"^(?P<family>.+)\.v(?P<major>\d+)$")
_SPLIT_RE = re.compile(r"[._\-\s]+")


def split_id(template_id: str) -> tuple[str, int]:
    """organ.vision.v2 → ("organ.vision", 2); an id without a major suffix is its own family at major 0."""
    m = _MAJOR_RE.match(template_id)
    return (m.group("family"), int(m.group("major"))) if m else (template_id, 0)


def version_key(version: str) -> tuple[int, ...]:
    """1.10.0 sorts after 1.9.0; anything unparsable sorts first."""
    try:
        return tuple(int(p) for p in version.split("-")[0].split("+")[0].split("."))
    except ValueError:
        return (-1,)


def cell_kind(template: dict) -> tuple[str, str]:
    """("analysis", "summarize") for a cell template with analysis_type summarize."""
    return body_kind(template)


def words_of(template_id: str) -> set[str]:
    """The words in an id: analysis.speak_adapter.v1 → {analysis, speak, adapter, v1}."""
    return set(_SPLIT_RE.split(template_id))


class Known:
    """Cell and organ templates by id, organ families with their versions, and the lexicon's aliases."""

    def __init__(self, cells: Iterable[dict], organs: Iterable[dict], lexicon: Lexicon,
                 organ_ids: Iterable[str] = ()) -> None:
        self.cells: dict[str, dict] = _newest_by_id(cells)
        self.organs: dict[str, dict] = _newest_by_id(organs)
        self.lexicon = lexicon
        self.organ_majors: dict[str, set[int]] = {}
        for template_id in list(self.organs) + list(organ_ids):
            family, major = split_id(template_id)
            self.organ_majors.setdefault(family, set()).add(major)
        self.cell_types: dict[str, list[str]] = {}
        for cid, cell in sorted(self.cells.items()):
            self.cell_types.setdefault(cell_kind(cell)[1], []).append(cid)
        # parsed command → what it resolved to against this view (resolve.resolve_known); the parse memo hands
        # out the same command object for a phrase said again, so it is found by identity
        self.resolved: dict[int, tuple[object, object]] = {}

    def newest_organ(self, family: str) -> dict | None:
        """The catalog template of the family's highest major version that has a template."""
        majors = sorted((split_id(i)[1], i) for i in self.organs if split_id(i)[0] == family)
        return self.organs[majors[-1][1]] if majors else None

    def same_organ(self, family: str, cells: list[str], pathways: list[dict]) -> dict | None:
        """The family's newest catalog template with exactly these cells and pathways (a repeated pipeline
        reuses it instead of registering another version)."""
        same = [o for i, o in self.organs.items() if split_id(i)[0] == family
                and o.get("cells") == cells and [p.get("cells") for p in o.get("pathways") or []] == [p["cells"] for p in pathways]]
        return max(same, key=lambda o: split_id(o["id"])[1], default=None)

    def newest_major(self, family: str) -> int:
        """The highest major known for an organ family, from templates and built organs alike."""
        return max(self.organ_majors.get(family, {0}))

    def organ_families(self, alias: str) -> list[str]:
        """Organ families an alias lemma names."""
        entry = self.lexicon.aliases.get(alias)
        return sorted({split_id(o)[0] for o in entry.organs}) if entry else []

    def cell_candidates(self, alias: str) -> list[str]:
        """Cell ids an alias lemma names, newest per family."""
        entry = self.lexicon.aliases.get(alias)
        return _newest_per_family(entry.cells) if entry else []

    def cell_by_id_or_type(self, value: str) -> str | None:
        """A literal cell id, or a kind value such as text_normalize (the newest cell of that type)."""
        if value in self.cells:
            return value
        found = self.cell_types.get(value.replace("-", "_"))
        return _newest_per_family(found)[-1] if found else None

    def pick(self, candidates: list[str], context_words: set[str], context_cells: set[str],
             previous: str | None) -> str | None:
        """One candidate, chosen by context; None when the context does not decide."""
        if len(candidates) == 1:
            return candidates[0]
        for test in (
            lambda c: c in context_cells,
            lambda c: bool(words_of(c) & context_words),
            lambda c: previous is not None and previous in (self.cells.get(c, {}).get("links") or []),
            lambda c: previous is not None and previous in self.upstream(c),
        ):
            chosen = [c for c in candidates if test(c)]
            if len(chosen) == 1:
                return chosen[0]
        return None


    def upstream(self, cell_id: str) -> set[str]:
        """Every cell reachable through links from `cell_id` (what it builds on, directly or not)."""
        seen: set[str] = set()
        todo = list(self.cells.get(cell_id, {}).get("links") or [])
        while todo:
            link = todo.pop()
            if link not in seen:
                seen.add(link)
                todo.extend(self.cells.get(link, {}).get("links") or [])
        return seen


def _newest_by_id(templates: Iterable[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for t in templates:
        tid = t.get("id")
        if isinstance(tid, str) and (tid not in out or version_key(t.get("version", "")) > version_key(out[tid].get("version", ""))):
            out[tid] = t
    return out


def _newest_per_family(ids: Iterable[str]) -> list[str]:
    best: dict[str, tuple[int, str]] = {}
    for i in ids:
        family, major = split_id(i)
        if family not in best or major > best[family][0]:
            best[family] = (major, i)
    return sorted(v[1] for v in best.values())
