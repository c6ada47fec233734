"""Benchmark of the booking path: availability reads and concurrent bookings against a real database.

Starts the booking service in-process (its real app, on a free loopback port), configures a synthetic
location with many service points, fills it with existing appointments (10,000 by default), then fires
availability reads and bookings through aiohttp with a given concurrency and prints requests per second
and the p50/p95/p99 latencies.

    .venv/bin/python -m bench.booking_bench                      # database otv_t2
    .venv/bin/python -m bench.booking_bench --db otv_t3 --reads 2000 --bookings 500 --concurrency 16

It writes only rows of its own location (`bench-<random>`), removes them at the end, and publishes the
events of its bookings to an exchange of its own, which it deletes afterwards. It refuses the live
database `otv` unless told `--allow-live-db`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import random
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from typing import Any

import aio_pika
import aiohttp
import asyncpg
from aiohttp import web

from services.booking.app import create_app
from services.booking.config import Settings
from services.booking.consumer import apply_location_configured
from shared.clock import BERLIN, SystemClock
from shared.db import create_pool
from shared.events.catalog import (
    Address,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LeadTime,
    LocationConfiguredV1,
    Mode,
    WindowSnapshot,
)
from shared.migrate import migrate

GROUP = "ez"
POINTS = 40
DAY_START, DAY_END = wall_time(7, 0), wall_time(19, 0)
CONCERNS = {"kurz": 15, "lang": 60}


@dataclass
class Timings:
    name: str
    latencies: list[float]
    statuses: dict[int, int]
    wall: float

    def report(self) -> str:
        if not self.latencies:
            return f"{self.name}: no requests"
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.name:<14} {len(ordered):>6} requests  {len(ordered) / self.wall:>8.1f} req/s  "
            f"p50 {pct(50):6.1f} ms  p95 {pct(95):6.1f} ms  p99 {pct(99):6.1f} ms  "
            f"mean {statistics.fmean(ordered) * 1000:6.1f} ms  ({statuses})"
        )


def snapshot(location_id: str) -> LocationConfiguredV1:
    return LocationConfiguredV1(
        location_id=location_id,
        revision=int(time.time() * 1000),
        name="Benchmark",
        address=Address(street="Messweg 1", postcode="28195"),
        hotline="0421 0000000",
        lead_time=LeadTime(min_minutes=0, max_days=56),
        groups=[
            GroupSnapshot(id=GROUP, kind=GroupKind.ENTRANCE_ZONE, name={"de": "EZ"}, service_points=POINTS)
        ],
        windows=[
            WindowSnapshot(group_id=GROUP, weekday=d, start=DAY_START, end=DAY_END, service_points=POINTS)
            for d in range(5)
        ],
        concerns=[
            ConcernOffer(
                concern_id=concern,
                group_id=GROUP,
                name={"de": concern},
                duration_minutes=minutes,
                modes=[Mode.IN_PERSON, Mode.PHONE],
            )
            for concern, minutes in CONCERNS.items()
        ],
    )


def bookable_days(today: date, weeks: int = 8) -> list[date]:
    return [
        today + timedelta(days=n) for n in range(1, weeks * 7) if (today + timedelta(days=n)).weekday() < 5
    ]


async def seed_appointments(pool: asyncpg.Pool, location_id: str, count: int, today: date) -> None:
    """`count` booked 15-minute appointments spread over the next eight weeks, points filled in turn."""
    slots = [
        datetime.combine(day, wall_time(hour, minute), BERLIN)
        for day in bookable_days(today)
        for hour in range(DAY_START.hour, DAY_END.hour)
        for minute in (0, 15, 30, 45)
    ]
    if count > len(slots) * POINTS:
        raise SystemExit(f"at most {len(slots) * POINTS} appointments fit")
    random.shuffle(slots)
    now = datetime.now(BERLIN)
    records = []
    for n in range(count):
        start = slots[n % len(slots)]
        point = n // len(slots) + 1
        records.append(
            (
                uuid.uuid4(),
                f"BN{n:07d}",
                "booked",
                location_id,
                GROUP,
                point,
                "kurz",
                "in_person",
                "online",
                "de",
                start,
                start + timedelta(minutes=15),
                "Bench",
                "Mark",
                f"bench{n}@{location_id}.invalid",
                f"bench{n}@{location_id}.invalid",
                hashlib.sha256(secrets.token_bytes(16)).digest(),
                "Benchmark",
                "Messweg 1, 28195 Bremen",
                "kurz",
                now,
                now,
            )
        )
    await pool.copy_records_to_table(
        "appointments",
        records=records,
        columns=[
            "id",
            "reference",
            "status",
            "location_id",
            "group_id",
            "service_point",
            "concern_id",
            "mode",
            "channel",
            "language",
            "start_at",
            "end_at",
            "first_name",
            "last_name",
            "email",
            "email_key",
            "manage_token_hash",
            "location_name",
            "location_address",
            "concern_name",
            "booked_at",
            "updated_at",
        ],
    )
    await pool.execute("VACUUM ANALYZE appointments")  # as autovacuum would have by now


async def fire(name: str, count: int, concurrency: int, request: Callable[[int], Awaitable[int]]) -> Timings:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(range(count))

    async def worker() -> None:
        for n in queue:
            started = time.perf_counter()
            status = await request(n)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timings(name, latencies, statuses, time.perf_counter() - began)


async def run(args: argparse.Namespace) -> int:
    if args.db == "otv" and not args.allow_live_db:
        print("refusing the live database otv; pass --allow-live-db to insist", file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:8]
    location_id = f"bench-{run_id}"
    settings = Settings(
        db_name=args.db,
        exchange=f"otv.bench.{run_id}.events",
        queue_prefix=f"otv.bench.{run_id}",
        consume_catalog=False,
        consume_mail_reports=False,
        run_jobs=False,
        db_pool_max=args.pool,
        log_level="WARNING",
        port=0,
    )
    logging.basicConfig(level=logging.WARNING)
    await migrate(settings)
    pool = await create_pool(settings)
    today = datetime.now(BERLIN).date()
    try:
        async with pool.acquire() as conn, conn.transaction():
            await apply_location_configured(conn, None, snapshot(location_id))
        print(f"seeding {args.appointments} appointments at {location_id} ...", flush=True)
        await seed_appointments(pool, location_id, args.appointments, today)

        app = create_app(settings, clock=SystemClock())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        days = bookable_days(today)
        try:
            connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
            async with aiohttp.ClientSession(base_url=base, connector=connector) as http:

                async def read(n: int) -> int:
                    first = days[n % (len(days) - 10)]
                    params = {
                        "concern": "kurz" if n % 3 else "lang",
                        "from": first.isoformat(),
                        "to": (first + timedelta(days=args.range_days - 1)).isoformat(),
                    }
                    async with http.get(f"/api/v1/locations/{location_id}/availability", params=params) as r:
                        await r.read()
                        return r.status

                # Warm-up: connections, prepared statements, the parsed snapshot.
                await fire("warm-up", 50, args.concurrency, read)
                reads = await fire("availability", args.reads, args.concurrency, read)

                slot_pool = [
                    datetime.combine(day, wall_time(hour, minute), BERLIN).isoformat()
                    for day in days
                    for hour in range(DAY_START.hour, DAY_END.hour)
                    for minute in (0, 15, 30, 45)
                ]

                async def book(n: int) -> int:
                    body: dict[str, Any] = {
                        "location_id": location_id,
                        "concern_id": "kurz",
                        "start": random.choice(slot_pool),  # noqa: S311 -- test data, not a secret
                        "mode": "in_person",
                        "customer": {
                            "first_name": "Bench",
                            "last_name": "Mark",
                            "email": f"run{run_id}-{n}@bench.invalid",
                            "customer_number": f"{n % 1000:03d}D{n:06d}",
                        },
                    }
                    headers = {"Idempotency-Key": f"{run_id}-{n}"}
                    async with http.post("/api/v1/appointments", json=body, headers=headers) as r:
                        await r.read()
                        return r.status

                bookings = await fire("bookings", args.bookings, args.concurrency, book)
        finally:
            await runner.cleanup()

        print()
        print(
            f"booking service in-process, database {args.db}, {args.appointments} appointments at the"
            f" location, {POINTS} service points, concurrency {args.concurrency},"
            f" availability over {args.range_days} days"
        )
        print(reads.report())
        print(bookings.report())
        return 0
    finally:
        await pool.execute("DELETE FROM appointments WHERE location_id = $1", location_id)
        await pool.execute("DELETE FROM holds WHERE location_id = $1", location_id)
        await pool.execute("DELETE FROM locations WHERE id = $1", location_id)
        await pool.close()
        await _delete_exchange(settings)


async def _delete_exchange(settings: Settings) -> None:
    try:
        connection = await aio_pika.connect(settings.broker_url)
    except (OSError, aio_pika.exceptions.AMQPError):
        return
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(settings.exchange)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="otv_t2", help="database name (default otv_t2)")
    parser.add_argument("--appointments", type=int, default=10_000, help="existing appointments to seed")
    parser.add_argument("--reads", type=int, default=1000, help="availability requests")
    parser.add_argument("--bookings", type=int, default=300, help="booking requests")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight at once")
    parser.add_argument("--range-days", type=int, default=14, help="days per availability request (max 56)")
    parser.add_argument("--pool", type=int, default=10, help="database connections of the service")
    parser.add_argument("--allow-live-db", action="store_true", help="allow running against otv")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
