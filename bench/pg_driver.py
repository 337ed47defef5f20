"""Which PostgreSQL driver: asyncpg against psycopg 3 (async), on neira's own work, in one run (issue 16).

    .venv/bin/python bench/pg_driver.py --url postgresql://neira@127.0.0.1:5432/postgres [--n 300 --rounds 3]

`--url` names a server and a database the user may create databases from; each round makes a fresh
database per driver. Rounds interleave the drivers (asyncpg, psycopg, psycopg, asyncpg, …) so drift on a
shared machine falls on both. Per operation, on the real core:
- `create`: a new cell record (`POST /factory/cells`'s work: one write transaction, audit and event);
- `build`: an organ build started (its plan applied in one transaction);
- `status`: an organ's status read;
- `command`: «создай клетку benchN» planned and apply through the Command Cell.
Needs `pip install asyncpg "psycopg[binary]"`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import save  # noqa: E402
from neira.config import Settings  # noqa: E402
from neira.core import Core  # noqa: E402

DRIVERS = {"asyncpg": "postgresql+asyncpg", "psycopg": "postgresql+psycopg"}


def with_database(url: str, scheme: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


async def create_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def cell(i: int) -> dict:
    return {"id": f"analysis.bench_{i}.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
            "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}}}


async def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - t) * 1e6)
    return out


async def one(url: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token="bench-admin-token-16", database_url=url,
                             stage_delays_ms=(3_600_000, 3_600_000, 3_600_000), analysis_interval_ms=0))
        await core.start()
        try:
            create = await timed(lambda i: core.factory.create({"template": cell(i)}, "admin"), n)
            organs: list[str] = []

            async def build(_i: int) -> None:
                _, built = await core.organs.build({"organ_template": "organ.echo.v1"}, "admin")
                organs.append(built["organ_id"])

            builds = await timed(build, n)
            status = await timed(lambda i: core.organs.status(organs[i % len(organs)]), n)

            async def command(i: int) -> None:
                answer = await core.commands.handle(f"создай клетку bench{i}", None, "admin")
                await core.commands.apply(answer["plan"]["id"], "admin")

            commands = await timed(command, n)
        finally:
            await core.stop()
    med = statistics.median
    return {"create_us": med(create), "build_us": med(builds), "status_us": med(status), "command_us": med(commands)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    stamp = int(time.time())
    results: dict[str, list[dict[str, float]]] = {d: [] for d in DRIVERS}
    for r in range(args.rounds):
        order = list(DRIVERS) if r % 2 == 0 else list(DRIVERS)[::-1]
        for driver in order:
            name = f"bench_{driver}_{stamp}_{r}"
            await create_database(with_database(args.url, "postgresql+asyncpg", urlsplit(args.url).path.lstrip("/") or "postgres"), name)
            figures = await one(with_database(args.url, DRIVERS[driver], name), args.n)
            results[driver].append(figures)
            print(r, driver, {k: round(v) for k, v in figures.items()}, flush=True)
    summary = {d: {k: round(statistics.median(x[k] for x in rs)) for k in rs[0]} for d, rs in results.items()}
    ratio = {k: round(summary["psycopg"][k] / summary["asyncpg"][k], 2) for k in summary["asyncpg"]}
    print("median of rounds, µs:", summary)
    print("psycopg / asyncpg:", ratio)
    print(save("pg_driver", {"n": args.n, "rounds": args.rounds, "median_us": summary, "psycopg_over_asyncpg": ratio}))


if __name__ == "__main__":
    asyncio.run(main())
