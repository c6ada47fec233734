"""Use cases of the catalog: one transaction each.

Every change of a location's bookable configuration ends in `publish_if_changed` inside the same
transaction: the location's snapshot is rebuilt and, when it differs from the last one published, its
revision is raised and a `catalog.location_configured` event goes into the outbox (I3). The location's
row is locked first, so revisions of one location strictly increase whatever the concurrency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import asyncpg
import structlog

from services.catalog import db, domain
from services.catalog.models import (
    NOT_A_VALUE,
    AllowEntryIn,
    ApprovalIn,
    ClosureIn,
    ConcernIn,
    ConcernPatch,
    GroupIn,
    GroupPatch,
    LeadTimeIn,
    LocationIn,
    LocationPatch,
    MonthChangeBlockIn,
    OfferIn,
    WindowIn,
    WindowUpdate,
)
from shared.calendar import BERLIN, holiday_name
from shared.clock import Clock
from shared.closures import check_points_left
from shared.errors import ConflictError, NotFoundError, ValidationError
from shared.events.catalog import (
    Address,
    AllowListChangedV1,
    Closure,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LeadTime,
    Link,
    LocationConfiguredV1,
    Mode,
    MonthChangeBlock,
    WindowSnapshot,
)
from shared.outbox import add_event
from shared.versions import check_version, version_of

log = structlog.get_logger(__name__)

PRODUCER = "catalog"
T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a staff member's username (or None), recorded in the change log only."""

    staff: str | None = None


def today(clock: Clock) -> date:
    return clock.now().astimezone(BERLIN).date()


# --- versions (lost-update protection, shared.versions) ---------------------------------------------
# What each object's version covers: the values its update route changes, so that a change of something
# else (another window, the lead time) does not make a form of it stale.
LOCATION_VERSIONED = ("name", "street", "postcode", "city", "phone", "hotline", "active", "sort_order")
GROUP_VERSIONED = ("kind", "name", "service_points", "active", "sort_order")
WINDOW_VERSIONED = (
    "group_id",
    "weekday",
    "start_time",
    "end_time",
    "service_points",
    "evening",
    "valid_from",
    "valid_until",
)
LEAD_TIME_VERSIONED = ("lead_min_minutes", "lead_max_days")
BLOCK_VERSIONED = ("block_last_days", "block_first_days")
CONCERN_VERSIONED = (
    "group_kinds",
    "name",
    "info",
    "links",
    "documents",
    "emergency",
    "sensitive",
    "default_duration_minutes",
    "active",
    "sort_order",
)


def location_version(row: asyncpg.Record) -> str:
    return version_of({c: row[c] for c in LOCATION_VERSIONED})


def lead_time_version(row: asyncpg.Record) -> str:
    """A location's lead time and horizon (its own form and route, not the location's data)."""
    return version_of({c: row[c] for c in LEAD_TIME_VERSIONED})


def month_change_block_version(row: asyncpg.Record) -> str:
    """A location's month-change block, also while there is none (set and removed by its own route)."""
    return version_of({c: row[c] for c in BLOCK_VERSIONED})


def group_version(row: asyncpg.Record) -> str:
    return version_of({c: row[c] for c in GROUP_VERSIONED})


def window_version(row: asyncpg.Record) -> str:
    return version_of({c: row[c] for c in WINDOW_VERSIONED})


def concern_version(row: asyncpg.Record) -> str:
    return version_of({c: row[c] for c in CONCERN_VERSIONED})


# --- snapshots --------------------------------------------------------------------------------------


