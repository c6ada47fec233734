"""The customer's waiting-list pages (R45, issue 11): join when nothing (fitting) is free, the double
opt-in, the wish's page with its offer and the withdraw button, the expired-link page; in German, Leichte
Sprache and English (R43), built on the booking pages' layout, forms and security (`services/gateway/web`).

`setup_waiting(app)` runs after `setup_web(app)`: it adds this package's templates to the pages' Jinja
environment, merges its own message catalogue (domain `waiting`) into each language of the pages, and
registers the routes.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web
from babel.support import Translations

from services.gateway.config import Settings
from services.gateway.web import i18n
from services.gateway.web.pages import JINJA
from services.gateway.web_waiting import pages
from shared.web import SETTINGS

HERE = Path(__file__).parent
TRANSLATIONS = HERE / "translations"
DOMAIN = "waiting"


def catalogues(extra: Path | None = None) -> dict[str, Translations]:
    """This package's catalogues by language, compiled in memory (like the pages' own): the built-in ones
    and those of `OTV_TRANSLATIONS_DIR`. A language without one shows these pages' English ids."""
    found = i18n.catalogues(f"{DOMAIN}.po", TRANSLATIONS, extra)
    return {code: i18n.compile_catalogue(po_file, code, DOMAIN) for code, po_file in found.items()}


def setup_waiting(app: web.Application) -> None:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    environment = app[JINJA]
    environment.loader = jinja2.ChoiceLoader(
        [environment.loader, jinja2.FileSystemLoader(HERE / "templates")]  # type: ignore[list-item]  # set by setup_web
    )
    own_catalogues = catalogues(settings.extra_translations())
    for code, language in app[i18n.LANGUAGES].items():
        own = own_catalogues.get(code)
        if own is not None and isinstance(language.translations, Translations):
            # Our message ids are our own (tests/waiting_list checks they do not collide with the pages').
            language.translations.merge(own)

    router = app.router
    router.add_get("/waiting-list/join", pages.join_page)
    router.add_post("/waiting-list/join", pages.join_submit)
    router.add_get("/waiting-list/registered", pages.registered_page)
    router.add_get("/waiting-list/{wish_id}", pages.wish_page)
    router.add_get("/waiting-list/{wish_id}/{action:confirm|withdraw|offer}", pages.wish_page)
    router.add_post("/waiting-list/{wish_id}/{action:confirm|withdraw|offer}", pages.wish_action)
