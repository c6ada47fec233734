"""Readiness for the audit log of this release (deploy/README.md, "4. Each release").

The audit log's shape is not the gateway's to change (I5): deploy/postgres-init.sql makes it, and a
release that changes it needs the script run again before its pods start. A pod that finds it missing
stays unready, so that the rolling update waits (the previous release keeps serving) instead of every
audited write failing, and its /readyz and its log say which step was missed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.gateway.staff import db
from shared.web import SetUpReadiness

FIX = "run deploy/postgres-init.sql again (deploy/README.md, '4. Each release')"


class AuditLogReadiness(SetUpReadiness):
    """The audit log has all it needs (shared.web.SetUpReadiness says how it is checked and reported)."""

    missing_event = "audit_log_not_set_up"
    complete_event = "audit_log_set_up"

    async def missing(self, conn: asyncpg.Connection) -> list[str]:
        try:
            return await db.missing_audit_objects(conn)
        except asyncpg.PostgresConnectionError:
            raise
        except asyncpg.PostgresError as exc:  # no USAGE on gateway_audit, say: also the bootstrap's part
            return [f"access to gateway_audit ({type(exc).__name__})"]

    def log_fields(self) -> dict[str, Any]:
        return {"fix": FIX}

    def message(self, missing: list[str]) -> str:
        return f"audit log: {', '.join(missing)} missing; {FIX}"
