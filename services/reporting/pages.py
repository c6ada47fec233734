"""Server-rendered staff pages of reporting (the gateway proxies them behind the staff login): the
statistics with charts as inline SVG (R32, R35), the booking-pattern report (R48) and the deletion report
(R33, R34). They work without JavaScript and load nothing from elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import pydantic
from aiohttp import web

from services.reporting import statistics
from services.reporting.api import (
    PRIVATE_HEADERS,
    PeriodQuery,
    ReportQuery,
    clock_of,
    require_statistics,
    settings_of,
    statistics_period,
)
from services.reporting.charts import bar_chart, column_chart
from services.reporting.domain import (
    CANCELLED_BY_LABELS,
    LEAD_TIME_BUCKETS,
    OUTCOME_LABELS,
    WAITING_LABELS,
    Period,
)
from services.reporting.models import StatisticsReport
from shared.errors import ValidationError
from shared.identity import Role
from shared.labels import MAIL_KINDS_DE
from shared.staff_nav import FORM_TOKEN_FIELD, FORM_TOKEN_HEADER, main_nav
from shared.web import POOL, parse_query, staff_identity

routes = web.RouteTableDef()

PERIOD_PROBLEM_DE = (
    "Zeitraum: bitte zwei gültige Tage wählen, „bis“ nicht vor „von“, höchstens {max_days} Tage."
    " Angezeigt werden die letzten 30 Tage."
)
DAYS_PROBLEM_DE = "Zeitraum: bitte 1 bis 400 Tage. Angezeigt werden die letzten 90 Tage."

# Inline SVG, a small inline style sheet and the staff pages' own stylesheet (the gateway serves it);
# nothing else may load (no CDN, no script).
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'self'; base-uri 'none'"
)


def _page(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    """A page whose header links only to the pages the signed-in person may open."""
    identity = staff_identity(request)
    context["may_see"] = {
        "statistics": identity.has(Role.STATISTICS),
        "admin": identity.has(Role.ADMIN),
    }
    # The staff pages' header: the same navigation, and the logout with the session's form token, which
    # the gateway hands over (an integration's key has no session, so no logout).
    context["nav"] = main_nav(identity)
    context["current_path"] = request.path
    context["me"] = identity.subject
    context["form_token"] = request.headers.get(FORM_TOKEN_HEADER, "")
    context["form_token_field"] = FORM_TOKEN_FIELD
    response = aiohttp_jinja2.render_template(template, request, context)
    response.headers.update(PRIVATE_HEADERS)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _charts(report: StatisticsReport) -> dict[str, Any]:
    days = report.by_day
    weeks = report.by_week
    return {
        "per_day": column_chart(
            "Termine und Stornierungen je Tag",
            [d.key[8:10] + "." + d.key[5:7] + "." for d in days],
            [("Termine", [d.appointments for d in days]), ("Stornierungen", [d.cancellations for d in days])],
        ),
        "per_week": column_chart(
            "Termine je Kalenderwoche",
            [w.key[5:] for w in weeks],
            [("Termine", [w.appointments for w in weeks]), ("nicht erschienen", [w.no_shows for w in weeks])],
        ),
        "locations": bar_chart(
            "Termine je Standort", [(f.label, f.appointments) for f in report.by_location]
        ),
        "utilisation": bar_chart(
            "Auslastung des angebotenen Kontingents je Standort",
            [(f.label, f.utilisation or 0.0) for f in report.by_location if f.offered_minutes],
            percent=True,
            color="#548235",
        ),
        "channels": bar_chart(
            "Termine je Buchungskanal", [(f.label, f.appointments) for f in report.by_channel]
        ),
        "modes": bar_chart("Termine je Art", [(f.label, f.appointments) for f in report.by_mode]),
        "cancelled_by": bar_chart(
            "Stornierungen nach Stornierenden",
            [(label, report.total.cancelled_by.get(k, 0)) for k, label in CANCELLED_BY_LABELS.items()],
            color="#c55a11",
        ),
        "outcomes": bar_chart(
            "Ergebnisse der Termine",
            [(label, report.total.outcomes.get(k, 0)) for k, label in OUTCOME_LABELS.items()],
            color="#7030a0",
        ),
        "lead_times": bar_chart(
            "Vorlaufzeit zwischen Buchung und Termin",
            [(label, report.total.lead_time_buckets.get(label, 0)) for label, _ in LEAD_TIME_BUCKETS],
        ),
        "concerns": bar_chart(
            "Die häufigsten Anliegen", [(f.label, f.appointments) for f in report.by_concern[:15]]
        ),
    }


def _period(request: web.Request) -> tuple[PeriodQuery, Period, list[str]]:
    """The period the filter names; an impossible one (a typed date that is none, "bis" before "von",
    too long) shows the default period with a note on the page, not an error in JSON."""
    try:
        query = parse_query(request, PeriodQuery)
        return query, statistics_period(request, query), []
    except ValidationError:
        pass
    try:
        query = PeriodQuery.model_validate({"location": request.query.get("location")})
    except pydantic.ValidationError:
        query = PeriodQuery()
    note = PERIOD_PROBLEM_DE.format(max_days=settings_of(request).statistics_max_days)
    return query, statistics_period(request, query), [note]


@routes.get("/staff/statistics")
async def statistics_page(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    query, period, problems = _period(request)
    require_statistics(identity, query.location)
    settings, clock = settings_of(request), clock_of(request)
    report = await statistics.statistics_report(request.app[POOL], settings, clock, period, query.location)
    params = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if query.location:
        params["location"] = query.location
    locations = await statistics.location_choices(request.app[POOL])
    return _page(
        request,
        "statistics.html",
        {
            "report": report,
            "charts": _charts(report),
            "period": period,
            "location": query.location,
            "locations": locations,
            "query": urlencode(params),
            "threshold": settings.statistics_min_count,
            "cancelled_by_labels": CANCELLED_BY_LABELS,
            "outcome_labels": OUTCOME_LABELS,
            "mail_kinds": MAIL_KINDS_DE,
            "waiting_labels": WAITING_LABELS,
            "problems": problems,
        },
    )


@routes.get("/staff/admin/booking-patterns")
async def patterns_page(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    identity.require(Role.ADMIN)
    _query, period, problems = _period(request)
    patterns = await statistics.booking_patterns(request.app[POOL], settings_of(request), period)
    return _page(request, "patterns.html", {"patterns": patterns, "period": period, "problems": problems})


@routes.get("/staff/admin/retention")
async def retention_page(request: web.Request) -> web.Response:
    identity = staff_identity(request)
    identity.require(Role.ADMIN)
    try:
        query, problems = parse_query(request, ReportQuery), []
    except ValidationError:
        query, problems = ReportQuery(), [DAYS_PROBLEM_DE]
    report = await statistics.retention_report(
        request.app[POOL], settings_of(request), clock_of(request), query.days
    )
    return _page(request, "retention.html", {"report": report, "days": query.days, "problems": problems})
