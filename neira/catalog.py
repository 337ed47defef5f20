"""The cells catalog: immutable template versions as files under `<data-dir>/cells/`, indexed in the DB.

A template is validated before anything is written; its file name is built only from a validated id and
version and checked to stay inside the root; the file is written atomically (tmp + os.replace) inside the
transaction that inserts its index row, so a rejected template never lands on disk.

Reads without a connection are served from an in-memory copy of the index (`CatalogIndex`): versions are
immutable, this process is the only writer, and a registration reaches the copy only after its transaction
commits (see docs/architecture.md, "Caches").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from neira import idempotency
from neira.cell_plan import link_cycle
from neira.errors import Conflict, InvalidRequest, InvalidTemplate, NeiraError, NotFound
from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.templates import (
    ID_RE,
    SEMVER_RE,
    CellTemplate,
    OrganTemplate,
    aliases,
    body_kind,
    parse_cell_template,
    parse_organ_template,
    semver_key,
    template_dict,
)

log = logging.getLogger("neira.catalog")
TMP_PREFIX = ".tmp-"  # a file being written; never a catalog entry (ids start with a letter)

CELL, ORGAN = "cell", "organ"
CELL_KINDS = ("analysis", "action", "memory")
ORGANS_DIR = "_organs"  # cannot clash with a cell id: ids start with a letter


def check_id(value: str, what: str = "id") -> str:
    """`value` if it is a valid catalog id (full match, no trailing newline), else 400 invalid_request."""
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise InvalidRequest(f"{what} must be lower-case letters, digits, '_', '-', '.', start with a letter, at most 128 characters")
    return value


MAX_ID = 128


def check_lookup_id(value: str, what: str = "id") -> str:
    """`value` unless it is an id nothing could ever have (empty, `/`, `..`, control characters, over 128
    characters): 400 invalid_request. Any other id is looked up, and a miss is 404."""
    if not value or len(value) > MAX_ID or "/" in value or ".." in value or not value.isprintable():
        raise InvalidRequest(f"{what} is not an id: at most {MAX_ID} printable characters, no '/' or '..'")
    return value


def check_version(value: str) -> str:
    """`value` if it is a SemVer 2.0 version, else 400 invalid_request."""
    if not isinstance(value, str) or not SEMVER_RE.fullmatch(value):
        raise InvalidRequest("version must be SemVer 2.0, e.g. 1.0.0")
    return value


IDEMPOTENCY_KEY_MAX = 200  # the idempotency table's key column is String(200)


def check_key(key: str | None) -> None:
    """400 `invalid_request` unless an `Idempotency-Key` (when given) is 1 to 200 characters. Shared by the
    catalog, the factory and the organ builder."""
    if key is not None and not 0 < len(key) <= IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters")


def template_digest(t: CellTemplate | OrganTemplate) -> str:
    """The content hash of a template's canonical form (key order and defaults do not matter)."""
    return hashlib.sha256(msgspec.json.encode(template_dict(t), order="sorted")).hexdigest()


def _strict(t: CellTemplate | OrganTemplate) -> None:
    # templates.ID_RE/SEMVER_RE end in `$`, which also matches before a trailing newline: re-check in full.
    errors = []
    if not ID_RE.fullmatch(t.id):
        errors.append({"path": "$.id", "message": "id must not contain line breaks"})
    if not SEMVER_RE.fullmatch(t.version):
        errors.append({"path": "$.version", "message": "version must be SemVer 2.0, e.g. 1.0.0"})
    links = t.links if isinstance(t, CellTemplate) else t.cells
    errors += [{"path": "$.links", "message": f"invalid id {x!r}"} for x in links if not ID_RE.fullmatch(x)]
    if errors:
        raise InvalidTemplate(errors)


def parse_cell(data: Any) -> CellTemplate:
    """A validated cell template (every rule of templates.py plus full-match ids)."""
    t = parse_cell_template(data)
    _strict(t)
    return t


def parse_organ(data: Any) -> OrganTemplate:
    """A validated organ template."""
    t = parse_organ_template(data)
    _strict(t)
    return t


def cell_summary(body: dict[str, Any], versions: list[str]) -> dict[str, Any]:
    """The catalog's list entry for a cell: enough to search and to name it in commands."""
    kind = body_kind(body)[0]
    return {
        "id": body["id"],
        "version": body["version"],
        "versions": versions,
        "kind": kind,
        "kind_value": body.get(f"{kind}_type", ""),
        "description": body.get("description"),
        "aliases": aliases(body.get("metadata") or {}),
        "links": body.get("links", []),
    }


