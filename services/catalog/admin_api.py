"""The catalog's admin API under `/api/v1/admin/...`: create and change locations, groups, windows,
concerns and their offers, closures, blocks, lead times, the allow-list and the finder's tables, and
read the policy check (R21).

Authorisation: the gateway's rule table, and behind it `authz.admin_guard` (a signed staff identity on
every route, a fitting role for a change). The signed identity names who changed what in the change log.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.catalog import finder, service
from services.catalog.api import address_line
from services.catalog.models import (
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
    OtherJobcenterIn,
    StreetIn,
    VersionQuery,
    WindowIn,
    WindowUpdate,
)
from shared.errors import NotFoundError
from shared.web import CLOCK, POOL, parse_json, parse_query, path_id, staff_identity

routes = web.RouteTableDef()


def actor_of(request: web.Request) -> service.Actor:
    return service.Actor(staff_identity(request).subject)


def _int_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFoundError("Not found.")
    return int(raw)


def _changed(revision: int | None, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({**extra, "published_revision": revision}, status=status)


# --- serialisation ----------------------------------------------------------------------------------


def location_out(row: asyncpg.Record) -> dict[str, Any]:
    block = None
    if row["block_last_days"] is not None:
        block = {"last_days": row["block_last_days"], "first_days": row["block_first_days"]}
    return {
        "id": row["id"],
        "name": row["name"],
        "street": row["street"],
        "postcode": row["postcode"],
        "city": row["city"],
        "address": address_line(row),
        "phone": row["phone"],
        "hotline": row["hotline"],
        "active": row["active"],
        "sort_order": row["sort_order"],
        "lead_time": {
            "min_minutes": row["lead_min_minutes"],
            "max_days": row["lead_max_days"],
            "cutoff": "06:00",
            "version": service.lead_time_version(row),
        },
        "month_change_block": block,
        "month_change_block_version": service.month_change_block_version(row),
        "revision": row["revision"],
        "version": service.location_version(row),
    }


def group_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "location_id": row["location_id"],
        "kind": row["kind"],
        "name": row["name"],
        "service_points": row["service_points"],
        "active": row["active"],
        "sort_order": row["sort_order"],
        "version": service.group_version(row),
    }


def window_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "group_id": row["group_id"],
        "weekday": row["weekday"],
        "start": row["start_time"].strftime("%H:%M"),
        "end": row["end_time"].strftime("%H:%M"),
        "service_points": row["service_points"],
        "evening": row["evening"],
        "valid_from": row["valid_from"].isoformat() if row["valid_from"] else None,
        "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None,
        "version": service.window_version(row),
    }


def offer_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "concern_id": row["concern_id"],
        "group_id": row["group_id"],
        "name": row["name"],
        "duration_minutes": row["duration_minutes"],
        "modes": sorted(row["modes"]),
        "active": row["offer_active"],
        "concern_active": row["concern_active"],
        "emergency": row["emergency"],
        "sensitive": row["sensitive"],
    }


def closure_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "group_id": row["group_id"],
        "first": row["first_day"].isoformat(),
        "last": row["last_day"].isoformat(),
        "reason": row["reason"],
        "service_points_left": row["service_points_left"],
    }


def concern_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "group_kinds": list(row["group_kinds"]),
        "name": row["name"],
        "info": row["info"],
        "links": row["links"],
        "documents": row["documents"],
        "emergency": row["emergency"],
        "sensitive": row["sensitive"],
        "default_duration_minutes": row["default_duration_minutes"],
        "active": row["active"],
        "sort_order": row["sort_order"],
        "version": service.concern_version(row),
    }


def approval_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "rule": row["rule"],
        "reference": row["reference"],
        "approved_by": row["approved_by"],
        "valid_from": row["valid_from"].isoformat(),
        "valid_until": row["valid_until"].isoformat(),
        "note": row["note"],
        "recorded_by": row["recorded_by"],
    }


def street_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "street": row["street"],
        "postcode": row["postcode"],
        "first_number": row["first_number"],
        "last_number": row["last_number"],
        "parity": row["parity"],
        "district": row["district"],
        "location_id": row["location_id"],
        "other_jobcenter_id": row["other_jobcenter_id"],
    }


# --- locations --------------------------------------------------------------------------------------


@routes.get("/api/v1/admin/locations")
async def admin_locations(request: web.Request) -> web.Response:
    return web.json_response([location_out(r) for r in await service.all_locations(request.app[POOL])])


@routes.post("/api/v1/admin/locations")
async def admin_create_location(request: web.Request) -> web.Response:
    body = await parse_json(request, LocationIn)
    revision = await service.create_location(request.app[POOL], request.app[CLOCK], actor_of(request), body)
    return _changed(revision, 201, id=body.id)


@routes.get("/api/v1/admin/locations/{location_id}")
async def admin_location(request: web.Request) -> web.Response:
    details = await service.location_details(
        request.app[POOL], request.app[CLOCK], path_id(request, "location_id")
    )
    return web.json_response(
        {
            **location_out(details["location"]),
            "groups": [group_out(g) for g in details["groups"]],
            "windows": [window_out(w) for w in details["windows"]],
            "concerns": [offer_out(o) for o in details["offers"]],
            "closures": [closure_out(c) for c in details["closures"]],
            "policy_approvals": [approval_out(a) for a in details["approvals"]],
            "policy_findings": [f.as_dict() for f in details["findings"]],
        }
    )


@routes.patch("/api/v1/admin/locations/{location_id}")
async def admin_update_location(request: web.Request) -> web.Response:
    body = await parse_json(request, LocationPatch)
    revision = await service.update_location(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return _changed(revision)


@routes.put("/api/v1/admin/locations/{location_id}/lead-time")
async def admin_lead_time(request: web.Request) -> web.Response:
    body = await parse_json(request, LeadTimeIn)
    revision = await service.set_lead_time(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return _changed(revision)


@routes.put("/api/v1/admin/locations/{location_id}/month-change-block")
async def admin_set_block(request: web.Request) -> web.Response:
    body = await parse_json(request, MonthChangeBlockIn)
    revision = await service.set_month_change_block(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return _changed(revision)


@routes.delete("/api/v1/admin/locations/{location_id}/month-change-block")
async def admin_remove_block(request: web.Request) -> web.Response:
    query = parse_query(request, VersionQuery)
    revision = await service.set_month_change_block(
        request.app[POOL],
        request.app[CLOCK],
        actor_of(request),
        path_id(request, "location_id"),
        None,
        expected_version=query.expected_version,
    )
    return _changed(revision)


# --- groups and windows -----------------------------------------------------------------------------


@routes.post("/api/v1/admin/locations/{location_id}/groups")
async def admin_create_group(request: web.Request) -> web.Response:
    body = await parse_json(request, GroupIn)
    revision = await service.create_group(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return _changed(revision, 201, id=body.id)


@routes.patch("/api/v1/admin/groups/{group_id}")
async def admin_update_group(request: web.Request) -> web.Response:
    body = await parse_json(request, GroupPatch)
    revision = await service.update_group(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "group_id"), body
    )
    return _changed(revision)


@routes.delete("/api/v1/admin/groups/{group_id}")
async def admin_delete_group(request: web.Request) -> web.Response:
    revision = await service.delete_group(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "group_id")
    )
    return _changed(revision)


@routes.post("/api/v1/admin/groups/{group_id}/windows")
async def admin_add_window(request: web.Request) -> web.Response:
    body = await parse_json(request, WindowIn)
    window_id, revision = await service.add_window(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "group_id"), body
    )
    return _changed(revision, 201, id=window_id)


@routes.put("/api/v1/admin/windows/{window_id}")
async def admin_update_window(request: web.Request) -> web.Response:
    window_id = _int_id(request, "window_id")
    body = await parse_json(request, WindowUpdate)
    revision = await service.update_window(
        request.app[POOL], request.app[CLOCK], actor_of(request), window_id, body
    )
    return _changed(revision)


@routes.delete("/api/v1/admin/windows/{window_id}")
async def admin_delete_window(request: web.Request) -> web.Response:
    window_id = _int_id(request, "window_id")
    revision = await service.delete_window(
        request.app[POOL], request.app[CLOCK], actor_of(request), window_id
    )
    return _changed(revision)


# --- offers and closures ----------------------------------------------------------------------------


@routes.put("/api/v1/admin/locations/{location_id}/concerns/{concern_id}")
async def admin_set_offer(request: web.Request) -> web.Response:
    body = await parse_json(request, OfferIn)
    revision = await service.set_offer(
        request.app[POOL],
        request.app[CLOCK],
        actor_of(request),
        path_id(request, "location_id"),
        path_id(request, "concern_id"),
        body,
    )
    return _changed(revision)


@routes.delete("/api/v1/admin/locations/{location_id}/concerns/{concern_id}")
async def admin_remove_offer(request: web.Request) -> web.Response:
    revision = await service.remove_offer(
        request.app[POOL],
        request.app[CLOCK],
        actor_of(request),
        path_id(request, "location_id"),
        path_id(request, "concern_id"),
    )
    return _changed(revision)


@routes.post("/api/v1/admin/locations/{location_id}/closures")
async def admin_add_closure(request: web.Request) -> web.Response:
    body = await parse_json(request, ClosureIn)
    closure_id, revision = await service.add_closure(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return _changed(revision, 201, id=closure_id)


@routes.delete("/api/v1/admin/closures/{closure_id}")
async def admin_delete_closure(request: web.Request) -> web.Response:
    closure_id = _int_id(request, "closure_id")
    revision = await service.delete_closure(
        request.app[POOL], request.app[CLOCK], actor_of(request), closure_id
    )
    return _changed(revision)


# --- the central catalogue --------------------------------------------------------------------------


@routes.get("/api/v1/admin/concerns")
async def admin_concerns(request: web.Request) -> web.Response:
    return web.json_response([concern_out(r) for r in await service.concern_catalogue(request.app[POOL])])


@routes.post("/api/v1/admin/concerns")
async def admin_create_concern(request: web.Request) -> web.Response:
    body = await parse_json(request, ConcernIn)
    await service.create_concern(request.app[POOL], request.app[CLOCK], actor_of(request), body)
    return web.json_response({"id": body.id}, status=201)


@routes.get("/api/v1/admin/concerns/{concern_id}")
async def admin_concern(request: web.Request) -> web.Response:
    return web.json_response(
        concern_out(await service.get_concern(request.app[POOL], path_id(request, "concern_id")))
    )


@routes.patch("/api/v1/admin/concerns/{concern_id}")
async def admin_update_concern(request: web.Request) -> web.Response:
    body = await parse_json(request, ConcernPatch)
    revisions = await service.update_concern(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "concern_id"), body
    )
    return web.json_response({"published_revisions": revisions})


# --- the policy check (R21) -------------------------------------------------------------------------


class PolicyQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    on: date | None = None


@routes.get("/api/v1/admin/policy")
async def admin_policy(request: web.Request) -> web.Response:
    query = parse_query(request, PolicyQuery)
    report = await service.policy_report(request.app[POOL], request.app[CLOCK], on=query.on)
    return web.json_response({"complies": all(r["complies"] for r in report), "locations": report})


@routes.get("/api/v1/admin/locations/{location_id}/policy")
async def admin_location_policy(request: web.Request) -> web.Response:
    query = parse_query(request, PolicyQuery)
    report = await service.policy_report(
        request.app[POOL], request.app[CLOCK], location_id=path_id(request, "location_id"), on=query.on
    )
    return web.json_response(report[0])


@routes.post("/api/v1/admin/locations/{location_id}/policy-approvals")
async def admin_add_approval(request: web.Request) -> web.Response:
    body = await parse_json(request, ApprovalIn)
    approval_id = await service.add_approval(
        request.app[POOL], request.app[CLOCK], actor_of(request), path_id(request, "location_id"), body
    )
    return web.json_response({"id": approval_id}, status=201)


# --- the allow-list (R6) ----------------------------------------------------------------------------


@routes.get("/api/v1/admin/allow-list")
async def admin_allow_list(request: web.Request) -> web.Response:
    revision, rows = await service.allow_list(request.app[POOL])
    entries = [
        {
            "entry": r["entry"],
            "note": r["note"],
            "added_by": r["added_by"],
            "added_at": r["added_at"].isoformat(),
        }
        for r in rows
    ]
    return web.json_response({"revision": revision, "entries": entries})


@routes.post("/api/v1/admin/allow-list")
async def admin_add_allow_entry(request: web.Request) -> web.Response:
    body = await parse_json(request, AllowEntryIn)
    entry, revision = await service.add_allow_entry(
        request.app[POOL], request.app[CLOCK], actor_of(request), body
    )
    return web.json_response({"entry": entry, "published_revision": revision}, status=201)


class AllowEntryRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str = Field(min_length=3, max_length=254)


# The entry travels in the body, never in the URL: it is an e-mail address.
@routes.delete("/api/v1/admin/allow-list")
async def admin_remove_allow_entry(request: web.Request) -> web.Response:
    body = await parse_json(request, AllowEntryRef)
    revision = await service.remove_allow_entry(
        request.app[POOL], request.app[CLOCK], actor_of(request), body.entry
    )
    return web.json_response({"published_revision": revision})


# --- the finder's tables ----------------------------------------------------------------------------


class StreetQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    location: str | None = Field(default=None, max_length=32)
    district: str | None = Field(default=None, max_length=80)
    q: str | None = Field(default=None, max_length=80)
    limit: int = Field(default=200, ge=1, le=2000)


@routes.get("/api/v1/admin/finder/streets")
async def admin_streets(request: web.Request) -> web.Response:
    query = parse_query(request, StreetQuery)
    rows = await finder.list_streets(
        request.app[POOL],
        location_id=query.location,
        district=query.district,
        prefix=query.q,
        limit=query.limit,
    )
    return web.json_response([street_out(r) for r in rows])


@routes.post("/api/v1/admin/finder/streets")
async def admin_add_street(request: web.Request) -> web.Response:
    body = await parse_json(request, StreetIn)
    street_id = await finder.add_street(request.app[POOL], request.app[CLOCK], actor_of(request), body)
    return web.json_response({"id": street_id}, status=201)


@routes.delete("/api/v1/admin/finder/streets/{street_id}")
async def admin_delete_street(request: web.Request) -> web.Response:
    await finder.delete_street(
        request.app[POOL], request.app[CLOCK], actor_of(request), _int_id(request, "street_id")
    )
    return web.json_response({"deleted": True})


@routes.get("/api/v1/admin/finder/other-jobcenters")
async def admin_other_jobcenters(request: web.Request) -> web.Response:
    rows = await finder.other_jobcenters(request.app[POOL])
    return web.json_response(
        [
            {
                "id": r["id"],
                "name": r["name"],
                "hotline": r["hotline"],
                "address": r["address"],
                "website": r["website"],
                "verified": r["verified"],
                "postcodes": list(r["postcodes"]),
                "municipalities": sorted(r["municipalities"]),
            }
            for r in rows
        ]
    )


@routes.put("/api/v1/admin/finder/other-jobcenters/{jobcenter_id}")
async def admin_put_other_jobcenter(request: web.Request) -> web.Response:
    jobcenter_id = path_id(request, "jobcenter_id")
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,47}", jobcenter_id):
        raise NotFoundError("Not found.")
    body = await parse_json(request, OtherJobcenterIn)
    await finder.put_other_jobcenter(
        request.app[POOL], request.app[CLOCK], actor_of(request), jobcenter_id, body
    )
    return web.json_response({"id": jobcenter_id})


# --- the change log ---------------------------------------------------------------------------------


class ChangesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    location: str | None = Field(default=None, max_length=32)
    limit: int = Field(default=100, ge=1, le=1000)


@routes.get("/api/v1/admin/changes")
async def admin_changes(request: web.Request) -> web.Response:
    query = parse_query(request, ChangesQuery)
    rows = await service.change_log(request.app[POOL], query.location, query.limit)
    return web.json_response(
        [
            {
                "id": r["id"],
                "at": r["at"].isoformat(),
                "staff": r["staff"],
                "action": r["action"],
                "entity": r["entity"],
                "entity_id": r["entity_id"],
                "location_id": r["location_id"],
                "details": r["details"],
            }
            for r in rows
        ]
    )


# --- public holidays of Bremen ----------------------------------------------------------------------


class HolidaysQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    year: int = Field(ge=2020, le=2100)


@routes.get("/api/v1/admin/holidays")
async def admin_holidays(request: web.Request) -> web.Response:
    """The public holidays of the state of Bremen in a year (no appointments on them, at any location).
    They come from the `holidays` package (Reformationstag included); nobody needs to keep them."""
    query = parse_query(request, HolidaysQuery)
    return web.json_response(
        [{"date": day.isoformat(), "name": name} for day, name in service.public_holidays(query.year)],
        dumps=lambda body: json.dumps(body, ensure_ascii=False),
    )
