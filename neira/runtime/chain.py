"""A pure check of a pathway's chain of types, for dry-runs: `type_mismatch` and `no_implementation` risks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from neira.runtime.backends import Backend
from neira.runtime.payloads import TYPES
from neira.runtime.registry import ANY, Impl
from neira.catalog import parse_cell
from neira.plan import Risk
from neira.planning import generated_template
from neira.templates import CellTemplate, OrganTemplate


def backend_of(template: CellTemplate) -> str:
    """The backend a template's own metadata asks for: `script` or `wasm` when it carries that code."""
    return next((name for name in ("script", "wasm") if name in template.metadata), "adapter")


def check_chain(cells: Sequence[CellTemplate], backends: Mapping[str, Backend], backend: str | None = None) -> list[Risk]:
    """Whether each cell's output can feed the next: the types that can flow are followed from the first
    cell's inputs; a cell that can take none of them is a `type_mismatch` naming both cells, a cell without an
    implementation is `no_implementation` (and the chain goes on from what it could have been). Each cell is
    checked on `backend`, or (None) on the one its metadata asks for (`backend_of`)."""
    risks: list[Risk] = []
    flowing: set[str] | None = None  # None: unknown (start, or after a cell without implementation)
    previous: CellTemplate | None = None
    for t in cells:
        impl: Impl | None = None
        name = backend_of(t) if backend is None else backend
        found = backends.get(name)
        if found is None:
            risks.append(Risk(code="no_implementation", severity="error", id=t.id,
                              message=f"{t.id}: backend {name} cannot run cells"))
        else:
            impl = found.find(t)
            if impl is None:
                risks.append(Risk(code="no_implementation", severity="error", id=t.id,
                                  message=f"{t.id}: no implementation {found.implementation(t)!r} on the {name} backend"))
        if impl is None:
            flowing, previous = None, t
            continue
        accepted = set(TYPES) if ANY in impl.inputs else set(impl.inputs)
        if flowing is not None and previous is not None:
            usable = flowing & accepted
            if not usable:
                risks.append(Risk(
                    code="type_mismatch", severity="error", id=t.id, cells=[previous.id, t.id],
                    message=f"{previous.id} gives {', '.join(sorted(flowing))}; {t.id} takes {', '.join(sorted(accepted))}"))
                usable = accepted
            accepted = usable
        flowing = {impl.output_for(x) for x in accepted}
        previous = t
    return risks


def pathway_risks(organ: OrganTemplate, bodies: Mapping[str, Mapping[str, Any]], backends: Mapping[str, Backend],
                  parse: Callable[[Any], CellTemplate] = parse_cell) -> list[Risk]:
    """`check_chain` over every pathway of `organ`, the cells read from `bodies` (cell id → template body; a
    cell missing there gets the generated adapter template a build would draft). In the dry-run risk shape:
    a break is an error, a missing implementation a warning (the cell can still be built and replaced)."""
    out: dict[tuple[str, str | None, tuple[str, ...]], Risk] = {}
    parsed = {c: parse(bodies.get(c) or generated_template(c, organ.id)) for c in organ.cells}
    for pathway in organ.pathways:
        for r in check_chain([parsed[c] for c in pathway.cells if c in parsed], backends):
            severity = "warning" if r.code == "no_implementation" else r.severity
            found = Risk(code=r.code, severity=severity, id=r.id, message=f"pathway {pathway.name}: {r.message}",
                         cells=r.cells)
            out.setdefault((r.code, r.id, tuple(r.cells)), found)
    return list(out.values())
