"""Maintenance commands: `python -m services.reporting retention` runs the retention job now (it runs by
itself every hour; this is for operators after changing OTV_RETENTION_DAYS)."""

from __future__ import annotations

import json

from services.reporting import service
from services.reporting.config import Settings
from shared.clock import SystemClock
from shared.config import CommonSettings
from shared.db import create_pool


async def retention(settings: CommonSettings, _args: list[str]) -> int:
    assert isinstance(settings, Settings)  # noqa: S101 -- __main__ passes the service's settings
    pool = await create_pool(settings)
    try:
        counts = await service.run_retention(pool, settings, SystemClock(), force=True)
    finally:
        await pool.close()
    print(json.dumps(counts))  # counts only, no data
    return 0


COMMANDS = {"retention": retention}
