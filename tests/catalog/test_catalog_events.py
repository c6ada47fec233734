"""The catalog's events on the real RabbitMQ, and its commands as the set-up runs them."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.catalog import commands
from shared.consumer import Consumer
from shared.events import Envelope
from shared.events.catalog import LocationConfiguredV1
from tests.catalog.conftest import catalog_settings, outbox_count, snapshot_events, staff_headers
from tests.conftest import wait_for

Client = TestClient[web.Request, web.Application]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.req("R13")
async def test_an_admin_change_reaches_a_consumer_through_the_broker_as_a_newer_snapshot(
    demo_client: Client, demo_pool: asyncpg.Pool, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    received: list[tuple[Envelope, LocationConfiguredV1]] = []

    async def record(_conn: asyncpg.Connection, envelope: Envelope, data: Any) -> None:
        received.append((envelope, data))

    consumer = Consumer(
        f"catalogtest{uuid.uuid4().hex[:6]}",
        pool=demo_pool,
        connection=amqp,
        settings=catalog_settings(),
        handlers={"catalog.location_configured": record},
    )
    await consumer.start()
    try:
        revision = LocationConfiguredV1.model_validate(
            (await snapshot_events(demo_pool, "nord"))[-1]["data"]
        ).revision
        response = await demo_client.patch(
            "/api/v1/admin/groups/nord-lt", json={"service_points": 8}, headers=staff_headers("nord-admin")
        )
        assert response.status == 200, await response.text()

        def arrived() -> bool:
            return any(d.location_id == "nord" and d.revision == revision + 1 for _, d in received)

        await wait_for(arrived, timeout=15, what="the new snapshot of nord at the consumer")
        envelope, data = next(
            (e, d) for e, d in received if d.location_id == "nord" and d.revision == revision + 1
        )
        assert envelope.type == "catalog.location_configured" and envelope.producer == "catalog"
        assert next(g for g in data.groups if g.id == "nord-lt").service_points == 8
        await asyncio.sleep(0.3)
        assert [d.revision for _, d in received if d.location_id == "nord"].count(revision + 1) == 1
        published = await demo_pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        assert published == 0
    finally:
        await consumer.stop()


async def run_command(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.catalog",
        *args,
        cwd=ROOT,
        env={**os.environ, "OTV_LOG_JSON": "false", "OTV_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.req("R21")
@pytest.mark.req("R15")
async def test_the_commands_load_the_demo_idempotently_check_the_policy_and_republish(
    pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the set-up runs it: a process of its own (one: starting Python is the slow part) ...
    code, output = await run_command("load-demo")
    assert code == 0, output
    assert "mitte r1" in output and "west r1" in output
    after_first = await outbox_count(pool)

    # ... and the commands `python -m services.catalog` knows, in this process.
    assert set(commands.COMMANDS) == {"load-demo", "republish", "policy-check"}
    settings = catalog_settings()
    assert await commands.policy_check(settings, []) == 0
    printed = capsys.readouterr().out
    assert "mitte" in printed and "jba" in printed and "finding" not in printed
    assert await commands.load_demo(settings, []) == 0
    assert "already loaded" in capsys.readouterr().out
    assert await commands.load_demo(settings, ["--force"]) == 0
    assert "published: none" in capsys.readouterr().out
    assert await outbox_count(pool) == after_first  # no new snapshot revision the second time

    await pool.execute("DELETE FROM offers WHERE location_id = 'ost' AND concern_id = 'p-konto'")
    assert await commands.policy_check(settings, []) == 1
    printed = capsys.readouterr().out
    assert "R15 mandatory_concern_not_offered" in printed and "p-konto" in printed
    assert await commands.policy_check(settings, ["--json", "--on", "2026-12-01"]) == 1
    assert '"complies": false' in capsys.readouterr().out

    assert await commands.republish(settings, []) == 0
    assert await outbox_count(pool) == after_first + 7  # six locations and the allow-list
    revisions = {e["data"]["location_id"]: e["data"]["revision"] for e in (await snapshot_events(pool))[-6:]}
    assert revisions["ost"] == 2 and revisions["mitte"] == 1  # the repaired one moves on, the others stay
