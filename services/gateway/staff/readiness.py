"""Readiness for the audit log of this release (deploy/README.md, "4. Each release").

The audit log's shape is not the gateway's to change (I5): deploy/postgres-init.sql makes it, and a
release that changes it needs the script run again before its pods start. A pod that finds it missing
stays unready, so that the rolling update waits (the previous release keeps serving) instead of every
audited write failing, and its /readyz and its log say which step was missed.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog
from aiohttp import web

from services.gateway.staff import db
from shared.web import POOL

log = structlog.get_logger(__name__)

FIX = "run deploy/postgres-init.sql again (deploy/README.md, '4. Each release')"


class AuditLogReadiness:
    """A ready check (shared.web.READY_CHECKS): None once the audit log has all it needs (remembered);
    otherwise what is missing and what to do, logged once as an error."""

    def __init__(self) -> None:
        self.ready = False
        self.reported = False

    async def __call__(self, app: web.Application) -> str | None:
        if self.ready:
            return None
        pool = app.get(POOL)
        if pool is None:
            return None  # not connected: shared.web.database_ready says so
        try:
            async with asyncio.timeout(2), pool.acquire() as conn:
                missing = await db.missing_audit_objects(conn)
        except (TimeoutError, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            return None  # the database is not there: shared.web.database_ready says so
        except asyncpg.PostgresError as exc:  # no USAGE on gateway_audit, say: also the bootstrap's part
            missing = [f"access to gateway_audit ({type(exc).__name__})"]
        if not missing:
            self.ready = True
            if self.reported:
                log.info("audit_log_set_up")
            return None
        if not self.reported:
            self.reported = True
            log.error("audit_log_not_set_up", missing=missing, fix=FIX)
        return f"audit log: {', '.join(missing)} missing; {FIX}"
