"""Applies each service's numbered SQL migrations, each once, safe when two processes start at once.

`python -m shared.migrate [service ...]` (default: every service). The shared messaging tables
(`shared/migrations`) come first in every schema, then the service's own `services/<name>/migrations`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import structlog

from shared.config import SERVICE_NAMES, CommonSettings
from shared.logging import configure_logging

log = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def settings_for(service: str) -> CommonSettings:
    """Settings of a service's database role, for tools that act on behalf of several services (which use
    that role's password only)."""
    attributes = {"service_name": service, "secrets_used": frozenset({"db_password"})}
    cls = type(f"{service.capitalize()}DbSettings", (CommonSettings,), attributes)
    settings: CommonSettings = cls()
    return settings


def migration_files(service: str) -> list[tuple[str, Path]]:
    shared_dir = ROOT / "shared" / "migrations"
    own_dir = ROOT / "services" / service / "migrations"
    files = [(f"shared/{p.name}", p) for p in sorted(shared_dir.glob("*.sql"))]
    files += [(p.name, p) for p in sorted(own_dir.glob("*.sql"))]
    return files


async def missing_migrations(conn: asyncpg.Connection, service: str) -> list[str]:
    """The versions this release ships for the service that its schema has not applied, in order. A
    schema with more (a later release's, during a rolling update) is fine: only what is missing counts.
    Runs as the service's own role, whose search path is its schema."""
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations")
    except asyncpg.UndefinedTableError:  # never migrated at all
        rows = []
    applied = {r["version"] for r in rows}
    return [version for version, _ in migration_files(service) if version not in applied]


async def migrate_connection(conn: asyncpg.Connection, service: str) -> list[str]:
    """Apply what is missing on an open connection of the service's role; returns the versions applied."""
    applied_now: list[str] = []
    # Session-level advisory lock: a second process waits here and then finds everything applied.
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"otv.migrate.{service}")
    try:
        await conn.execute(f"SET search_path TO {service}, public")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migration_files(service):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
            log.info("migration_applied", schema=service, version=version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"otv.migrate.{service}")
    return applied_now


async def migrate(settings: CommonSettings) -> list[str]:
    conn = await asyncpg.connect(settings.database_url, ssl=settings.database_ssl())
    try:
        return await migrate_connection(conn, settings.service_name)
    finally:
        await conn.close()


async def _main(services: list[str]) -> int:
    for service in services:
        if service not in SERVICE_NAMES:
            print(f"unknown service {service!r}; known: {', '.join(SERVICE_NAMES)}", file=sys.stderr)
            return 2
        await migrate(settings_for(service))
    return 0


if __name__ == "__main__":
    configure_logging("migrate", json=False)
    sys.exit(asyncio.run(_main(sys.argv[1:] or list(SERVICE_NAMES))))
