"""`/healthz` says whether the database answers: a replica whose PostgreSQL refuses it is taken
out of a load balancer's rotation (503), and back in once the database answers again."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from neira.storage import migrate
from tests.conftest import auth, make_settings
from tests.postgres.cluster import Cluster


async def test_health_follows_the_database(tmp_path: Path, pg_cluster: Cluster) -> None:
    url = pg_cluster.create("health")
    app = create_app(Core(make_settings(tmp_path / "data", database_url=url)))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "database": "ok", "schema": migrate.head()}
        # The database refuses this replica: no new connections, and the pooled ones are cut.
        pg_cluster.psql('ALTER DATABASE "health" ALLOW_CONNECTIONS false')
        pg_cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'health'")
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (503, {"code": "unavailable", "reason": "the database cannot be reached",
                                                             "status": "unavailable", "database": "unreachable"})
        pg_cluster.psql('ALTER DATABASE "health" ALLOW_CONNECTIONS true')
        assert (await client.get("/healthz")).status_code == 200


async def test_pooled_connections_the_server_cut_are_replaced_unseen(tmp_path: Path, pg_cluster: Cluster) -> None:
    """Every pooled connection is cut (a server restart, a proxy's idle timeout): the next requests, reads and
    writes alike, are answered as if nothing happened — each dead connection is found at checkout and replaced."""
    url = pg_cluster.create("cut")
    core = Core(make_settings(tmp_path / "data", database_url=url))
    async with AsyncTestClient(create_app(core)) as client:
        for _ in range(3):  # a few connections in the pool
            assert (await client.get("/organs", headers=auth())).status_code == 200
        pooled = core.db.engine.pool.checkedin()
        assert pooled >= 1
        pg_cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'cut' "
                        "AND pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN%'")
        for _ in range(pooled + 1):
            assert (await client.get("/organs", headers=auth())).status_code == 200
        r = await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())
        assert r.status_code == 201, r.text
