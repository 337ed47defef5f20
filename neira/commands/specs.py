"""Templates the Command Cell writes: derived organ versions, pipeline organs, new adapter cell drafts."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from neira.commands.known import Known, split_id
from neira.commands.morph import slug


@dataclass
class Steps:
    """Resolved pathway steps: catalog ids in order, and drafts for the steps the catalog lacks."""

    ids: list[str] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)


def _aliases(lang: str, word: str) -> dict[str, list[str]]:
    return {"ru": [word] if lang == "ru" else [], "en": [word] if lang == "en" else []}


def new_cell(word: str, lang: str, link: str | None, kind: str = "analysis", version: str | None = None) -> dict[str, Any]:
    """A draft CellTemplate for a name the catalog does not know («foo» → analysis.foo.v1), backend adapter."""
    name = slug(word)
    major = int(version.split(".")[0]) if version else 1
    return {
        "id": f"{kind}.{name}.v{major}",
        "version": version or f"{major}.0.0",
        f"{kind}_type": name,
        "links": [link] if link else [],
        "metadata": {"schema": "v1", "aliases": _aliases(lang, word), "draft": True, "origin": "command"},
        "description": f"Adapter cell draft planned by a command for «{word}».",
    }


def versioned_cell(template: dict, version: str | None) -> dict[str, Any]:
    """The catalog cell itself, or a copy at a newer major when the command asked for one."""
    family, major = split_id(template["id"])
    if version is None or int(version.split(".")[0]) == major:
        return template
    new_major = int(version.split(".")[0])
    out = copy.deepcopy(template)
    out.update(id=f"{family}.v{new_major}", version=version)
    out.setdefault("metadata", {})["derived_from"] = template["id"]
    return out


def derive_organ(base: dict, major: int, version: str, inserts: list[str], known: Known) -> dict[str, Any]:
    """A new organ version from `base`, with `inserts` placed into its first pathway."""
    family, _ = split_id(base["id"])
    out = copy.deepcopy(base)
    pathways = out.get("pathways") or [{"name": "main", "cells": list(out.get("cells") or [])}]
    route: list[str] = list(pathways[0]["cells"])
    cells: list[str] = list(out.get("cells") or [])
    for cell_id in inserts:
        if cell_id in route:
            continue
        route.insert(_position(cell_id, route, known), cell_id)
        if cell_id not in cells:
            anchor = [c for c in route[:route.index(cell_id)] if c in cells]
            cells.insert(cells.index(anchor[-1]) + 1 if anchor else len(cells), cell_id)
    pathways[0] = {**pathways[0], "cells": route}
    out.update(id=f"{family}.v{major}", version=version, cells=cells, pathways=pathways,
               policies={"stage": "draft", "hitl": bool((base.get("policies") or {}).get("hitl", True))})
    out.setdefault("metadata", {"schema": "v1"})["derived_from"] = base["id"]
    return out


def _position(cell_id: str, route: list[str], known: Known) -> int:
    """Right after the last route cell it links to; otherwise before the final (adapter) cell."""
    links = set((known.cells.get(cell_id) or {}).get("links") or [])
    linked = [i for i, c in enumerate(route) if c in links]
    if linked:
        return linked[-1] + 1
    return max(len(route) - 1, 0) if len(route) > 1 else len(route)


def pipeline_organ(family: str, major: int, name: str, steps: list[str], lang: str, known: Known) -> dict[str, Any]:
    """An OrganTemplate with one ordered pathway made of `steps`."""
    base = known.newest_organ(family)
    aliases = (base or {}).get("metadata", {}).get("aliases") or _aliases(lang, name)
    template: dict[str, Any] = {
        "id": f"{family}.v{major}",
        "version": f"{major}.0.0",
        "roles": list((base or {}).get("roles") or [name]),
        "cells": list(steps),
        "pathways": [{"name": name, "cells": list(steps)}],
        "policies": {"stage": "draft", "hitl": True},
        "metadata": {"schema": "v1", "aliases": aliases, "origin": "command"},
    }
    if base is not None:
        template["metadata"]["derived_from"] = base["id"]
    return template

