"""Use cases of the responsibility finder (R3): find the responsible location (or other jobcenter) from
an address, and keep the finder's tables. One transaction each; no events (the finder is the catalog's
own business)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import asyncpg

from services.catalog import db, domain
from services.catalog.models import OtherJobcenterIn, StreetIn
from services.catalog.service import Actor, invalid_field, log_change
from shared.clock import Clock
from shared.errors import NotFoundError


@dataclass(frozen=True)
class FinderAnswer:
    result: str  # "location", "other_jobcenter", "unknown"
    reason: str  # why: found, under_25, other_jobcenter_postcode, unknown_street, ...
    location: asyncpg.Record | None = None
    jobcenter: asyncpg.Record | None = None
    youth_location: asyncpg.Record | None = None
    district: str = ""
    suggestions: tuple[str, ...] = ()
    municipality: str = ""


YOUTH_LOCATION = "jba"  # the Jugendberufsagentur serves customers under 25


async def find_responsible(
    pool: asyncpg.Pool,
    *,
    street: str,
    house_number: str | None,
    postcode: str | None,
    under_25: bool,
    bremen_postcodes: frozenset[str],
) -> FinderAnswer:
    async with pool.acquire() as conn:
        youth = await db.find_location(conn, YOUTH_LOCATION)
        youth = youth if youth is not None and youth["active"] else None
        if postcode is not None:
            other = await db.other_jobcenter_for_postcode(conn, postcode)
            if other is not None:
                return FinderAnswer(
                    "other_jobcenter",
                    "other_jobcenter_postcode",
                    jobcenter=other,
                    municipality=other["municipality"],
                )
        key = domain.street_key(street)
        entries = [_entry(r) for r in await db.streets_by_key(conn, key)] if key else []
        if (
            postcode is not None
            and postcode not in bremen_postcodes
            and not any(e.postcode == postcode for e in entries)
        ):
            return FinderAnswer("unknown", "outside_area")  # nor is Bremen's youth agency responsible
        match = domain.match_street(
            entries, number=domain.house_number_value(house_number), postcode=postcode
        )
        if match.outcome != "found" or match.target is None:
            suggestions: tuple[str, ...] = ()
            if match.outcome == "unknown_street":
                suggestions = await _suggestions(conn, key)
            return FinderAnswer("unknown", match.outcome, suggestions=suggestions, youth_location=youth)
        kind, target = match.target
        if kind == "other_jobcenter":
            jobcenter = await db.find_other_jobcenter(conn, target)
            return FinderAnswer("other_jobcenter", "other_jobcenter_street", jobcenter=jobcenter)
        location = await db.find_location(conn, target)
        if location is None or not location["active"]:
            return FinderAnswer("unknown", "location_inactive", youth_location=youth)
        if under_25 and youth is not None:
            return FinderAnswer(
                "location", "under_25", location=youth, district=match.district, youth_location=youth
            )
        return FinderAnswer(
            "location", "found", location=location, district=match.district, youth_location=youth
        )


def _entry(row: asyncpg.Record) -> domain.StreetEntry:
    return domain.StreetEntry(
        street=row["street"],
        postcode=row["postcode"],
        first_number=row["first_number"],
        last_number=row["last_number"],
        parity=row["parity"],
        district=row["district"],
        location_id=row["location_id"],
        other_jobcenter_id=row["other_jobcenter_id"],
    )


async def _suggestions(conn: asyncpg.Connection, key: str) -> tuple[str, ...]:
    if len(key) < 3:
        return ()
    names = {r["street_key"]: r["street"] for r in await db.street_names(conn)}
    close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.75)
    return tuple(names[k] for k in close)


# --- the finder's tables (admin) --------------------------------------------------------------------


async def list_streets(
    pool: asyncpg.Pool, *, location_id: str | None, district: str | None, prefix: str | None, limit: int
) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.list_streets(
            conn,
            location_id=location_id,
            district=district,
            prefix=domain.street_key(prefix) if prefix else None,
            limit=limit,
        )


async def add_street(pool: asyncpg.Pool, clock: Clock, actor: Actor, body: StreetIn) -> int:
    if (body.location_id is None) == (body.other_jobcenter_id is None):
        raise invalid_field("location_id", "give either location_id or other_jobcenter_id")
    if body.first_number and body.last_number and body.last_number < body.first_number:
        raise invalid_field("last_number", "must not be below first_number")
    async with pool.acquire() as conn, conn.transaction():
        if body.location_id is not None and await db.find_location(conn, body.location_id) is None:
            raise invalid_field("location_id", "no such location", "unknown_location")
        if (
            body.other_jobcenter_id is not None
            and await db.find_other_jobcenter(conn, body.other_jobcenter_id) is None
        ):
            raise invalid_field("other_jobcenter_id", "no such jobcenter", "unknown_jobcenter")
        street_id = await db.insert_street(
            conn, {**body.model_dump(), "street_key": domain.street_key(body.street)}
        )
        await log_change(
            conn, clock, actor, "create", "finder_street", str(street_id), body.location_id, body.model_dump()
        )
        return street_id


async def delete_street(pool: asyncpg.Pool, clock: Clock, actor: Actor, street_id: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await db.find_street(conn, street_id)
        if row is None:
            raise NotFoundError("No such street entry.")
        await db.delete_streets(conn, [street_id])
        await log_change(conn, clock, actor, "delete", "finder_street", str(street_id), row["location_id"])


async def other_jobcenters(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.other_jobcenters(conn)


async def put_other_jobcenter(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, jobcenter_id: str, body: OtherJobcenterIn
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await db.upsert_other_jobcenter(conn, {**body.model_dump(exclude={"postcodes"}), "id": jobcenter_id})
        await db.set_postcodes(conn, jobcenter_id, dict(body.postcodes))
        await log_change(
            conn, clock, actor, "update", "other_jobcenter", jobcenter_id, None, {"name": body.name}
        )
