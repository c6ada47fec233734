"""Benchmark of the staff day view (issue 8, R27): how fast booking answers
`GET /api/v1/staff/locations/{id}/appointments?date=` for a day with 200 appointments.

The booking service runs in-process (aiohttp test server, real PostgreSQL) on a test database with an
injected clock; two locations of its own (`bench-<random>`, ten service points 07:00-19:00) are filled
through the public booking API (200 appointments on the measured day at one, some at the other), then the
day view is requested repeatedly with a signed staff identity, one request at a time; the time of each
request (sent, answered, JSON read) is recorded. Printed: p50, p95, p99 and max after a warm-up.

    .venv/bin/python -m bench.staff_day_bench                    # database otv_t1, 200 appointments
    .venv/bin/python -m bench.staff_day_bench --db otv_t2 --appointments 400 --requests 500

It writes only rows of its own locations and removes them at the end; it refuses the live database
`otv`. Events go to an exchange of its own (`otv.bench.<random>.events`), deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import date, datetime
from typing import Any

import aio_pika
from aiohttp.test_utils import TestClient, TestServer

from services.booking.app import create_app
from services.booking.config import Settings
from services.booking.consumer import apply_location_configured
from shared.clock import BERLIN, ManualClock
from shared.config import CommonSettings
from shared.db import create_pool
from shared.identity import HEADER, Grant, IdentityKind, Role, StaffIdentity, sign
from shared.logging import configure_logging
from shared.migrate import migrate
from tests.staff_work.day_fill import big_location, fill_day

DAY = date(2026, 3, 3)  # a Tuesday
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN)
TABLES_BY_LOCATION = ("appointments", "callbacks", "holds")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> int:
    if args.db == "otv":
        print("refusing the live database otv", file=sys.stderr)
        return 2
    own = uuid.uuid4().hex[:8]
    here, there = f"bench-{own}", f"bench-{own}-b"
    settings = Settings(
        db_name=args.db,
        exchange=f"otv.bench.{own}.events",
        queue_prefix=f"otv.bench.{own}",
        consume_catalog=False,
        consume_mail_reports=False,
        run_jobs=False,
        log_json=False,
        log_level="WARNING",
    )
    await migrate(settings)
    pool = await create_pool(settings)
    clock = ManualClock(NOW)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await apply_location_configured(conn, None, big_location(here, "Bench A"))
            await apply_location_configured(conn, None, big_location(there, "Bench B"))
        async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
            started = time.perf_counter()
            ids = await fill_day(client, here, DAY, args.appointments, first_customer=500_000)
            await fill_day(client, there, DAY, 40, first_customer=600_000)
            fill_seconds = time.perf_counter() - started
            identity = StaffIdentity(
                subject="bench",
                kind=IdentityKind.USER,
                grants=(Grant(role=Role.APPOINTMENT_MANAGER, locations=(here, there)),),
                issued_at=clock.now(),
            )
            headers = {HEADER: sign(identity, CommonSettings().internal_secret)}
            path = f"/api/v1/staff/locations/{here}/appointments"
            params = {"date": DAY.isoformat()}

            async def once() -> tuple[float, list[dict[str, Any]]]:
                t0 = time.perf_counter()
                response = await client.get(path, params=params, headers=headers)
                body = await response.json()
                elapsed = time.perf_counter() - t0
                if response.status != 200:
                    raise RuntimeError(f"the day view answered {response.status}: {body}")
                return elapsed, body

            for _ in range(args.warmup):
                await once()
            timings: list[float] = []
            sizes: set[int] = set()
            for _ in range(args.requests):
                elapsed, body = await once()
                timings.append(elapsed * 1000)
                sizes.add(len(body))
            _, body = await once()
            if {a["id"] for a in body} != set(ids):
                raise RuntimeError("the day view must show exactly the day's appointments")
    finally:
        async with pool.acquire() as conn:
            for table in TABLES_BY_LOCATION:
                await conn.execute(
                    f"DELETE FROM {table} WHERE location_id = ANY($1::text[])",  # noqa: S608 -- fixed names
                    [here, there],
                )
            await conn.execute("DELETE FROM locations WHERE id = ANY($1::text[])", [here, there])
        await pool.close()
        await _drop_exchange(settings)

    print(
        f"staff day view, {args.appointments} appointments at one location (+40 at another),"
        f" database {args.db}"
    )
    print(
        f"  filled through the booking API in {fill_seconds:.1f} s;"
        f" {args.requests} requests after {args.warmup} warm-up"
    )
    print(f"  answer sizes: {sorted(sizes)} appointments")
    print(
        f"  p50 {_percentile(timings, 0.50):.1f} ms · p95 {_percentile(timings, 0.95):.1f} ms · "
        f"p99 {_percentile(timings, 0.99):.1f} ms · max {max(timings):.1f} ms · "
        f"mean {statistics.fmean(timings):.1f} ms"
    )
    return 0


async def _drop_exchange(settings: Settings) -> None:
    try:
        connection = await aio_pika.connect_robust(settings.broker_url)
    except Exception:  # noqa: BLE001 -- clean-up only
        return
    async with connection:
        channel = await connection.channel()
        for name in (settings.exchange, settings.exchange + ".dlx"):
            try:
                await channel.exchange_delete(name)
            except Exception:  # noqa: BLE001 -- it may not exist
                channel = await connection.channel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="otv_t1")
    parser.add_argument("--appointments", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    configure_logging("bench", level="WARNING", json=False)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