async def build_snapshot(
    conn: asyncpg.Connection, location: asyncpg.Record, revision: int
) -> LocationConfiguredV1:
    """The location's bookable configuration as the booking service gets it."""
    location_id = location["id"]
    groups = [g for g in await db.groups_of(conn, location_id) if g["active"]]
    active_groups = {g["id"] for g in groups}
    windows = [w for w in await db.windows_of(conn, location_id) if w["group_id"] in active_groups]
    offers = [
        o
        for o in await db.offers_of(conn, location_id)
        if o["offer_active"] and o["concern_active"] and o["group_id"] in active_groups
    ]
    closures = [
        c
        for c in await db.closures_of(conn, location_id)
        if c["group_id"] is None or c["group_id"] in active_groups
    ]
    block = None
    if location["block_last_days"] is not None:
        block = MonthChangeBlock(
            last_days=location["block_last_days"], first_days=location["block_first_days"]
        )
    return LocationConfiguredV1(
        location_id=location_id,
        revision=revision,
        name=location["name"],
        address=Address(street=location["street"], postcode=location["postcode"], city=location["city"]),
        phone=location["phone"],
        hotline=location["hotline"],
        active=location["active"],
        lead_time=LeadTime(min_minutes=location["lead_min_minutes"], max_days=location["lead_max_days"]),
        month_change_block=block,
        groups=[
            GroupSnapshot(
                id=g["id"], kind=GroupKind(g["kind"]), name=g["name"], service_points=g["service_points"]
            )
            for g in groups
        ],
        windows=[
            WindowSnapshot(
                group_id=w["group_id"],
                weekday=w["weekday"],
                start=w["start_time"],
                end=w["end_time"],
                service_points=w["service_points"],
                evening=w["evening"],
                valid_from=w["valid_from"],
                valid_until=w["valid_until"],
            )
            for w in windows
        ],
        concerns=[
            ConcernOffer(
                concern_id=o["concern_id"],
                group_id=o["group_id"],
                name=o["name"],
                duration_minutes=o["duration_minutes"],
                modes=[Mode(m) for m in sorted(o["modes"])],
                emergency=o["emergency"],
                sensitive=o["sensitive"],
                info=o["info"],
                links=[Link(label=link["label"], url=link["url"]) for link in o["links"]],
                documents=o["documents"],
            )
            for o in offers
        ],
        closures=[
            Closure(
                first=c["first_day"],
                last=c["last_day"],
                group_id=c["group_id"],
                reason=c["reason"],
                service_points_left=c["service_points_left"],
            )
            for c in closures
        ],
    )


async def publish_if_changed(conn: asyncpg.Connection, clock: Clock, location_id: str) -> int | None:
    """Publish the location's snapshot with the next revision when it differs from the last one.
    Must run inside the change's transaction, after the location's row was locked."""
    location = await db.find_location(conn, location_id)
    if location is None:
        return None
    snapshot = await build_snapshot(conn, location, location["revision"] + 1)
    fingerprint = domain.snapshot_fingerprint(snapshot)
    if fingerprint == location["snapshot_hash"]:
        return None
    await db.record_published(conn, location_id, snapshot.revision, fingerprint)
    await add_event(conn, snapshot, producer=PRODUCER, clock=clock)
    log.info("location_configured", location_id=location_id, revision=snapshot.revision)
    return snapshot.revision


async def republish_all(pool: asyncpg.Pool, clock: Clock, *, new_revision: bool = False) -> int:
    """Publish every location's current snapshot again (for a new consumer) and the allow-list.

    By default with the revision it has: consumers that have it drop it as stale, a new one takes it.
    A configuration that changed without being published (a repair in the database) gets the next
    revision, and so does every one with `new_revision`, so that every consumer replaces its copy."""
    count = 0
    async with pool.acquire() as conn, conn.transaction():
        all_ids = [r["id"] for r in await db.list_locations(conn, only_active=False)]
        for location_id in await db.lock_locations(conn, all_ids):
            location = await db.find_location(conn, location_id)
            assert location is not None  # noqa: S101 -- locked above
            snapshot = await build_snapshot(conn, location, location["revision"])
            fingerprint = domain.snapshot_fingerprint(snapshot)
            if new_revision or location["revision"] == 0 or fingerprint != location["snapshot_hash"]:
                snapshot = snapshot.model_copy(update={"revision": location["revision"] + 1})
            await db.record_published(conn, location_id, snapshot.revision, fingerprint)
            await add_event(conn, snapshot, producer=PRODUCER, clock=clock)
            count += 1
        await db.lock_allow_list(conn)
        if await publish_allow_list_if_changed(conn, clock) is None:
            revision, _ = await db.allow_list_state(conn)
            entries = [r["entry"] for r in await db.allow_list(conn)]
            await add_event(
                conn, AllowListChangedV1(revision=revision, entries=entries), producer=PRODUCER, clock=clock
            )
    log.info("snapshots_republished", locations=count, new_revision=new_revision)
    return count


# --- reading (public) -------------------------------------------------------------------------------


