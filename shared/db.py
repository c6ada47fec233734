"""Database access every service shares: the connection pool of a service's own role and schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.config import CommonSettings

Pool = asyncpg.Pool
Connection = asyncpg.Connection


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(settings: CommonSettings, **overrides: Any) -> asyncpg.Pool:
    """A pool whose connections see only the service's schema (and `public` for extensions)."""
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "init": _init_connection,
        "server_settings": {
            "search_path": f"{settings.db_schema},public",
            "timezone": "UTC",
            "application_name": f"otv-{settings.service_name}",
        },
        "command_timeout": 30,
    }
    options.update(overrides)
    pool = await asyncpg.create_pool(**options)
    assert pool is not None  # noqa: S101 -- create_pool returns None only when used without await
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn, conn.transaction():
        yield conn
