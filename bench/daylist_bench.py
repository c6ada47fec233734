"""Benchmark of the daily Excel list (R22): building the list of one location and day with 2,000
appointments, its time and its peak memory.

Two measurements:
- the workbook alone (`build_day_list`, openpyxl in write-only mode) from rows in memory;
- the whole use case as the scheduler and the download run it: the day's rows read from PostgreSQL, the
  workbook built, the file stored (`service.get_day_list`, one transaction).

Time is the median (and min/max) of several runs without tracing; peak memory is measured separately
with tracemalloc (Python allocations during one build) and the process's ru_maxrss (resident set peak,
before and after). The file is opened with openpyxl afterwards to check that every row is in it.

    .venv/bin/python -m bench.daylist_bench                   # database otv_t6, 2,000 appointments
    .venv/bin/python -m bench.daylist_bench --rows 5000 --runs 3 --db otv_t5

It writes only rows of its own location (`bench-<random>`) into the reporting schema and removes them at
the end; it refuses the live database `otv` unless told `--allow-live-db`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import random
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from typing import Any

from openpyxl import load_workbook

from services.reporting import db, service
from services.reporting.config import Settings
from services.reporting.domain import DayListRow
from services.reporting.workbooks import build_day_list
from shared.clock import BERLIN, ManualClock
from shared.db import create_pool
from shared.events.appointment import (
    AppointmentSnapshot,
    AppointmentStatus,
    Channel,
    CustomerData,
)
from shared.events.catalog import Mode
from shared.logging import configure_logging
from shared.migrate import migrate

GROUPS = {"ez": "Eingangszone", "lt1": "Leistungsteam 1", "lt2": "Leistungsteam 2", "jba": "JBA Eingangszone"}
CONCERNS = [
    ("neuantrag", "Neuantrag stellen", 60),
    ("veraenderung", "Mitteilung einer Veränderung", 15),
    ("leistungsbezug", "Fragen zum Leistungsbezug", 30),
    ("bescheid", "Fragen zum Bescheid", 30),
    ("energiesperre", "Drohende / eingetretene Energiesperre", 30),
]
FIRST = ["Anna", "Bernd", "Ceyda", "Dariusz", "Elif", "Farid", "Greta", "Hakan", "Ines", "Jonas"]
LAST = [
    "Adler",
    "Becker",
    "Çelik",
    "Dąbrowski",
    "Ehlers",
    "Fischer",
    "Günther",
    "Hoffmann",
    "Iwanow",
    "Jansen",
]


def next_tuesday(today: date) -> date:
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def snapshots(location_id: str, day: date, count: int, seed: int = 1) -> list[AppointmentSnapshot]:
    """`count` appointments spread over the groups, 07:00-19:00, many service points, a tenth cancelled."""
    rnd = random.Random(seed)  # noqa: S311 -- made-up test data, not a secret
    out = []
    for n in range(count):
        concern_id, concern_name, minutes = CONCERNS[n % len(CONCERNS)]
        start = datetime.combine(day, wall_time(7, 0), tzinfo=BERLIN) + timedelta(
            minutes=15 * rnd.randrange(48)
        )
        mode = Mode.PHONE if n % 3 == 0 else Mode.IN_PERSON
        appointment_id = uuid.uuid4()
        out.append(
            AppointmentSnapshot(
                id=appointment_id,
                reference=f"B-{n:06d}",
                revision=1,
                status=AppointmentStatus.CANCELLED if n % 10 == 0 else AppointmentStatus.BOOKED,
                location_id=location_id,
                location_name="Bench",
                location_address="Teststraße 1, 28195 Bremen",
                group_id=list(GROUPS)[n % len(GROUPS)],
                service_point=1 + n % 40,
                concern_id=concern_id,
                concern_name=concern_name,
                start=start,
                end=start + timedelta(minutes=minutes),
                mode=mode,
                channel=Channel.ONLINE,
                interpreter_language="Arabisch" if n % 17 == 0 else None,
                customer=CustomerData(
                    first_name=rnd.choice(FIRST),
                    last_name=f"{rnd.choice(LAST)}-{n}",
                    email=f"kunde{n}@example.org",
                    phone=f"0421 {100000 + n}" if mode is Mode.PHONE else None,
                    customer_number=f"{n:03d}D{n:06d}" if n % 2 else None,
                    household_number=None if n % 2 else f"BG-{n:07d}",
                ),
                manage_url=f"https://otv.example/manage/{appointment_id}?token=x",
                booked_at=start - timedelta(days=3),
            )
        )
    return out


def rows_of(items: list[AppointmentSnapshot]) -> list[DayListRow]:
    return [
        DayListRow(
            group_id=s.group_id,
            group_name=GROUPS[s.group_id],
            start=s.start,
            end=s.end,
            service_point=s.service_point,
            last_name=s.customer.last_name,
            first_name=s.customer.first_name,
            customer_number=s.customer.customer_number,
            household_number=s.customer.household_number,
            concern=s.concern_name,
            mode=s.mode.value,
            phone=s.customer.phone,
            interpreter_language=s.interpreter_language,
            status=s.status.value,
            outcome=None,
            reference=s.reference,
        )
        for s in items
    ]


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(runs: int, work: Callable[[], Any]) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return times, result


async def atimed(runs: int, work: Callable[[], Any]) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - started)
    return times, result


def summary(name: str, times: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(times) * 1000:.0f} ms"
        f" (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {len(times)} runs)"
    )


def check(content: bytes, expected: int) -> int:
    wb = load_workbook(io.BytesIO(content), read_only=True)
    found = sum(
        1
        for ws in wb.worksheets
        for row in ws.iter_rows(min_row=5, values_only=True)
        if row and row[-1] is not None
    )
    wb.close()
    if found != expected:
        raise SystemExit(f"the list holds {found} rows, expected {expected}")
    return found


async def main(args: argparse.Namespace) -> int:
    if args.db == "otv" and not args.allow_live_db:
        print("refusing the live database otv (use --allow-live-db)", file=sys.stderr)
        return 2
    rss_start = maxrss_mib()
    day = next_tuesday(datetime.now(UTC).astimezone(BERLIN).date())
    location_id = f"bench-{uuid.uuid4().hex[:8]}"
    items = snapshots(location_id, day, args.rows)
    rows = rows_of(items)
    now = datetime.now(UTC)
    groups = list(GROUPS.items())

    def build() -> bytes:
        return build_day_list(
            location_id=location_id,
            location_name="Bench",
            day=day,
            groups=groups,
            rows=rows,
            generated_at=now,
        )

    python = sys.version.split()[0]
    print(f"day list benchmark: {args.rows} appointments, {len(GROUPS)} groups (sheets), Python {python}")
    build()  # warm-up: imports, caches
    rss_before = maxrss_mib()
    times, content = timed(args.runs, build)
    rss_after = maxrss_mib()
    tracemalloc.start()
    build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  file: {len(content) / 1024:.0f} KiB, {check(content, args.rows)} rows")
    print("  " + summary("workbook alone (openpyxl write-only)", times))
    print(f"  workbook alone: tracemalloc peak {peak / 2**20:.1f} MiB")
    print(
        f"  ru_maxrss: {rss_start:.0f} MiB at start, {rss_before:.0f} MiB before the timed builds,"
        f" {rss_after:.0f} MiB after"
    )

    settings = Settings(db_name=args.db, log_json=False)
    await migrate(settings)
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for snapshot in items:
                values = service._snapshot_values(
                    snapshot, settings.internal_secret
                )  # the consumer's own mapping
                await db.insert_appointment(conn, snapshot.id, {**values, "anonymised_at": None}, now)
        clock = ManualClock(datetime.combine(day, wall_time(6, 30), tzinfo=BERLIN))

        async def use_case() -> bytes:
            # Mark the stored list changed so that every run builds it again from the database.
            await pool.execute(
                "UPDATE day_lists SET stale = true WHERE location_id = $1 AND day = $2", location_id, day
            )
            _, data = await service.get_day_list(pool, settings, clock, location_id, day)
            return data

        await use_case()
        times, stored = await atimed(args.runs, use_case)
        tracemalloc.start()
        await use_case()
        _, peak_db = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        check(stored, args.rows)
        print("  " + summary("read from PostgreSQL + build + store (get_day_list)", times))
        print(f"  read + build + store: tracemalloc peak {peak_db / 2**20:.1f} MiB")
        print(f"  ru_maxrss at the end: {maxrss_mib():.0f} MiB")
    finally:
        for table in ("appointments", "day_lists", "day_list_runs"):
            await pool.execute(f"DELETE FROM {table} WHERE location_id = $1", location_id)  # noqa: S608 -- fixed names
        await pool.close()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", default="otv_t6")
    parser.add_argument("--allow-live-db", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    configure_logging("bench", level="WARNING", json=False)
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
