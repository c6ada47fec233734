"""The reporting service's staff and admin routes for the OpenAPI document, declared from its own pydantic
models; the gateway merges `document()` into `/api/v1/openapi.json` with the routes it proxies.

Every route needs a staff session or API key at the gateway (401 `unauthenticated` without one) and the
role named in its summary (403 `forbidden` otherwise)."""

from __future__ import annotations

from typing import Any

from services.reporting.api import XLSX, BreakdownQuery, DayListQuery, PeriodQuery, ReportQuery
from services.reporting.models import (
    BookingPatterns,
    Breakdown,
    DayListInfo,
    RetentionReport,
    StatisticsReport,
    StatisticsSummary,
)
from shared.openapi import ApiRoute, build_document

LOCATION_ID = {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["mitte"]}
AUTH = ("unauthenticated", "forbidden", "validation_error")
BINARY = {"type": "string", "format": "binary"}
ATTACHMENT = {"Content-Disposition": {"type": "string", "examples": ['attachment; filename="x.xlsx"']}}
PERIOD = (
    "`from` and `to` are dates (`YYYY-MM-DD`, both inclusive; default: the last 30 days), `location` "
    "narrows to one location. Appointments count by the Berlin day of their start; a cancelled one "
    "counts as an appointment and as a cancellation."
)

ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/day-list",
        "The Excel list of a location's appointments of one day (appointment manager of the location, R22)",
        query=DayListQuery,
        raw_response_schema=BINARY,
        content_type=XLSX,
        response_headers=ATTACHMENT,
        errors=(*AUTH, "not_found", "gone"),
        path_params={"location_id": LOCATION_ID},
        tags=("staff: day lists",),
        description="Created automatically at 06:00 of its day and built again when the day's appointments "
        "change; one sheet per service point group, sorted by time. The file holds personal data and is "
        "deleted when its day is over (R33): a past day's list answers 410 `gone`. A later day's list is "
        "built for the download only and not kept.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/locations/{location_id}/day-lists",
        "Which day lists of a location exist in a period, without their content",
        query=PeriodQuery,
        response=list[DayListInfo],
        errors=AUTH,
        path_params={"location_id": LOCATION_ID},
        tags=("staff: day lists",),
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/statistics/summary",
        "Appointments, cancellations and no-shows by location, concern and channel (statistics role, R32)",
        query=PeriodQuery,
        response=StatisticsSummary,
        errors=AUTH,
        tags=("statistics",),
        description=PERIOD,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/statistics/report",
        "Every figure: cancellations by whom, hand-overs and transfers, outcomes, utilisation, lead times, "
        "callbacks, mails, the waiting list; by location, group, concern, mode, channel, day, week and "
        "evening (statistics role, R35)",
        query=PeriodQuery,
        response=StatisticsReport,
        errors=AUTH,
        tags=("statistics",),
        description=PERIOD,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/statistics/breakdown",
        "The figures of one breakdown (statistics role)",
        query=BreakdownQuery,
        response=Breakdown,
        errors=AUTH,
        tags=("statistics",),
        description=PERIOD,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/statistics/export",
        'The statistics as an Excel file; counts from 1 to 4 shown as "<5", and "(x)" for a count that would'
        " give such a one back by subtraction from a total (statistics role, R35)",
        query=PeriodQuery,
        raw_response_schema=BINARY,
        content_type=XLSX,
        response_headers=ATTACHMENT,
        errors=AUTH,
        tags=("statistics",),
        description=PERIOD,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/booking-patterns",
        "Booking patterns: many bookings from one network or e-mail domain, rapid cancel-and-rebook, "
        "changes after booking (administrators, R48)",
        query=PeriodQuery,
        response=BookingPatterns,
        errors=AUTH,
        tags=("admin",),
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/retention-report",
        "The deletion report: runs of every service's retention job, counts only (administrators, R33, R34)",
        query=ReportQuery,
        response=RetentionReport,
        errors=AUTH,
        tags=("admin",),
    ),
)


def document() -> dict[str, Any]:
    return build_document(
        ROUTES, title="Reporting", description="Day lists, statistics and the deletion report."
    )
