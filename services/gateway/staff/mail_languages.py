"""The languages the notifier writes mails in, for the staff pages that tell which language a customer's
mails come in: a customer may book in a further language of the pages (OTV_TRANSLATIONS_DIR) for which
the notifier has no mail texts, and then gets German ones (or the nearest along the tag, R43).

They are the languages of the notifier's mail texts (`GET /api/v1/admin/mail-templates`, asked with the
gateway's own read-only identity, as the catalog index does) and change only with a notifier release:
kept for a few minutes. Without an answer, the languages every release has (de, de-x-ls, en).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog
from aiohttp import web

from services.gateway.staff import upstream
from services.gateway.staff.catalog_index import system_identity
from shared.errors import UnavailableError
from shared.events.appointment import Language
from shared.languages import pick

log = structlog.get_logger(__name__)

KEEP_SECONDS = 300.0
BUILT_IN: tuple[str, ...] = tuple(language.value for language in Language)


def languages_of(texts: Iterable[Any]) -> tuple[str, ...]:
    """The languages of the notifier's list of mail texts, in its order."""
    return tuple(dict.fromkeys(str(t.get("language")) for t in texts if isinstance(t, dict)))


class MailLanguages:
    def __init__(self) -> None:
        self._known: tuple[str, ...] = ()
        self._learnt_at = 0.0

    def learn(self, texts: Iterable[Any]) -> tuple[str, ...]:
        found = languages_of(texts)
        if found:
            self._known, self._learnt_at = found, time.monotonic()
        return found

    async def languages(self, request: web.Request) -> tuple[str, ...]:
        if self._known and time.monotonic() - self._learnt_at < KEEP_SECONDS:
            return self._known
        try:
            status, data = await upstream.call(
                request, "notifier", "GET", "/api/v1/admin/mail-templates", identity=system_identity(request)
            )
        except UnavailableError:
            status, data = 503, None
        if status == 200 and isinstance(data, list) and self.learn(data):
            return self._known
        log.warning("mail_languages_unknown", status=status)
        return self._known or BUILT_IN

    async def mail_language(self, request: web.Request, booked_in: str) -> str:
        """The language the mails to a customer who booked in `booked_in` come in."""
        return pick(booked_in, await self.languages(request))


MAIL_LANGUAGES = web.AppKey("staff_mail_languages", MailLanguages)
