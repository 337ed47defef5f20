"""Shared fixtures: an isolated core on a real SQLite file, an app and clients for each role."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.config import Settings
from neira.core import Core
from tests.postgres.cluster import Cluster, start_cluster

ADMIN, OPERATOR, VIEWER = "admin-token-for-tests", "operator-token-for-tests", "viewer-token-for-tests"
ROLE_TOKENS = {"admin": ADMIN, "operator": OPERATOR, "viewer": VIEWER}


def auth(role: str = "admin") -> dict[str, str]:
    """Headers for a role."""
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


@asynccontextmanager
async def started(core: Core) -> AsyncIterator[Core]:
    """`core` started for the block and stopped after it, whatever the block raised."""
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Test settings: three role tokens, short stage delays, a data dir of the test's own."""
    values: dict[str, object] = {
        "data_dir": str(data_dir),
        "admin_token": ADMIN,
        "operator_token": OPERATOR,
        "viewer_token": VIEWER,
        "stage_delays_ms": (20, 20, 20),
        "analysis_interval_ms": 0,  # no background sample runs beside tests of other things; tests/evidence turns it on
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """A started core (schema, policy, example catalog) without HTTP."""
    async with started(Core(settings)) as c:
        yield c


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """An HTTP client on a fresh app; the app's lifespan starts and stops the core."""
    app = create_app(Core(settings))
    async with AsyncTestClient(app) as c:
        yield c


# --- PostgreSQL: one throwaway cluster for the whole session, a fresh database per test (tests/postgres/,
# and the reliability suite's PostgreSQL half); started only when a test asks for it.
_pg_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="neira-pg-"))
    cluster = start_cluster(base)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The URL of a new, empty database of the session's cluster."""
    return pg_cluster.create(f"t{next(_pg_names)}")


def new_pg_database(cluster: Cluster) -> str:
    """Another new, empty database of the session's cluster (for fixtures of a wider scope than pg_url)."""
    return cluster.create(f"t{next(_pg_names)}")
