"""Loads the demo data of Jobcenter Bremen (`python -m services.catalog load-demo`), idempotently.

The load is a declarative sync in one transaction: the catalogue, the demo locations with their groups,
offers, windows and closures, the other jobcenters and the street table are brought to what
`demo_data` / `demo_streets` say. Each location publishes a snapshot only when its configuration
really changed, so a second load publishes nothing.

The version of the data (a hash) is remembered: while it is unchanged, `load-demo` leaves everything
alone, including changes administrators made through the admin API since. `--force` syncs anyway.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import asyncpg
import structlog

from services.catalog import db, domain, service
from services.catalog.demo_data import ALLOW_LIST, CONCERNS, LOCATIONS, OTHER_JOBCENTERS
from services.catalog.demo_streets import street_rows
from shared.clock import Clock

log = structlog.get_logger(__name__)

META_KEY = "demo_data_version"
LOCK_KEY = "otv.catalog.load_demo"


@dataclass
class DemoResult:
    skipped: bool = False
    published: dict[str, int] = field(default_factory=dict)
    allow_list_revision: int | None = None
    streets: int = 0


def data_version() -> str:
    payload = {
        "concerns": CONCERNS,
        "locations": LOCATIONS,
        "other_jobcenters": OTHER_JOBCENTERS,
        "streets": street_rows(),
        "allow_list": ALLOW_LIST,
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


async def load_demo(pool: asyncpg.Pool, clock: Clock, *, force: bool = False) -> DemoResult:
    version = data_version()
    result = DemoResult()
    async with pool.acquire() as conn, conn.transaction():
        # Two set-ups at once: the second waits and then finds the version in place.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", LOCK_KEY)
        if not force and await db.get_meta(conn, META_KEY) == version:
            log.info("demo_data_unchanged")
            return DemoResult(skipped=True)
        await _sync_concerns(conn)
        location_ids = sorted(loc["id"] for loc in LOCATIONS)
        for location_id in location_ids:
            await db.upsert_location(conn, _location_values(_location(location_id)))
        await db.lock_locations(conn, location_ids)
        for location_id in location_ids:
            await _sync_location(conn, _location(location_id))
            revision = await service.publish_if_changed(conn, clock, location_id)
            if revision is not None:
                result.published[location_id] = revision
        await _sync_other_jobcenters(conn)
        result.streets = await _sync_streets(conn)
        result.allow_list_revision = await _sync_allow_list(conn, clock)
        await db.set_meta(conn, META_KEY, version)
    log.info("demo_data_loaded", published=result.published, streets=result.streets)
    return result


def _location(location_id: str) -> dict[str, Any]:
    return next(loc for loc in LOCATIONS if loc["id"] == location_id)


def _location_values(location: dict[str, Any]) -> dict[str, Any]:
    block = location["month_change_block"]
    if block is not None:
        domain.check_month_change_block(block["last_days"], block["first_days"])
    return {
        "id": location["id"],
        "name": location["name"],
        "street": location["street"],
        "postcode": location["postcode"],
        "city": location["city"],
        "phone": location["phone"],
        "hotline": location["hotline"],
        "sort_order": location["sort_order"],
        "lead_min_minutes": location["lead_time"]["min_minutes"],
        "lead_max_days": location["lead_time"]["max_days"],
        "block_last_days": block["last_days"] if block else None,
        "block_first_days": block["first_days"] if block else None,
    }


async def _sync_concerns(conn: asyncpg.Connection) -> None:
    for position, concern in enumerate(CONCERNS):
        await db.upsert_concern(
            conn,
            {
                "id": concern["id"],
                "group_kinds": sorted(concern["group_kinds"]),
                "name": concern["name"],
                "info": concern.get("info", {}),
                "links": concern.get("links", []),
                "documents": concern.get("documents", []),
                "emergency": concern.get("emergency", False),
                "sensitive": concern.get("sensitive", False),
                "default_duration_minutes": concern["default_duration_minutes"],
                "sort_order": (position + 1) * 10,
            },
        )


def _group_id(location: dict[str, Any], suffix: str) -> str:
    """Windows and offers name a group by its suffix (`ez`, `lt`, ...): the group whose id ends in it."""
    for group in location["groups"]:
        if group["id"] == f"{location['id']}-{suffix}":
            return str(group["id"])
    raise ValueError(f"{location['id']}: no group {suffix!r}")


async def _sync_location(conn: asyncpg.Connection, location: dict[str, Any]) -> None:
    location_id = location["id"]
    wanted_offers = {
        concern_id: {
            "group_id": _group_id(location, suffix),
            "duration_minutes": minutes,
            "modes": sorted(modes),
        }
        for concern_id, (suffix, minutes, modes) in location["offers"].items()
    }
    wanted_groups = [g["id"] for g in location["groups"]]
    # Offers of groups that go away go first (they reference the groups; windows and closures cascade).
    await db.delete_offers_outside(conn, location_id, list(wanted_offers), wanted_groups)
    await db.delete_groups_except(conn, location_id, wanted_groups)
    for position, group in enumerate(location["groups"]):
        await db.upsert_group(
            conn,
            {
                "id": group["id"],
                "location_id": location_id,
                "kind": group["kind"],
                "name": group["name"],
                "service_points": group["service_points"],
                "sort_order": (position + 1) * 10,
            },
        )
    for concern_id, values in wanted_offers.items():
        await db.sync_offer(conn, location_id, concern_id, values)
    await _sync_windows(conn, location)
    await _sync_closures(conn, location)


def _window_key(
    group_id: str, weekday: int, start: time, end: time, points: int, evening: bool
) -> tuple[Any, ...]:
    return (group_id, weekday, start, end, points, evening, None, None)


async def _sync_windows(conn: asyncpg.Connection, location: dict[str, Any]) -> None:
    wanted = {
        _window_key(
            _group_id(location, suffix),
            weekday,
            time.fromisoformat(start),
            time.fromisoformat(end),
            points,
            evening,
        )
        for suffix, weekday, start, end, points, evening in location["windows"]
    }
    existing: dict[tuple[Any, ...], int] = {}
    for row in await db.windows_of(conn, location["id"]):
        key = (
            row["group_id"],
            row["weekday"],
            row["start_time"],
            row["end_time"],
            row["service_points"],
            row["evening"],
            row["valid_from"],
            row["valid_until"],
        )
        existing[key] = row["id"]
    await db.delete_windows(conn, [wid for key, wid in existing.items() if key not in wanted])
    for key in sorted(wanted - set(existing), key=lambda k: (k[0], k[1], k[2])):
        group_id, weekday, start, end, points, evening, _, _ = key
        await db.insert_window(
            conn,
            {
                "group_id": group_id,
                "weekday": weekday,
                "start": start,
                "end": end,
                "service_points": points,
                "evening": evening,
            },
        )


async def _sync_closures(conn: asyncpg.Connection, location: dict[str, Any]) -> None:
    wanted = {
        (
            _group_id(location, c["group"]) if c["group"] else None,
            date.fromisoformat(c["first"]),
            date.fromisoformat(c["last"]),
            c["reason"],
        )
        for c in location["closures"]
    }
    existing = {
        (r["group_id"], r["first_day"], r["last_day"], r["reason"]): r["id"]
        for r in await db.closures_of(conn, location["id"])
    }
    await db.delete_closures(conn, [cid for key, cid in existing.items() if key not in wanted])
    for group_id, first, last, reason in sorted(wanted - set(existing), key=lambda k: (k[1], k[0] or "")):
        await db.insert_closure(conn, location["id"], group_id, first, last, reason, 0)


async def _sync_other_jobcenters(conn: asyncpg.Connection) -> None:
    for jobcenter in OTHER_JOBCENTERS:
        await db.upsert_other_jobcenter(
            conn,
            {
                "id": jobcenter["id"],
                "name": jobcenter["name"],
                "hotline": jobcenter["hotline"],
                "address": jobcenter["address"],
                "website": jobcenter.get("website", ""),
                "verified": jobcenter["verified"],
            },
        )
        await db.set_postcodes(conn, jobcenter["id"], jobcenter["postcodes"])


def _street_key_of(row: dict[str, Any] | asyncpg.Record) -> tuple[Any, ...]:
    return (
        row["street"],
        row["postcode"],
        row["first_number"],
        row["last_number"],
        row["parity"],
        row["district"],
        row["location_id"],
        row["other_jobcenter_id"],
    )


async def _sync_streets(conn: asyncpg.Connection) -> int:
    rows: list[dict[str, Any]] = list(street_rows())
    for jobcenter in OTHER_JOBCENTERS:
        postcodes = sorted(jobcenter["postcodes"])
        for street in jobcenter["streets"]:
            rows.append(
                {
                    "street": street,
                    "postcode": None,
                    "first_number": None,
                    "last_number": None,
                    "parity": "all",
                    "district": postcodes and jobcenter["postcodes"][postcodes[0]],
                    "location_id": None,
                    "other_jobcenter_id": jobcenter["id"],
                }
            )
    wanted = {_street_key_of(r): r for r in rows}
    existing = {_street_key_of(r): r["id"] for r in await db.all_streets(conn)}
    await db.delete_streets(conn, [sid for key, sid in existing.items() if key not in wanted])
    for key, row in wanted.items():
        if key not in existing:
            await db.insert_street(conn, {**row, "street_key": domain.street_key(str(row["street"]))})
    return len(wanted)


async def _sync_allow_list(conn: asyncpg.Connection, clock: Clock) -> int | None:
    await db.lock_allow_list(conn)
    for item in ALLOW_LIST:
        await db.insert_allow_entry(conn, domain.normalise_allow_entry(item["entry"]), item["note"], "demo")
    return await service.publish_allow_list_if_changed(conn, clock)
