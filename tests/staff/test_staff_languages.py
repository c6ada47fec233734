"""The page of the mail texts names the languages in German and lists every language customers can book
in (R43: the built-in ones and those a catalogue in `OTV_TRANSLATIONS_DIR` adds): one without mail texts
of its own says which language its customers get their mails in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.identity import Role
from tests.staff.conftest import Gateway, GatewayFactory, notifier_behind_gateway
from tests.web.test_web_further_language import turkish_catalogue

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.fixture
async def turkish_texts_gateway(
    clean_db: dict[str, asyncpg.Pool], make_gateway: GatewayFactory, amqp: Any, tmp_path: Path
) -> AsyncIterator[Gateway]:
    turkish_catalogue(tmp_path)
    async with notifier_behind_gateway(make_gateway, amqp, translations_dir=str(tmp_path)) as started:
        yield started


@pytest.mark.req("R43")
@pytest.mark.req("R10")
async def test_the_mail_texts_page_names_languages_in_german_and_lists_those_without_mail_texts(
    turkish_texts_gateway: Gateway,
) -> None:
    admin = await turkish_texts_gateway.signed_in("text-languages", (Role.ADMIN, "*"))
    html = await (await admin.get("/staff/admin/texts")).text()
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert {"Deutsch", "Leichte Sprache", "Englisch"} <= set(cells)
    assert not {"de", "de-x-ls", "en", "tr"} & set(cells)
    # Turkish is bookable (its page catalogue) but has no mail texts: its customers read German mails.
    without = re.search(r'<section id="without-mail-texts".*?</section>', html, re.S)
    assert without, html
    assert "Türkisch" in without.group(0) and "Deutsch" in without.group(0)
    assert "Englisch" not in without.group(0)
    edit = await (await admin.get("/staff/admin/texts/confirmation/de-x-ls")).text()
    assert "<title>Text bearbeiten: Bestätigung (Leichte Sprache)" in edit
    # The plain text ends in the foot all mails share; the page says what that line is.
    include = '{% include "de-x-ls/_footer.txt.j2" %}'
    text = re.search(
        r'<textarea id="text"[^>]*aria-describedby="text-hint"[^>]*>(.*?)</textarea>', edit, re.S
    )
    assert text and unescape(text.group(1)).rstrip().endswith(include)
    hint = re.search(r'<span id="text-hint" class="hint">(.*?)</span>', edit, re.S)
    assert hint and include in unescape(re.sub(r"<[^>]+>", "", hint.group(1)))
