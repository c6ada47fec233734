"""HTTP handlers of the reporting service: verify the staff identity the gateway signed (I5), parse the
query (pydantic), call a use case, respond. Every route here needs a verified identity: no header, a
forged or an expired one is 401; a missing role or location is 403.

Paths served (the gateway proxies them):
- GET /api/v1/staff/locations/{location_id}/day-list?date=YYYY-MM-DD   the Excel list (R22)
- GET /api/v1/staff/locations/{location_id}/day-lists?from=&to=        which lists exist (no data)
- GET /api/v1/staff/statistics/summary?from=&to=&location=             the architecture's summary
- GET /api/v1/staff/statistics/report?from=&to=&location=              every figure and breakdown
- GET /api/v1/staff/statistics/breakdown?by=&from=&to=&location=       one breakdown
- GET /api/v1/staff/statistics/export?from=&to=&location=              Excel, small counts suppressed
- GET /api/v1/admin/booking-patterns?from=&to=                         R48, administrators
- GET /api/v1/admin/retention-report?days=                             R33/R34, administrators
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.reporting import service, statistics
from services.reporting.config import Settings
from services.reporting.domain import Period
from services.reporting.models import Breakdown, StatisticsSummary
from services.reporting.workbooks import build_statistics_export
from shared.calendar import CalendarDay
from shared.clock import Clock
from shared.errors import ForbiddenError
from shared.identity import Role, StaffIdentity
from shared.web import CLOCK, POOL, SETTINGS, blank_is_none, json_model, parse_query, staff_identity

routes = web.RouteTableDef()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Personal data and statistics are not for caches, proxies or the browser's history (I6).
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff"}


def settings_of(request: web.Request) -> Settings:
    return cast(Settings, request.app[SETTINGS])


def clock_of(request: web.Request) -> Clock:
    return request.app[CLOCK]


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class DayListQuery(_Query):
    day: CalendarDay = Field(alias="date", description="The day of the list, `YYYY-MM-DD`.")


class PeriodQuery(_Query):
    # Empty (the template's `from=&to=` as an integration fills it) is the default, as for `location`.
    first: Annotated[CalendarDay | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        alias="from",
        description="First day (default: 30 days ago); empty or absent: the default.",
    )
    last: Annotated[CalendarDay | None, BeforeValidator(blank_is_none)] = Field(
        default=None,
        alias="to",
        description="Last day, inclusive (default: today); empty or absent: the default.",
    )
    # Empty (the form's "alle Standorte", or the template's `location=`) is all locations, as at the gateway.
    location: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, min_length=1, max_length=64, description="A location id; empty or absent: all."
    )


class BreakdownQuery(PeriodQuery):
    by: Literal["location", "group", "concern", "mode", "channel", "day", "week", "evening"] = Field(
        description="The dimension of the breakdown."
    )


class ReportQuery(_Query):
    days: int = Field(default=90, ge=1, le=400, description="How many days back the report reaches.")


def require_statistics(identity: StaffIdentity, location: str | None) -> None:
    """R32: the statistics role only (administrators included only if they hold it). A grant for some
    locations covers those; the figures of all locations need a grant for all."""
    if location is not None:
        identity.require(Role.STATISTICS, location)
        return
    if not identity.has(Role.STATISTICS) or identity.locations_with(Role.STATISTICS) is not None:
        raise ForbiddenError("The statistics of all locations need the statistics role for all locations.")


def statistics_period(request: web.Request, query: PeriodQuery) -> Period:
    return statistics.period_of(settings_of(request), clock_of(request), query.first, query.last)


@routes.get("/api/v1/staff/locations/{location_id}/day-list")
async def day_list(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    location_id = request.match_info["location_id"]
    identity.require(Role.APPOINTMENT_MANAGER, location_id)
    query = parse_query(request, DayListQuery)
    filename, content = await service.get_day_list(
        request.app[POOL], settings_of(request), clock_of(request), location_id, query.day
    )
    return web.Response(
        body=content,
        content_type=XLSX,
        headers={**PRIVATE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/api/v1/staff/locations/{location_id}/day-lists")
async def day_lists(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    location_id = request.match_info["location_id"]
    identity.require(Role.APPOINTMENT_MANAGER, location_id)
    query = parse_query(request, PeriodQuery)
    period = statistics_period(request, query)
    return json_model(await service.day_list_infos(request.app[POOL], location_id, period.first, period.last))


@routes.get("/api/v1/staff/statistics/summary")
async def statistics_summary(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, PeriodQuery)
    require_statistics(identity, query.location)
    report = await statistics.statistics_report(
        request.app[POOL],
        settings_of(request),
        clock_of(request),
        statistics_period(request, query),
        query.location,
    )
    return json_model(StatisticsSummary.of(report))


@routes.get("/api/v1/staff/statistics/report")
async def statistics_full(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, PeriodQuery)
    require_statistics(identity, query.location)
    report = await statistics.statistics_report(
        request.app[POOL],
        settings_of(request),
        clock_of(request),
        statistics_period(request, query),
        query.location,
    )
    return json_model(report)


@routes.get("/api/v1/staff/statistics/breakdown")
async def statistics_breakdown(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, BreakdownQuery)
    require_statistics(identity, query.location)
    report = await statistics.statistics_report(
        request.app[POOL],
        settings_of(request),
        clock_of(request),
        statistics_period(request, query),
        query.location,
    )
    return json_model(
        Breakdown(
            by=query.by,
            first=report.first,
            last=report.last,
            location=query.location,
            items=report.breakdown(query.by),
        )
    )


@routes.get("/api/v1/staff/statistics/export")
async def statistics_export(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query = parse_query(request, PeriodQuery)
    require_statistics(identity, query.location)
    settings, clock = settings_of(request), clock_of(request)
    period = statistics_period(request, query)
    report = await statistics.statistics_report(request.app[POOL], settings, clock, period, query.location)
    content = build_statistics_export(
        report,
        scope=await statistics.scope_label(request.app[POOL], query.location),
        threshold=settings.statistics_min_count,
        generated_at=clock.now(),
    )
    scope = query.location or "alle"
    filename = f"otv-statistik_{scope}_{period.first.isoformat()}_{period.last.isoformat()}.xlsx"
    return web.Response(
        body=content,
        content_type=XLSX,
        headers={**PRIVATE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/api/v1/admin/booking-patterns")
async def booking_patterns(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    identity.require(Role.ADMIN)
    query = parse_query(request, PeriodQuery)
    patterns = await statistics.booking_patterns(
        request.app[POOL], settings_of(request), statistics_period(request, query)
    )
    response = json_model(patterns)
    response.headers.update(PRIVATE_HEADERS)
    return response


@routes.get("/api/v1/admin/retention-report")
async def retention_report(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    identity.require(Role.ADMIN)
    query = parse_query(request, ReportQuery)
    report = await statistics.retention_report(
        request.app[POOL], settings_of(request), clock_of(request), query.days
    )
    return json_model(report)
