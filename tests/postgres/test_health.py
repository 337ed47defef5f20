"""`/healthz` says whether the database answers: a replica whose PostgreSQL refuses it is taken
out of a load balancer's rotation (503), and back in once the database answers again."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from neira.storage import migrate
from tests.conftest import make_settings
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