def organ_summary(body: dict[str, Any], versions: list[str]) -> dict[str, Any]:
    """The catalog's list entry for an organ template."""
    meta = body.get("metadata") or {}
    return {
        "id": body["id"],
        "version": body["version"],
        "versions": versions,
        "description": body.get("description") or meta.get("description"),
        "aliases": aliases(meta),
        "cells": body["cells"],
    }


def matches(summary: dict[str, Any], q: str) -> bool:
    """Case-insensitive substring search over id, kind value, description and aliases."""
    needle = q.casefold().replace("ё", "е")
    names = [summary["id"], summary.get("kind_value") or "", summary.get("description") or ""]
    names += [a for langs in summary["aliases"].values() for a in langs]
    return any(needle in n.casefold().replace("ё", "е") for n in names)


def latest(versions: list[str]) -> str:
    """The highest SemVer of `versions`."""
    return max(versions, key=semver_key)


class CatalogIndex:
    """The whole catalog in memory: (family, id) → version → (body, digest), the latest body of every id
    (sorted by id), and parsed cell templates. Bodies are shared with every reader: never mutate them."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], dict[str, tuple[dict[str, Any], str]]] = {}
        self.latest: dict[str, dict[str, dict[str, Any]]] = {CELL: {}, ORGAN: {}}
        self.parsed: dict[tuple[str, str], tuple[CellTemplate, str]] = {}  # (id, version) → cell, digest

    @classmethod
    def of(cls, rows: Iterable[Any]) -> CatalogIndex:
        """The index of `(family, id, version, body, digest)` rows."""
        index = cls()
        for r in rows:
            index.versions.setdefault((r.family, r.id), {})[r.version] = (r.body, r.digest)
        for (family, id), found in sorted(index.versions.items()):
            index.latest[family][id] = found[latest(list(found))][0]
        return index

    def add(self, family: str, id: str, version: str, body: dict[str, Any], digest: str) -> None:
        """One more (immutable) version. The latest-bodies map is replaced, not changed in place, so a
        reader holding the previous one keeps a consistent view."""
        found = self.versions.setdefault((family, id), {})
        found[version] = (body, digest)
        bodies = dict(self.latest[family])
        new_id = id not in bodies
        bodies[id] = found[latest(list(found))][0]
        self.latest[family] = dict(sorted(bodies.items())) if new_id else bodies


class Catalog:
    """Cell and organ templates: `<root>/<id>/<version>.json` (organs under `<root>/_organs/`) + the `catalog` table."""

    def __init__(self, db: Database, root: Path, metrics: Metrics) -> None:
        self.db = db
        self.root = Path(root)
        self.metrics = metrics
        self._index: CatalogIndex | None = None  # loaded on first read, then kept in step by commits
        self.generation = 0  # registrations committed so far: a load that raced one is not kept
        # (family, id, version) whose file this process wrote, restored or found: a missing file of one of
        # these was removed; a missing file of any other is another replica's registration not copied yet
        self._have: set[tuple[str, str, str]] = set()
        self._copying: asyncio.Task[int] | None = None
        db.feed.subscribe("catalog", self.changed)

    # --- files -------------------------------------------------------------------------------------
    def path_for(self, family: str, id: str, version: str) -> Path:
        """The file of (id, version); never outside the root, whatever the input."""
        check_id(id)
        check_version(version)
        base = self.root / ORGANS_DIR if family == ORGAN else self.root
        path = base / id / f"{version}.json"
        root = os.path.realpath(self.root)
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise InvalidRequest("id escapes the catalog")
        return path

    def _write(self, path: Path, body: dict[str, Any]) -> None:
        """Write `path` whole or not at all."""
        os.replace(self._stage(path, body), path)

    @staticmethod
    def _stage(path: Path, body: dict[str, Any]) -> str:
        """The body written and synced to a temporary file beside `path`; returns its name."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=".json")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msgspec.json.format(msgspec.json.encode(body), indent=2) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def restore_file(self, family: str, id: str, version: str, body: dict[str, Any]) -> None:
        """Write the file of an indexed version again from its indexed body (the immune system's heal)."""
        self._write(self.path_for(family, id, version), body)
        self._have.add((family, id, version))

    def had_file(self, family: str, id: str, version: str) -> bool:
        """Whether this data dir should hold this version's file already. On SQLite, every indexed file: its
        one server wrote them all. On a shared database, the files this process wrote, restored or found
        since it started: a replica that was down (or is new) lacks the others' registrations until it
        copies them, and that is not a fault — a file it had and lost is."""
        return self.db.is_sqlite or (family, id, version) in self._have

    async def files_copied(self) -> None:
        """Wait for the copy of other replicas' new registrations into this data dir, if one is under way."""
        if self._copying is not None:
            await asyncio.gather(self._copying, return_exceptions=True)

    # --- writes ------------------------------------------------------------------------------------
    async def register(self, tx: Tx, t: CellTemplate | OrganTemplate) -> bool:
        """Inside `tx`: index and store a validated template. True if new, False if identical;
        409 conflict if the same id+version holds other content. The file is written to a temporary name
        inside `tx` (a full disk fails the change) and renamed into place once `tx` commits; a transaction
        that fails removes it. After a crash in between, the next start writes the file from the index and
        clears the leftover (`repair_files`)."""
        family = ORGAN if isinstance(t, OrganTemplate) else CELL
        digest = template_digest(t)
        c = tables.catalog.c
        await tx.lock("catalog", f"{family}:{t.id}@{t.version}")  # a replica registering it too waits for us
        row = (
            await tx.conn.execute(
                select(c.digest).where(c.family == family, c.id == t.id, c.version == t.version)
            )
        ).first()
        if row is not None:
            if row.digest != digest:
                raise Conflict(f"{t.id} {t.version} is already registered with other content")
            return False
        if isinstance(t, CellTemplate) and ("script" in t.metadata or "wasm" in t.metadata):
            from neira.runtime.sandbox.code import check_code_off_loop  # lupa and wasmtime load only for such cells

            await check_code_off_loop(t)  # it compiles and has what its ABI needs, or 400 invalid_template
        path = self.path_for(family, t.id, t.version)
        body = template_dict(t)
        kind = "organ" if family == ORGAN else t.kind  # type: ignore[union-attr]
        kind_value = "organ" if family == ORGAN else t.kind_value  # type: ignore[union-attr]
        await tx.conn.execute(
            tables.catalog.insert().values(
                family=family, id=t.id, version=t.version, kind=kind, kind_value=kind_value,
                digest=digest, body=body, created_at=time.time(),
            )
        )
        tmp = self._stage(path, body)
        tx.on_rollback(lambda: Path(tmp).unlink(missing_ok=True))
        def placed() -> None:
            os.replace(tmp, path)
            self._have.add((family, t.id, t.version))

        tx.after_commit(placed)
        tx.changed("catalog", f"{family}:{t.id}@{t.version}", (family, t.id, t.version, body, digest))
        return True

    def changed(self, changes: list[Any]) -> None:
        """Templates were registered (the change feed): add them to the index; a change without its value
        drops the index (reloaded on the next read)."""
        for change in changes:
            self.generation += 1
            if change.value is None:
                self._index = None
            elif self._index is not None:
                self._index.add(*change.value)
        if any(c.value is None for c in changes) and (self._copying is None or self._copying.done()):
            # another replica registered: its file belongs in our data dir too (each replica has its own)
            # (a registration of ours may be staged meanwhile: its temporary file is not a leftover)
            self._copying = asyncio.get_running_loop().create_task(self.repair_files(leftovers=False),
                                                                   name="neira catalog copy")

    async def check_links(self, t: CellTemplate) -> None:
        """400 `invalid_template` (path `$.links`) when `t`'s links close a cycle through the catalog — the
        dry-run's own check. Call it inside the writing transaction (after `index()` is loaded) so that two
        templates linking to each other cannot both pass. A missing link is not an error here."""
        if t.links and (cycle := link_cycle(t, await self.latest_view(CELL))):
            message = "links form a cycle: " + " → ".join(cycle)
            raise InvalidTemplate([{"path": "$.links", "message": message}], message)

    async def _put(self, family: str, data: Any, key: str | None) -> tuple[dict[str, str], bool]:
        check_key(key)
        t = parse_organ(data) if family == ORGAN else parse_cell(data)
        digest = idempotency.body_hash(data)
        scope = f"catalog.{family}"
        await self.index()  # loaded before the writer lock: check_links reads it from memory
        async with self.db.transaction() as tx:
            if (hit := await idempotency.replay(tx, scope, key, digest)) is not None:
                return hit[1], hit[0] == 201
            if family == CELL:
                await self.check_links(t)  # type: ignore[arg-type]
            created = await self.register(tx, t)
            body = {"id": t.id, "version": t.version}
            await idempotency.remember(tx, scope, key, digest, 201 if created else 200, body)
        return body, created

    async def put_cell(self, data: Any, idempotency_key: str | None = None) -> tuple[dict[str, str], bool]:
        """Register a cell template: ({id, version}, created). Identical again → created False; 409 otherwise.
        An `Idempotency-Key` replays the first answer for the same body and is a 409 with another one."""
        return await self._put(CELL, data, idempotency_key)

    async def put_organ_template(self, data: Any, idempotency_key: str | None = None) -> tuple[dict[str, str], bool]:
        """Register an organ template (own rules only; its cells are checked by the organ builder)."""
        return await self._put(ORGAN, data, idempotency_key)

    async def register_examples(self, directory: Path) -> dict[str, int]:
        """Load `<dir>/cells/*.json` then `<dir>/organs/*.json`; idempotent. Broken or conflicting files
        are logged and skipped, never fatal. Returns how many versions were new."""
        directory = Path(directory)
        added = {CELL: 0, ORGAN: 0}
        parsed: list[CellTemplate | OrganTemplate] = []
        for family, sub, parse in ((CELL, "cells", parse_cell), (ORGAN, "organs", parse_organ)):
            for file in sorted((directory / sub).glob("*.json")) if (directory / sub).is_dir() else []:
                try:
                    parsed.append(parse(json.loads(file.read_text(encoding="utf-8"))))
                except (ValueError, NeiraError) as exc:
                    log.warning("skipping example %s/%s: %s", sub, file.name, getattr(exc, "reason", exc))
        async with self.db.transaction() as tx:
            for t in parsed:
                try:  # a conflict is raised before anything is written, so the transaction goes on
                    if await self.register(tx, t):
                        added[ORGAN if isinstance(t, OrganTemplate) else CELL] += 1
                except Conflict as exc:
                    log.warning("example %s %s not registered: %s", t.id, t.version, exc.reason)
        await self.repair_files()
        return {"cells": added[CELL], "organs": added[ORGAN]}

    async def repair_files(self, leftovers: bool = True) -> int:
        """Rewrite the file of every indexed version whose file is missing (the index is the source of
        truth; a file lost to a crash or a careless `rm` comes back on the next start), and, with
        `leftovers` (at start, when no write is under way), remove the temporary files of writes a crash
        interrupted."""
        for leftover in self.root.rglob(f"{TMP_PREFIX}*.json") if leftovers and self.root.is_dir() else ():
            leftover.unlink(missing_ok=True)
        c = tables.catalog.c
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(c.family, c.id, c.version, c.body)))
        missing = [(r, self.path_for(r.family, r.id, r.version)) for r in rows]
        missing = [(r, p) for r, p in missing if not p.is_file()]
        for r, path in missing:
            self._write(path, r.body)
        self._have.update((r.family, r.id, r.version) for r in rows)
        if missing:
            log.warning("restored %d catalog file(s) from the index", len(missing))
        return len(missing)

    # --- reads ---------------------------------------------------------------------------------------
    async def index(self) -> CatalogIndex:
        """The in-memory catalog (loaded from the index table on first use). Read-only for callers."""
        if self._index is not None:
            return self._index
        commits = self.generation
        c = tables.catalog.c
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(c.family, c.id, c.version, c.body, c.digest)))
        index = CatalogIndex.of(rows)
        if commits == self.generation:  # nothing committed while we read: the copy is exact
            self._index = index
        return index

    async def versions(self, conn: AsyncConnection, family: str, id: str) -> dict[str, dict[str, Any]]:
        """version → body of every stored version of `id`, read on `conn` (sees the caller's transaction)."""
        c = tables.catalog.c
        rows = await conn.execute(select(c.version, c.body).where(c.family == family, c.id == id))
        return {r.version: r.body for r in rows}

    async def digests(self, family: str, id: str) -> dict[str, str]:
        """version → content digest of every committed version of `id`."""
        return {v: d for v, (_, d) in (await self.index()).versions.get((family, id), {}).items()}

    async def _get(self, family: str, id: str, version: str | None) -> dict[str, Any]:
        check_id(id)
        if version is not None:
            check_version(version)
        body = _pick((await self.index()).versions.get((family, id)), family, id, version)[0]
        return msgspec.json.decode(msgspec.json.encode(body))  # the caller's own copy

    async def get_cell(self, id: str, version: str | None = None) -> dict[str, Any]:
        """A cell template: the given version, or the latest by SemVer."""
        return await self._get(CELL, id, version)

    async def get_organ_template(self, id: str, version: str | None = None) -> dict[str, Any]:
        """An organ template: the given version, or the latest by SemVer."""
        return await self._get(ORGAN, id, version)

    async def cell_template(self, id: str, version: str | None = None) -> tuple[CellTemplate, str]:
        """A catalog cell parsed and validated, with its digest (parsed once per version, then kept)."""
        check_id(id)
        if version is not None:
            check_version(version)
        index = await self.index()
        found = index.versions.get((CELL, id))
        if version is None and found:
            version = index.latest[CELL][id]["version"]
        hit = index.parsed.get((id, version))  # type: ignore[arg-type]
        if hit is None:
            body, digest = _pick(found, CELL, id, version)
            hit = index.parsed[(id, version)] = (parse_cell(body), digest)  # type: ignore[index]
        return hit

    def parsed(self, body: dict[str, Any]) -> tuple[CellTemplate, str]:
        """A cell body parsed, with its digest: from the index's parsed cache when it is the catalog's latest
        body of its id (immutable), else parsed now (a drafted or inline template)."""
        index = self._index
        if index is not None and index.latest[CELL].get(body.get("id")) is body:
            key = (body["id"], body["version"])
            hit = index.parsed.get(key)
            if hit is None:
                t = parse_cell(body)
                hit = index.parsed[key] = (t, template_digest(t))
            return hit
        t = parse_cell(body)
        return t, template_digest(t)

    async def latest_bodies(self, conn: AsyncConnection, family: str = CELL) -> dict[str, dict[str, Any]]:
        """id → body of the latest version, for every id of `family`, read on `conn`."""
        return {id: body for id, (body, _) in (await self._latest(conn, family)).items()}

    async def latest_view(self, family: str = CELL) -> dict[str, dict[str, Any]]:
        """id → latest committed body for every id of `family`, sorted by id, from memory. Shared: read-only."""
        return (await self.index()).latest[family]

    async def _latest(self, conn: AsyncConnection, family: str) -> dict[str, tuple[dict[str, Any], list[str]]]:
        c = tables.catalog.c
        rows = await conn.execute(select(c.id, c.version, c.body).where(c.family == family))
        by_id: dict[str, dict[str, dict[str, Any]]] = {}
        for r in rows:
            by_id.setdefault(r.id, {})[r.version] = r.body
        return {
            id: (vs[latest(list(vs))], sorted(vs, key=semver_key))
            for id, vs in sorted(by_id.items())
        }

    async def _list(self, family: str, summarize: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
        index = await self.index()
        return [summarize(body, sorted(index.versions[(family, id)], key=semver_key))
                for id, body in index.latest[family].items()]

    async def list_cells(self, kind: str | None = None, q: str | None = None, after: str | None = None,
                         limit: int | None = None) -> list[dict[str, Any]]:
        """Latest version of every cell, sorted by id; `kind` filters analysis|action|memory, `q` searches;
        at most `limit` of them after the id `after`."""
        if kind is not None and kind not in CELL_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(CELL_KINDS)}")
        items = sorted(await self._list(CELL, cell_summary), key=lambda s: s["id"])
        found = [s for s in items if (kind is None or s["kind"] == kind) and (not q or matches(s, q))
                 and (after is None or s["id"] > after)]
        return found[:limit] if limit is not None else found

    async def list_organ_templates(self) -> list[dict[str, Any]]:
        """Latest version of every organ template, sorted by id."""
        return await self._list(ORGAN, organ_summary)


def _pick(found: dict[str, tuple[dict[str, Any], str]] | None, family: str, id: str,
          version: str | None) -> tuple[dict[str, Any], str]:
    """(body, digest) of `version` (the latest when None) among `found`; NotFound otherwise."""
    if not found:
        raise NotFound(f"no {'organ template' if family == ORGAN else 'cell'} {id} in the catalog")
    if version is None:
        return found[latest(list(found))]
    if version not in found:
        raise NotFound(f"{id} has no version {version}")
    return found[version]
