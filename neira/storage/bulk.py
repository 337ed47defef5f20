"""Bulk inserts: many rows in one statement. On SQLite the rows go straight to the driver, because
SQLAlchemy's per-row parameter processing (and the stdlib json it calls) costs more than the insert itself
at 10k rows; other dialects take the portable Core path."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import JSON, Boolean, Table, insert

from neira.storage.db import Tx

json_encoder = msgspec.json.Encoder()
DRIVER_FAST_PATH = {"sqlite"}  # dialects whose batched writes skip SQLAlchemy's per-row processing
MAX_VARIABLES = 32766  # SQLite's limit on a statement's parameters (since 3.32)


def fast_path(tx: Tx) -> bool:
    """Whether batched writes in `tx` go straight to the driver."""
    return tx.conn.dialect.name in DRIVER_FAST_PATH


def _driver_params(table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as the SQLAlchemy types would write them: JSON as text (one encode per distinct object, so a
    template shared by a whole batch is encoded once), booleans as 0/1."""
    convert = [(i, isinstance(table.c[c].type, JSON), {}) for i, c in enumerate(cols)
               if isinstance(table.c[c].type, JSON | Boolean)]
    out = []
    for row in rows:
        p = list(row)
        for i, is_json, memo in convert:
            v = p[i]
            if is_json:
                text = memo.get(id(v))
                if text is None:
                    text = memo[id(v)] = json_encoder.encode(v).decode()
                p[i] = text
            elif v is not None:
                p[i] = int(bool(v))
        out.append(tuple(p))
    return out


async def insert_tuples(tx: Tx, table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows, given as tuples in `cols` order, with one executemany.

    On SQLite the rows go straight to the driver: SQLAlchemy's per-row parameter processing (and the
    stdlib json it calls) costs more than the insert itself at 10k rows. Other dialects take the Core path.
    """
    if not rows:
        return
    if not fast_path(tx):
        await tx.conn.execute(insert(table), [dict(zip(cols, r, strict=True)) for r in rows])
        return
    names = ", ".join(f'"{c}"' for c in cols)
    one = f'({", ".join("?" * len(cols))})'
    drv = await tx.driver()
    params = _driver_params(table, cols, rows)
    if not drv.off_loop:
        await drv.executemany(f"INSERT INTO {table.name} ({names}) VALUES {one}", params)  # one driver call
        return
    per = MAX_VARIABLES // len(cols)  # on a thread: one statement (one GIL hand-over) per `per` rows
    for at in range(0, len(params), per):
        chunk = params[at:at + per]
        await drv.execute(f"INSERT INTO {table.name} ({names}) VALUES {', '.join([one] * len(chunk))}",
                          [v for row in chunk for v in row])
