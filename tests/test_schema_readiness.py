"""A pod whose schema lacks a migration of its own release is not ready (deploy/README.md, "5. Each
release"): the migrations Job of a release that ran the previous image, or was skipped, would otherwise
let the new pods go ready and fail every request that touches a new column with 500 `internal_error`.

The test takes the newest migration's row out of the catalog's `schema_migrations` for its duration (the
schema itself stays as it is) and puts it back at the end, whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import structlog.testing
from aiohttp.test_utils import TestClient, TestServer

from services.catalog.app import create_app as create_catalog
from services.catalog.config import Settings as CatalogSettings
from shared.migrate import migration_files
from tests.conftest import svc_settings

NEWEST = migration_files("catalog")[-1][0]
FUTURE = "999_of_a_later_release.sql"


@pytest.fixture
async def catalog_schema(pools: dict[str, asyncpg.Pool]) -> AsyncIterator[asyncpg.Pool]:
    pool = pools["catalog"]
    yield pool
    await pool.execute("INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING", NEWEST)
    await pool.execute("DELETE FROM schema_migrations WHERE version = $1", FUTURE)


async def test_a_pod_whose_schema_misses_a_migration_of_its_release_is_not_ready_and_names_it(
    catalog_schema: asyncpg.Pool,
) -> None:
    await catalog_schema.execute("DELETE FROM schema_migrations WHERE version = $1", NEWEST)
    settings = svc_settings(CatalogSettings)
    with structlog.testing.capture_logs() as logs:
        async with TestClient(TestServer(create_catalog(settings))) as client:  # type: ignore[arg-type]
            for _ in range(2):
                response = await client.get("/readyz")
                assert response.status == 503
                body = await response.json()
                assert body["error"]["code"] == "not_ready"
                message = body["error"]["message"]
                assert f"migrations missing in schema catalog: {NEWEST}" in message
                assert "run the migrations Job of this release" in message
            assert (await client.get("/healthz")).status == 200  # alive: a restart would not help
            # The operator runs the release's Job: the pod becomes ready by itself, without a restart.
            await catalog_schema.execute("INSERT INTO schema_migrations (version) VALUES ($1)", NEWEST)
            response = await client.get("/readyz")
            assert response.status == 200, await response.text()
    # Said once in the log at the start, loudly, not at every probe; and once more when it is resolved.
    missing = [e for e in logs if e["event"] == "migrations_missing"]
    assert len(missing) == 1 and missing[0]["log_level"] == "error"
    assert missing[0]["missing"] == [NEWEST] and missing[0]["schema"] == "catalog"
    assert [e["event"] for e in logs].count("migrations_complete") == 1


async def test_a_pod_of_the_previous_release_stays_ready_on_the_schema_of_the_next(
    catalog_schema: asyncpg.Pool,
) -> None:
    """During a rolling update the old pods serve on a schema the Job has already moved on: more
    migrations than a release knows is the normal case, never a reason to leave the load balancer."""
    await catalog_schema.execute("INSERT INTO schema_migrations (version) VALUES ($1)", FUTURE)
    settings = svc_settings(CatalogSettings)
    with structlog.testing.capture_logs() as logs:
        async with TestClient(TestServer(create_catalog(settings))) as client:  # type: ignore[arg-type]
            response = await client.get("/readyz")
            assert response.status == 200, await response.text()
    assert "migrations_missing" not in [e["event"] for e in logs]
