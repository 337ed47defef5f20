"""The cells catalog: safe file names, immutable versions, atomic writes with the index, examples, search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from neira.catalog import Catalog, cell_summary, matches, template_digest, parse_cell
from neira.errors import Conflict, InvalidRequest, InvalidTemplate, NotFound
from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.db import Database


def cell(id: str = "analysis.summarize.v1", version: str = "1.0.0", **extra) -> dict:
    body = {"id": id, "version": version, "analysis_type": "summarize", "links": [], "metadata": {"schema": "v1"}}
    return body | extra


ORGAN = {
    "id": "organ.echo.v1", "version": "1.0.0", "roles": ["echo"], "cells": ["action.echo.v1"],
    "pathways": [{"name": "main", "cells": ["action.echo.v1"]}], "policies": {"stage": "draft", "hitl": True},
    "metadata": {"schema": "v1"},
}


@pytest.fixture
async def catalog(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'neira.db'}")
    await db.create()
    yield Catalog(db, tmp_path / "cells", Metrics())
    await db.close()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def index_rows(catalog: Catalog) -> list[tuple[str, str, str]]:
    c = tables.catalog.c
    async with catalog.db.read() as conn:
        return [tuple(r) for r in await conn.execute(select(c.family, c.id, c.version).order_by(c.family, c.id, c.version))]


async def test_put_writes_the_file_and_the_index(catalog: Catalog):
    assert await catalog.put_cell(cell()) == ({"id": "analysis.summarize.v1", "version": "1.0.0"}, True)
    assert files(catalog.root) == ["analysis.summarize.v1/1.0.0.json"]
    assert json.loads((catalog.root / "analysis.summarize.v1" / "1.0.0.json").read_text()) == cell()
    assert await index_rows(catalog) == [("cell", "analysis.summarize.v1", "1.0.0")]


async def test_identical_again_is_not_created_whatever_the_key_order(catalog: Catalog):
    await catalog.put_cell(cell())
    reordered = dict(reversed(list(cell().items())))
    assert await catalog.put_cell(reordered) == ({"id": "analysis.summarize.v1", "version": "1.0.0"}, False)
    no_links = {k: v for k, v in cell().items() if k != "links"}  # links default to [] — same content
    assert (await catalog.put_cell(no_links))[1] is False


async def test_idempotency_key_replays_the_first_answer(catalog: Catalog):
    assert await catalog.put_cell(cell(), "k1") == ({"id": "analysis.summarize.v1", "version": "1.0.0"}, True)
    assert await catalog.put_cell(cell(), "k1") == ({"id": "analysis.summarize.v1", "version": "1.0.0"}, True)
    assert await catalog.put_cell(cell(), "k2") == ({"id": "analysis.summarize.v1", "version": "1.0.0"}, False)
    with pytest.raises(Conflict):
        await catalog.put_cell(cell(version="2.0.0"), "k1")
    with pytest.raises(InvalidRequest):
        await catalog.put_cell(cell(), "")
    assert await index_rows(catalog) == [("cell", "analysis.summarize.v1", "1.0.0")]


async def test_same_version_with_other_content_is_a_conflict_and_keeps_the_first(catalog: Catalog):
    await catalog.put_cell(cell())
    with pytest.raises(Conflict):
        await catalog.put_cell(cell(description="other"))
    assert json.loads((catalog.root / "analysis.summarize.v1" / "1.0.0.json").read_text()) == cell()
    assert await catalog.get_cell("analysis.summarize.v1") == cell()


@pytest.mark.parametrize("bad_id", ["../evil", "a/../../x", "a/b", "..", "/etc/passwd", "Abc", "abc\n", "a" * 129, "a\\b"])
async def test_unsafe_ids_are_rejected_and_never_touch_the_disk(catalog: Catalog, bad_id: str):
    with pytest.raises(InvalidTemplate):
        await catalog.put_cell(cell(id=bad_id))
    with pytest.raises(InvalidRequest):
        await catalog.get_cell(bad_id)
    with pytest.raises(InvalidRequest):
        catalog.path_for("cell", bad_id, "1.0.0")
    assert files(catalog.root) == [] and await index_rows(catalog) == []


@pytest.mark.parametrize("bad_version", ["../1.0.0", "1.0", "1.0.0/../../x", "1.0.0\n", "v1"])
async def test_unsafe_versions_are_rejected(catalog: Catalog, bad_version: str):
    with pytest.raises(InvalidTemplate):
        await catalog.put_cell(cell(version=bad_version))
    with pytest.raises(InvalidRequest):
        await catalog.get_cell("analysis.summarize.v1", bad_version)
    assert files(catalog.root) == []


async def test_a_rejected_template_never_lands_on_disk(catalog: Catalog):
    with pytest.raises(InvalidTemplate) as err:
        await catalog.put_cell(cell(links=["analysis.summarize.v1"], confidence_threshold=2))
    assert err.value.errors == [
        {"path": "$.links[0]", "message": "a cell cannot link to itself"},
        {"path": "$.confidence_threshold", "message": "must be between 0 and 1"},
    ]
    assert files(catalog.root) == [] and await index_rows(catalog) == []


async def test_a_failed_file_write_leaves_no_index_row(tmp_path: Path, catalog: Catalog):
    catalog.root.write_text("not a directory")  # the file cannot be written under it
    with pytest.raises(OSError):
        await catalog.put_cell(cell())
    assert await index_rows(catalog) == []


async def test_no_temporary_files_are_left(catalog: Catalog):
    for v in ("1.0.0", "1.1.0"):
        await catalog.put_cell(cell(version=v))
    assert files(catalog.root) == ["analysis.summarize.v1/1.0.0.json", "analysis.summarize.v1/1.1.0.json"]


async def test_latest_is_by_semver_and_versions_are_addressable(catalog: Catalog):
    for v in ("1.2.0", "1.10.0", "1.9.0", "1.10.0-rc.1"):
        await catalog.put_cell(cell(version=v))
    assert (await catalog.get_cell("analysis.summarize.v1"))["version"] == "1.10.0"
    assert await catalog.get_cell("analysis.summarize.v1", "1.9.0") == cell(version="1.9.0")
    with pytest.raises(NotFound):
        await catalog.get_cell("analysis.summarize.v1", "3.0.0")
    with pytest.raises(NotFound):
        await catalog.get_cell("analysis.unknown.v1")
    listed = await catalog.list_cells()
    assert [(s["id"], s["version"], s["versions"]) for s in listed] == [
        ("analysis.summarize.v1", "1.10.0", ["1.2.0", "1.9.0", "1.10.0-rc.1", "1.10.0"])
    ]


async def test_list_filters_by_kind_and_searches(catalog: Catalog):
    await catalog.put_cell(cell(description="Short summary of a text", metadata={"schema": "v1", "aliases": {"ru": ["Резюме"], "en": ["digest"]}}))
    await catalog.put_cell({"id": "memory.context.v1", "version": "1.0.0", "memory_type": "context", "metadata": {"schema": "v1"}})
    await catalog.put_cell({"id": "action.echo.v1", "version": "1.0.0", "action_type": "echo", "metadata": {"schema": "v1"}})
    ids = lambda items: [s["id"] for s in items]  # noqa: E731
    assert ids(await catalog.list_cells()) == ["action.echo.v1", "analysis.summarize.v1", "memory.context.v1"]
    assert ids(await catalog.list_cells(kind="memory")) == ["memory.context.v1"]
    assert ids(await catalog.list_cells(kind="action", q="summ")) == []
    for q in ("резюме", "DIGEST", "summarize", "short summary", "context", "echo"):
        assert len(await catalog.list_cells(q=q)) == 1, q
    with pytest.raises(InvalidRequest):
        await catalog.list_cells(kind="summarize")
    assert (await catalog.list_cells(q="резюме"))[0] == {
        "id": "analysis.summarize.v1", "version": "1.0.0", "versions": ["1.0.0"], "kind": "analysis",
        "kind_value": "summarize", "description": "Short summary of a text",
        "aliases": {"ru": ["Резюме"], "en": ["digest"]}, "links": [],
    }


def test_search_treats_yo_as_ye():
    summary = cell_summary(cell(metadata={"schema": "v1", "aliases": {"ru": ["чёрно-белый"]}}), ["1.0.0"])
    assert matches(summary, "черно") and matches(summary, "ЧЁРНО")


def test_digest_ignores_key_order_and_defaults():
    assert template_digest(parse_cell(cell())) == template_digest(parse_cell({k: v for k, v in reversed(cell().items()) if k != "links"}))
    assert template_digest(parse_cell(cell())) != template_digest(parse_cell(cell(description="x")))


async def test_organ_templates_live_apart_from_cells(catalog: Catalog):
    assert await catalog.put_organ_template(ORGAN) == ({"id": "organ.echo.v1", "version": "1.0.0"}, True)
    assert await catalog.put_organ_template(ORGAN) == ({"id": "organ.echo.v1", "version": "1.0.0"}, False)
    assert await catalog.get_organ_template("organ.echo.v1") == ORGAN
    assert files(catalog.root) == ["_organs/organ.echo.v1/1.0.0.json"]
    assert await catalog.list_cells() == []
    assert await catalog.list_organ_templates() == [{
        "id": "organ.echo.v1", "version": "1.0.0", "versions": ["1.0.0"], "description": None, "aliases": {},
        "cells": ["action.echo.v1"],
    }]
    with pytest.raises(InvalidTemplate):
        await catalog.put_organ_template(ORGAN | {"id": "echo"})
    with pytest.raises(NotFound):
        await catalog.get_cell("organ.echo.v1")


def write_examples(root: Path, cells: dict[str, object], organs: dict[str, object]) -> Path:
    for sub, items in (("cells", cells), ("organs", organs)):
        (root / sub).mkdir(parents=True)
        for name, body in items.items():
            (root / sub / f"{name}.json").write_text(body if isinstance(body, str) else json.dumps(body))
    return root


async def test_register_examples_is_idempotent_and_skips_broken_files(tmp_path: Path, catalog: Catalog):
    examples = write_examples(
        tmp_path / "examples",
        {"action.echo.v1": {"id": "action.echo.v1", "version": "1.0.0", "action_type": "echo", "metadata": {"schema": "v1"}},
         "broken": "{not json", "invalid": cell(id="../x")},
        {"organ.echo.v1": ORGAN},
    )
    assert await catalog.register_examples(examples) == {"cells": 1, "organs": 1}
    assert await catalog.register_examples(examples) == {"cells": 0, "organs": 0}
    assert await index_rows(catalog) == [("cell", "action.echo.v1", "1.0.0"), ("organ", "organ.echo.v1", "1.0.0")]


async def test_a_changed_example_under_the_same_version_keeps_the_stored_one(tmp_path: Path, catalog: Catalog):
    await catalog.put_cell(cell())
    examples = write_examples(tmp_path / "examples", {"s": cell(description="changed"), "t": cell(id="analysis.t.v1")}, {})
    assert await catalog.register_examples(examples) == {"cells": 1, "organs": 0}
    assert await catalog.get_cell("analysis.summarize.v1") == cell()


async def test_lost_files_come_back_from_the_index(tmp_path: Path, catalog: Catalog):
    await catalog.put_cell(cell())
    (catalog.root / "analysis.summarize.v1" / "1.0.0.json").unlink()
    (catalog.root / "analysis.summarize.v1" / ".tmp-interrupted.json").write_text("{")  # a write a crash cut short
    assert await catalog.register_examples(tmp_path / "nowhere") == {"cells": 0, "organs": 0}
    assert json.loads((catalog.root / "analysis.summarize.v1" / "1.0.0.json").read_text()) == cell()
    assert files(catalog.root) == ["analysis.summarize.v1/1.0.0.json"]
    assert await catalog.repair_files() == 0


async def test_a_transaction_that_fails_leaves_no_file_and_no_entry(catalog: Catalog):
    with pytest.raises(RuntimeError):
        async with catalog.db.transaction() as tx:
            assert await catalog.register(tx, parse_cell(cell()))
            raise RuntimeError("a later step of the same change failed")
    assert files(catalog.root) == [] and await index_rows(catalog) == []
    with pytest.raises(NotFound):
        await catalog.get_cell("analysis.summarize.v1")
    await catalog.put_cell(cell())  # and the same version can still be registered
    assert files(catalog.root) == ["analysis.summarize.v1/1.0.0.json"]


async def test_a_missing_examples_dir_registers_nothing(tmp_path: Path, catalog: Catalog):
    assert await catalog.register_examples(tmp_path / "nowhere") == {"cells": 0, "organs": 0}


async def test_the_shipped_examples_register(catalog: Catalog):
    shipped = Path(__file__).resolve().parents[2] / "examples"
    added = await catalog.register_examples(shipped)
    assert added == {"cells": len(list((shipped / "cells").glob("*.json"))), "organs": len(list((shipped / "organs").glob("*.json")))}
    assert (await catalog.get_cell("analysis.grayscale.v1"))["id"] == "analysis.grayscale.v1"
    assert (await catalog.get_organ_template("organ.voice.v1"))["cells"] == [
        "analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]
