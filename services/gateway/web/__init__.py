"""The customer's web pages of the gateway (issue 6): the booking dialogue, the manage page, the
accessibility statement and the embedding page, in German, Leichte Sprache and English.

`setup_web(app)` is the one entry point the composition root calls.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.gateway.config import Settings
from services.gateway.openapi import openapi_json
from services.gateway.web import error_pages, i18n, manage, pages, static_files, steps
from services.gateway.web.security import Csrf, Sealer, security_headers
from shared.web import SETTINGS

HERE = Path(__file__).parent
STATIC_PREFIX = "/static/"


def setup_web(app: web.Application) -> None:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    app[i18n.LANGUAGES] = i18n.load_languages(extra=settings.extra_translations())
    app[pages.CSRF] = Csrf(settings.web_secret, settings.public_base_url)
    app[pages.SEALER] = Sealer(settings.web_secret)
    app[pages.CATALOG_CACHE] = {}
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined if settings.log_level == "DEBUG" else jinja2.Undefined,
        app_key=pages.JINJA,
    )
    environment.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    environment.filters["without_links"] = pages.without_links
    app.middlewares.append(i18n.language_middleware)
    # Next inside it: errors of the customer pages' addresses as pages in the customer's language.
    app.middlewares.append(error_pages.error_page_middleware)
    app.on_response_prepare.append(security_headers(settings.frame_ancestors))

    router = app.router
    router.add_get("/", steps.location_page, name="web_start")
    router.add_post("/", steps.location_submit)
    router.add_get("/finder", steps.finder_get)
    router.add_post("/finder", steps.finder_submit)
    router.add_get("/concern", steps.concern_page)
    router.add_post("/concern", steps.concern_submit)
    router.add_get("/time", steps.time_page)
    router.add_post("/time", steps.time_submit)
    router.add_get("/details", steps.details_page)
    router.add_post("/details", steps.details_submit)
    router.add_get("/details/hold", steps.details_rehold_get)
    router.add_post("/details/hold", steps.details_rehold)
    router.add_get("/confirmation", manage.confirmation_page)
    router.add_get("/manage", manage.link_request_page)
    router.add_post("/manage", manage.link_request_submit)
    router.add_get("/manage/{appointment_id}", manage.manage_page)
    router.add_get("/manage/{appointment_id}/cancel", manage.cancel_page)
    router.add_post("/manage/{appointment_id}/cancel", manage.cancel_submit)
    router.add_get("/manage/{appointment_id}/reschedule", manage.reschedule_page)
    router.add_post("/manage/{appointment_id}/reschedule", manage.reschedule_submit)
    router.add_get("/manage/{appointment_id}/reschedule/confirm", manage.reschedule_confirm_page)
    router.add_post("/manage/{appointment_id}/reschedule/confirm", manage.reschedule_confirm_submit)
    router.add_post("/challenge", pages.challenge_submit)
    router.add_get("/accessibility", manage.accessibility_page)
    router.add_get("/privacy", manage.privacy_page)
    router.add_get("/embed", manage.embed_page)
    # A file's GET and HEAD; what has no file (or another method) is answered by error_pages.
    router.add_get(STATIC_PREFIX + "{filename:.+}", static_files.static_file)
    # The public API's description (merged from the services' declarations, see services/gateway/openapi.py).
    router.add_get("/api/v1/openapi.json", openapi_json)
