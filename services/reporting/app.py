"""Composition root of the reporting service: the read model's consumer, the scheduler (day lists at
06:00, their deletion, the retention job), the staff API and pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.reporting import api, pages, service
from services.reporting.config import Settings
from services.reporting.consumer import consumers
from shared import dead_letters
from shared.background import consumers_context, periodic_context, relay_context
from shared.clock import BERLIN, Clock
from shared.web import CLOCK, POOL, broker_context, create_base_app, database_context, single_valued_query


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %".replace(".", ",")


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}".replace(".", ",")


def _berlin(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M")


# The deletion report's words (R33, R34): what each service's retention run counted, and its jobs.
RETENTION_LABELS_DE = {
    "appointments_erased": "Termine (Personendaten gelöscht)",
    "appointments_anonymised": "Termine anonymisiert",
    "staff_notes_erased": "Notizen der Mitarbeitenden gelöscht",
    "wishes_erased": "Wartelisten-Einträge (Personendaten gelöscht)",
    "mails_erased": "E-Mails gelöscht",
    "manage_links_erased": "Termin-Links gelöscht",
    "suppressions_lifted": "E-Mail-Sperren aufgehoben",
    "day_list_files_deleted": "Excel-Tageslisten gelöscht",
    "revision_rows_deleted": "Änderungsstände gelöscht",
    "outbox_events_deleted": "gesendete Ereignisse gelöscht",
    "dead_letters_deleted": "nicht zustellbare Nachrichten gelöscht",
    "inbox_rows_deleted": "Empfangsvermerke gelöscht",
    "personal_data": "Personendaten",
    "day_list_files": "Excel-Tageslisten",
    "erasure_on_request": "Löschung auf Antrag (Art. 17 DSGVO)",
}


def _label(value: str) -> str:
    return RETENTION_LABELS_DE.get(value, value)


FILTERS: dict[str, Callable[..., str]] = {"pct": _pct, "hours": _hours, "berlin": _berlin, "label": _label}


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = create_base_app(settings, clock=clock)
    app.middlewares.append(single_valued_query)  # innermost: a repeated query parameter is a 422
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("services.reporting", "templates"),
        autoescape=True,
        filters=FILTERS,
    )
    app.router.add_routes(api.routes)
    app.router.add_routes(pages.routes)
    app.router.add_routes(dead_letters.routes)  # I4: administrators see and replay them

    async def schedule(app: web.Application) -> None:
        await service.run_schedule(app[POOL], settings, app[CLOCK])

    app.cleanup_ctx.extend(
        [
            database_context(settings),
            broker_context(settings),
            relay_context,
            consumers_context(consumers),
            periodic_context(
                "reporting-schedule", settings.scheduler_interval_seconds, schedule, first_delay=1.0
            ),
        ]
    )
    return app
