"""Database access every service shares: the connection pool of a service's own role and schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.config import CommonSettings

BIGINT_MAX = 2**63 - 1  # the largest id or cursor a query may name (a bigint column's end)

Pool = asyncpg.Pool
Connection = asyncpg.Connection


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class OTVConnection(asyncpg.Connection):  # type: ignore[misc] # asyncpg ships no type information
    """A pooled connection that is reset without a round trip when it holds no session state.

    asyncpg resets every connection on release with a query (UNLISTEN *, RESET ALL, CLOSE ALL,
    pg_advisory_unlock_all): one more round trip per use, a quarter of a booking's (issue 10). Our pooled
    connections keep no session state: asyncpg rolls back an open transaction on release in any case,
    advisory locks are transaction-level, settings are given at connect (server_settings), and no cursor
    outlives its transaction. The one exception is LISTEN (the outbox relay, the mail sender): a
    connection that ever listened gets the full reset.
    """

    _otv_listened = False

    async def add_listener(self, channel: str, callback: Any) -> None:
        self._otv_listened = True
        await super().add_listener(channel, callback)

    def get_reset_query(self) -> str:
        query: str = super().get_reset_query() if self._otv_listened else ""
        return query


class DatabaseConnectTimeout(ConnectionError):
    """A new connection to the database took longer than `db_connect_timeout` (a failover in progress, a
    lost route): an outage like a refused connection, not a slow query (which stays a TimeoutError)."""


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except TimeoutError as exc:
        raise DatabaseConnectTimeout("no connection to the database in time") from exc


async def create_pool(settings: CommonSettings, **overrides: Any) -> asyncpg.Pool:
    """A pool whose connections see only the service's schema (and `public` for extensions)."""
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "ssl": settings.database_ssl(),
        "min_size": settings.db_pool_min,
        "max_size": settings.db_pool_max,
        "init": _init_connection,
        "server_settings": {
            "search_path": f"{settings.db_schema},public",
            "timezone": "UTC",
            "application_name": f"otv-{settings.service_name}",
        },
        "command_timeout": 30,
        "timeout": settings.db_connect_timeout,
        "connect": _connect,
        "connection_class": OTVConnection,
    }
    options.update(overrides)
    pool = await asyncpg.create_pool(**options)
    assert pool is not None  # noqa: S101 -- create_pool returns None only when used without await
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn, conn.transaction():
        yield conn