async def public_locations(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.list_locations(conn, only_active=True)


async def public_concerns(pool: asyncpg.Pool, location_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        location = await db.find_location(conn, location_id)
        if location is None or not location["active"]:
            raise NotFoundError("No such location.")
        return [
            o
            for o in await db.offers_of(conn, location_id)
            if o["offer_active"] and o["concern_active"] and o["group_active"]
        ]


# --- reading (admin) --------------------------------------------------------------------------------


async def location_details(pool: asyncpg.Pool, clock: Clock, location_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        location = await db.find_location(conn, location_id)
        if location is None:
            raise NotFoundError("No such location.")
        snapshot = await build_snapshot(conn, location, max(location["revision"], 1))
        findings = domain.policy_findings(
            snapshot,
            on=today(clock),
            catalogue=await db.concern_ids(conn),
            approvals=_approvals(await db.approvals_of(conn, location_id)),
        )
        return {
            "location": location,
            "groups": await db.groups_of(conn, location_id),
            "windows": await db.windows_of(conn, location_id),
            "offers": await db.offers_of(conn, location_id),
            "closures": await db.closures_of(conn, location_id),
            "approvals": await db.approvals_of(conn, location_id),
            "findings": findings,
        }


async def all_locations(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.list_locations(conn, only_active=False)


async def concern_catalogue(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.list_concerns(conn)


async def get_concern(pool: asyncpg.Pool, concern_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        concern = await db.find_concern(conn, concern_id)
        if concern is None:
            raise NotFoundError("No such concern.")
        return concern


async def change_log(pool: asyncpg.Pool, location_id: str | None, limit: int) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await db.changes(conn, location_id=location_id, limit=limit)


def public_holidays(year: int) -> list[tuple[date, str]]:
    """Bremen's public holidays of `year` (shared.calendar, from the `holidays` package)."""
    days = (date(year, 1, 1) + timedelta(days=n) for n in range(366))
    return [(day, name) for day in days if day.year == year and (name := holiday_name(day)) is not None]


# --- the policy check (R21) -------------------------------------------------------------------------


def _approvals(rows: Sequence[asyncpg.Record]) -> list[domain.Approval]:
    return [
        domain.Approval(r["rule"], r["reference"], r["approved_by"], r["valid_from"], r["valid_until"])
        for r in rows
    ]


async def policy_report(
    pool: asyncpg.Pool, clock: Clock, *, location_id: str | None = None, on: date | None = None
) -> list[dict[str, Any]]:
    """Per location, where it falls short of directive 3.2/3.3 (R15, R17, R18)."""
    day = on or today(clock)
    report = []
    async with pool.acquire() as conn:
        if location_id is not None:
            location = await db.find_location(conn, location_id)
            if location is None:
                raise NotFoundError("No such location.")
            locations = [location]
        else:
            locations = [r for r in await db.list_locations(conn, only_active=True)]
        catalogue = await db.concern_ids(conn)
        for location in locations:
            snapshot = await build_snapshot(conn, location, max(location["revision"], 1))
            findings = domain.policy_findings(
                snapshot,
                on=day,
                catalogue=catalogue,
                approvals=_approvals(await db.approvals_of(conn, location["id"])),
            )
            report.append(
                {
                    "location_id": location["id"],
                    "name": location["name"],
                    "on": day.isoformat(),
                    "complies": not findings,
                    "findings": [f.as_dict() for f in findings],
                }
            )
    return report


async def add_approval(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, body: ApprovalIn
) -> int:
    if body.valid_until < body.valid_from:
        raise invalid_field("valid_until", "must not be before valid_from")
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_location(conn, location_id)
        approval_id = await db.insert_approval(
            conn, {**body.model_dump(), "location_id": location_id, "recorded_by": actor.staff}
        )
        await log_change(
            conn, clock, actor, "create", "policy_approval", str(approval_id), location_id, body.model_dump()
        )
    return approval_id


# --- changing a location ----------------------------------------------------------------------------


async def log_change(
    conn: asyncpg.Connection,
    clock: Clock,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: str,
    location_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await db.log_change(
        conn,
        at=clock.now(),
        staff=actor.staff,
        action=action,
        entity=entity,
        entity_id=entity_id,
        location_id=location_id,
        details=details,
    )


def invalid_field(field: str, message: str, kind: str = "value_error") -> ValidationError:
    return ValidationError(
        f"Invalid {field}: {message}.", details=[{"field": field, "message": message, "type": kind}]
    )


class ApprovalRequiredError(ConflictError):
    """R21: the change would restrict the opening times of directive 3.3 without a prior approval."""

    code = "approval_required"


async def _policy_state(
    conn: asyncpg.Connection, location_id: str
) -> tuple[LocationConfiguredV1 | None, list[domain.Approval]]:
    location = await db.find_location(conn, location_id)
    if location is None:
        return None, []
    snapshot = await build_snapshot(conn, location, max(location["revision"], 1))
    return snapshot, _approvals(await db.approvals_of(conn, location_id))


async def _in_location(
    pool: asyncpg.Pool,
    clock: Clock,
    location_id: str,
    work: Callable[[asyncpg.Connection, asyncpg.Record], Awaitable[T]],
) -> tuple[T, int | None]:
    """Run a change of one location in one transaction, then publish its snapshot if it changed. A
    change that restricts the opening times below directive 3.3 without a recorded approval (R21) is
    refused and rolled back."""
    async with pool.acquire() as conn, conn.transaction():
        location = await db.lock_location(conn, location_id)
        before, approvals = await _policy_state(conn, location_id)
        result = await work(conn, location)
        after, _ = await _policy_state(conn, location_id)
        restricted = (
            domain.new_restrictions(before, after, today=today(clock), approvals=approvals)
            if before is not None and after is not None
            else []
        )
        if restricted:
            raise ApprovalRequiredError(
                "Restricting the opening times of directive 3.3 needs the prior approval of GBL 2 or BLL:"
                " record it first (POST /api/v1/admin/locations/{id}/policy-approvals, rule R17).",
                details=[f.as_dict() for f in restricted],
            )
        revision = await publish_if_changed(conn, clock, location_id)
        return result, revision


async def create_location(pool: asyncpg.Pool, clock: Clock, actor: Actor, body: LocationIn) -> int | None:
    async with pool.acquire() as conn, conn.transaction():
        await db.insert_location(conn, body.model_dump())
        await db.lock_location(conn, body.id)
        await log_change(conn, clock, actor, "create", "location", body.id, body.id, body.model_dump())
        return await publish_if_changed(conn, clock, body.id)


async def update_location(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, body: LocationPatch
) -> int | None:
    values = body.model_dump(exclude_unset=True, exclude=NOT_A_VALUE)
    if "hotline" in values and values["hotline"] is None:
        raise invalid_field("hotline", "a location needs a hotline")
    for required in ("name", "street", "postcode", "city", "active", "sort_order"):
        if required in values and values[required] is None:
            raise invalid_field(required, "must not be null")

    async def work(conn: asyncpg.Connection, location: asyncpg.Record) -> None:
        check_version(body.expected_version, location_version(location), "location")
        await db.update_location(conn, location_id, values)
        await log_change(conn, clock, actor, "update", "location", location_id, location_id, values)

    return (await _in_location(pool, clock, location_id, work))[1]


async def set_lead_time(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, body: LeadTimeIn
) -> int | None:
    async def work(conn: asyncpg.Connection, location: asyncpg.Record) -> None:
        check_version(body.expected_version, lead_time_version(location), "lead time")
        values = {"lead_min_minutes": body.min_minutes, "lead_max_days": body.max_days}
        await db.update_location(conn, location_id, values)
        await log_change(
            conn,
            clock,
            actor,
            "update",
            "lead_time",
            location_id,
            location_id,
            body.model_dump(exclude=NOT_A_VALUE),
        )

    return (await _in_location(pool, clock, location_id, work))[1]


async def set_month_change_block(
    pool: asyncpg.Pool,
    clock: Clock,
    actor: Actor,
    location_id: str,
    body: MonthChangeBlockIn | None,
    *,
    expected_version: str | None = None,
) -> int | None:
    """Set (or with None remove) the month-change block (R18): at most 3 days, emergencies only. The
    version it was made against comes in the body, or for a removal in `expected_version`."""
    if body is not None:
        domain.check_month_change_block(body.last_days, body.first_days)
        expected_version = body.expected_version

    async def work(conn: asyncpg.Connection, location: asyncpg.Record) -> None:
        check_version(expected_version, month_change_block_version(location), "month-change block")
        values = (
            {"block_last_days": body.last_days, "block_first_days": body.first_days}
            if body is not None
            else {"block_last_days": None, "block_first_days": None}
        )
        await db.update_location(conn, location_id, values)
        await log_change(
            conn,
            clock,
            actor,
            "update" if body is not None else "delete",
            "month_change_block",
            location_id,
            location_id,
            body.model_dump(exclude=NOT_A_VALUE) if body is not None else {},
        )

    return (await _in_location(pool, clock, location_id, work))[1]


# --- groups -----------------------------------------------------------------------------------------


async def create_group(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, body: GroupIn
) -> int | None:
    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        await db.insert_group(conn, {**body.model_dump(mode="json"), "location_id": location_id})
        await log_change(
            conn, clock, actor, "create", "group", body.id, location_id, body.model_dump(mode="json")
        )

    return (await _in_location(pool, clock, location_id, work))[1]


async def _group_location(pool: asyncpg.Pool, group_id: str) -> str:
    async with pool.acquire() as conn:
        group = await db.find_group(conn, group_id)
    if group is None:
        raise NotFoundError("No such group.", details=[{"field": "group_id", "message": "unknown"}])
    location_id: str = group["location_id"]
    return location_id


async def update_group(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, group_id: str, body: GroupPatch
) -> int | None:
    values = body.model_dump(mode="json", exclude_unset=True, exclude=NOT_A_VALUE)
    for required in values:
        if values[required] is None:
            raise invalid_field(required, "must not be null")
    location_id = await _group_location(pool, group_id)

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        group = await db.find_group(conn, group_id)
        if group is None:
            raise NotFoundError("No such group.", details=[{"field": "group_id", "message": "unknown"}])
        check_version(body.expected_version, group_version(group), "group")
        if "service_points" in values:
            needed = await db.max_window_points(conn, group_id)
            if values["service_points"] < needed:
                raise invalid_field(
                    "service_points",
                    f"a time window of the group uses {needed} service points; change it first",
                )
        await db.update_group(conn, group_id, values)
        await log_change(conn, clock, actor, "update", "group", group_id, location_id, values)

    return (await _in_location(pool, clock, location_id, work))[1]


async def delete_group(pool: asyncpg.Pool, clock: Clock, actor: Actor, group_id: str) -> int | None:
    location_id = await _group_location(pool, group_id)

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        await db.delete_group(conn, group_id)
        await log_change(conn, clock, actor, "delete", "group", group_id, location_id)

    return (await _in_location(pool, clock, location_id, work))[1]


# --- windows ----------------------------------------------------------------------------------------


def _check_window(body: WindowIn, group: asyncpg.Record) -> None:
    domain.check_window_times(body.start, body.end)
    if body.valid_from and body.valid_until and body.valid_until < body.valid_from:
        raise invalid_field("valid_until", "must not be before valid_from")
    if body.service_points > group["service_points"]:
        raise invalid_field(
            "service_points",
            f"the group has {group['service_points']} service points",
            "too_many_service_points",
        )


async def add_window(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, group_id: str, body: WindowIn
) -> tuple[int, int | None]:
    location_id = await _group_location(pool, group_id)

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> int:
        group = await db.find_group(conn, group_id)
        assert group is not None  # noqa: S101 -- groups are deleted only under the location's lock
        _check_window(body, group)
        window_id = await db.insert_window(conn, {**body.model_dump(), "group_id": group_id})
        await log_change(
            conn, clock, actor, "create", "window", str(window_id), location_id, body.model_dump(mode="json")
        )
        return window_id

    return await _in_location(pool, clock, location_id, work)


async def _window_location(pool: asyncpg.Pool, window_id: int) -> asyncpg.Record:
    async with pool.acquire() as conn:
        window = await db.find_window(conn, window_id)
    if window is None:
        raise NotFoundError("No such time window.")
    return window


async def update_window(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, window_id: int, body: WindowUpdate
) -> int | None:
    window = await _window_location(pool, window_id)

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        current = await db.find_window(conn, window_id)  # under the location's lock: as it stays
        if current is None:
            raise NotFoundError("No such time window.")
        check_version(body.expected_version, window_version(current), "time window")
        group = await db.find_group(conn, window["group_id"])
        assert group is not None  # noqa: S101 -- see add_window
        _check_window(body, group)
        await db.update_window(conn, window_id, body.model_dump(exclude=NOT_A_VALUE))
        await log_change(
            conn,
            clock,
            actor,
            "update",
            "window",
            str(window_id),
            window["location_id"],
            body.model_dump(mode="json", exclude=NOT_A_VALUE),
        )

    return (await _in_location(pool, clock, window["location_id"], work))[1]


async def delete_window(pool: asyncpg.Pool, clock: Clock, actor: Actor, window_id: int) -> int | None:
    window = await _window_location(pool, window_id)

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        await db.delete_window(conn, window_id)
        await log_change(conn, clock, actor, "delete", "window", str(window_id), window["location_id"])

    return (await _in_location(pool, clock, window["location_id"], work))[1]


# --- closures ---------------------------------------------------------------------------------------


async def add_closure(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, body: ClosureIn
) -> tuple[int, int | None]:
    if body.last < body.first:
        raise invalid_field("last", "must not be before first")
    if body.last < today(clock):
        # Over before it is saved, it closes nothing: mostly a slip of the year (R20). One that began
        # earlier and lasts until today still closes today; one saved before stays listed and can go.
        raise invalid_field("last", "the last day is before today (Europe/Berlin)", "in_the_past")

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> int:
        if body.group_id is not None:
            group = await db.find_group(conn, body.group_id)
            if group is None or group["location_id"] != location_id:
                raise invalid_field("group_id", "no such group at this location", "unknown_group")
            # Lowering a group below a restriction later stays allowed: the restriction then restricts
            # nothing more than the group itself, and a past one must not block the change.
            check_points_left(body.service_points_left, [int(group["service_points"])])
        elif body.service_points_left:
            check_points_left(
                body.service_points_left,
                [int(g["service_points"]) for g in await db.groups_of(conn, location_id)],
            )
        same = await db.find_same_closure(
            conn, location_id, body.group_id, body.first, body.last, body.service_points_left
        )
        if same is not None:
            return same  # saved twice (a repeated form, a mass change applied again): one closure
        closure_id = await db.insert_closure(
            conn, location_id, body.group_id, body.first, body.last, body.reason, body.service_points_left
        )
        await log_change(
            conn,
            clock,
            actor,
            "create",
            "closure",
            str(closure_id),
            location_id,
            body.model_dump(mode="json"),
        )
        return closure_id

    return await _in_location(pool, clock, location_id, work)


async def delete_closure(pool: asyncpg.Pool, clock: Clock, actor: Actor, closure_id: int) -> int | None:
    async with pool.acquire() as conn:
        closure = await db.find_closure(conn, closure_id)
    if closure is None:
        raise NotFoundError("No such closure.")

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        await db.delete_closures(conn, [closure_id])
        await log_change(conn, clock, actor, "delete", "closure", str(closure_id), closure["location_id"])

    return (await _in_location(pool, clock, closure["location_id"], work))[1]


# --- concerns and offers ----------------------------------------------------------------------------


def _concern_values(body: ConcernIn | ConcernPatch, *, exclude_unset: bool) -> dict[str, Any]:
    values = body.model_dump(mode="json", exclude_unset=exclude_unset, exclude={"id", *NOT_A_VALUE})
    for name, value in list(values.items()):
        if value is None:
            raise invalid_field(name, "must not be null")
    if "group_kinds" in values:
        values["group_kinds"] = sorted(set(values["group_kinds"]))
    return values


async def create_concern(pool: asyncpg.Pool, clock: Clock, actor: Actor, body: ConcernIn) -> None:
    values = _concern_values(body, exclude_unset=False)
    async with pool.acquire() as conn, conn.transaction():
        await db.insert_concern(conn, {**values, "id": body.id})
        await log_change(conn, clock, actor, "create", "concern", body.id, None, {"id": body.id})


async def update_concern(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, concern_id: str, body: ConcernPatch
) -> dict[str, int]:
    """Change a concern of the central catalogue; every location offering it publishes a new snapshot."""
    values = _concern_values(body, exclude_unset=True)
    async with pool.acquire() as conn, conn.transaction():
        # Locations first (id order, like every other change), then the concern.
        locked = await db.lock_locations(conn, await db.locations_offering(conn, concern_id))
        concern = await db.find_concern(conn, concern_id, lock=True)
        if concern is None:
            raise NotFoundError("No such concern.")
        check_version(body.expected_version, concern_version(concern), "concern")
        if "group_kinds" in values:
            await _check_kinds_still_fit(conn, concern_id, values["group_kinds"])
        await db.update_concern(conn, concern_id, values)
        await log_change(
            conn, clock, actor, "update", "concern", concern_id, None, {"fields": sorted(values)}
        )
        revisions = {}
        for location_id in locked:
            revision = await publish_if_changed(conn, clock, location_id)
            if revision is not None:
                revisions[location_id] = revision
        return revisions


async def _check_kinds_still_fit(conn: asyncpg.Connection, concern_id: str, kinds: list[str]) -> None:
    allowed = _allowed_group_kinds(kinds)
    for location_id in await db.locations_offering(conn, concern_id):
        for offer in await db.offers_of(conn, location_id):
            if offer["concern_id"] == concern_id and offer["group_kind"] not in allowed:
                raise invalid_field(
                    "group_kinds", f"the concern is offered by a {offer['group_kind']} at {location_id}"
                )


def _allowed_group_kinds(kinds: Sequence[str]) -> set[str]:
    allowed: set[str] = set()
    for kind in kinds:
        allowed |= {str(k) for k in domain.COMPATIBLE_KINDS[GroupKind(kind)]}
    return allowed


async def set_offer(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, concern_id: str, body: OfferIn
) -> int | None:
    """Offer a concern of the catalogue at a location, by one of its groups (R14, R16)."""

    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        concern = await db.find_concern(conn, concern_id)
        if concern is None:
            raise invalid_field("concern_id", "no such concern in the central catalogue", "unknown_concern")
        group = await db.find_group(conn, body.group_id)
        if group is None or group["location_id"] != location_id:
            raise invalid_field("group_id", "no such group at this location", "unknown_group")
        if group["kind"] not in _allowed_group_kinds(concern["group_kinds"]):
            raise invalid_field(
                "group_id",
                f"a {group['kind']} cannot offer this concern ({', '.join(concern['group_kinds'])})",
            )
        values = body.model_dump(mode="json")
        values["modes"] = sorted(set(values["modes"]))
        await db.upsert_offer(conn, location_id, concern_id, values)
        await log_change(conn, clock, actor, "update", "offer", concern_id, location_id, values)

    return (await _in_location(pool, clock, location_id, work))[1]


async def remove_offer(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, location_id: str, concern_id: str
) -> int | None:
    async def work(conn: asyncpg.Connection, _location: asyncpg.Record) -> None:
        if not await db.delete_offer(conn, location_id, concern_id):
            raise NotFoundError("The concern is not offered here.")
        await log_change(conn, clock, actor, "delete", "offer", concern_id, location_id)

    return (await _in_location(pool, clock, location_id, work))[1]


# --- the allow-list (R6) ----------------------------------------------------------------------------


def _allow_list_hash(entries: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


async def publish_allow_list_if_changed(conn: asyncpg.Connection, clock: Clock) -> int | None:
    revision, last_hash = await db.allow_list_state(conn)
    entries = [r["entry"] for r in await db.allow_list(conn)]
    list_hash = _allow_list_hash(entries)
    if list_hash == last_hash:
        return None
    revision += 1
    await db.record_allow_list_published(conn, revision, list_hash)
    await add_event(
        conn, AllowListChangedV1(revision=revision, entries=entries), producer=PRODUCER, clock=clock
    )
    # Only the count: the entries are addresses.
    log.info("allow_list_changed", revision=revision, entries=len(entries))
    return revision


async def allow_list(pool: asyncpg.Pool) -> tuple[int, list[asyncpg.Record]]:
    async with pool.acquire() as conn:
        revision, _ = await db.allow_list_state(conn)
        return revision, await db.allow_list(conn)


async def add_allow_entry(
    pool: asyncpg.Pool, clock: Clock, actor: Actor, body: AllowEntryIn
) -> tuple[str, int | None]:
    entry = domain.normalise_allow_entry(body.entry)
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_allow_list(conn)
        await db.insert_allow_entry(conn, entry, body.note, actor.staff)
        await log_change(conn, clock, actor, "create", "allow_list_entry", entry, None)
        return entry, await publish_allow_list_if_changed(conn, clock)


async def remove_allow_entry(pool: asyncpg.Pool, clock: Clock, actor: Actor, raw_entry: str) -> int | None:
    entry = domain.normalise_allow_entry(raw_entry)
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_allow_list(conn)
        if not await db.delete_allow_entry(conn, entry):
            raise NotFoundError("No such entry.")
        await log_change(conn, clock, actor, "delete", "allow_list_entry", entry, None)
        return await publish_allow_list_if_changed(conn, clock)
