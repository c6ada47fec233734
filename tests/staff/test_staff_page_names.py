"""A staff page has one name: the link that leads to it, its <title> and its <h1> say the same thing
(WCAG 2.4.2 page titled, 3.2.4 consistent identification). The rule the walk checks: a link's text
appears word for word in the target page's title and in its h1 (a title may add to the name, as
"Zentraler Leistungskatalog" for the link "Leistungskatalog", never name something else)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from shared.identity import Role
from tests.staff.conftest import GatewayFactory, StaffClient, real_stack

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff pages.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


class PageNames(HTMLParser):
    """The title, the h1 and the links of the navigations (by their aria-label) and of the start page's
    sections (by their heading's id)."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.h1 = ""
        self.links: list[tuple[str, str, str]] = []  # (where, href, text)
        self._in: str | None = None
        self._where: list[str] = []
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("title", "h1"):
            self._in = tag
        elif tag == "nav":
            self._where.append(a.get("aria-label") or "nav")
        elif tag == "section":
            self._where.append(a.get("aria-labelledby") or "section")
        elif tag == "a" and self._where and (a.get("href") or "").startswith("/staff/"):
            self._href, self._text = a.get("href"), ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "h1"):
            self._in = None
        elif tag in ("nav", "section") and self._where:
            self._where.pop()
        elif tag == "a" and self._href is not None:
            self.links.append((self._where[-1], self._href, " ".join(self._text.split())))
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data
        if self._href is not None:
            self._text += data


async def names_of(client: StaffClient, path: str) -> PageNames:
    response = await client.get(path)
    assert response.status == 200, (path, response.status)
    parsed = PageNames()
    parsed.feed(await response.text())
    return parsed


async def test_every_staff_link_names_the_page_it_opens_in_its_title_and_heading(
    clean_db: Any, make_gateway: GatewayFactory, amqp: Any
) -> None:
    async with real_stack(make_gateway, amqp, reporting=True, notifier=True) as stack:
        member = await stack.gateway.signed_in(
            "names-admin", (Role.ADMIN, "*"), (Role.AUDIT, "*"), (Role.STATISTICS, "*")
        )
        start = await names_of(member, "/staff/")
        reports = await names_of(member, "/staff/admin/retention")  # the reports' own navigation
        links = {
            (href, text)
            for where, href, text in start.links + reports.links
            if where in ("Hauptnavigation", "Auswertungen", "admin-heading", "audit-heading", "stats-heading")
        }
        assert ("/staff/admin/dead-letters", "Nicht zustellbare Nachrichten") in links
        assert ("/staff/admin/booking-patterns", "Auffällige Buchungsmuster") in links
        assert len({href for href, _ in links}) >= 14, links
        wrong = []
        for href, text in sorted(links):
            page = await names_of(member, href)
            title, h1 = " ".join(page.title.split()), " ".join(page.h1.split())
            if text not in title or text not in h1:
                wrong.append(f"{href}: link {text!r}, title {title!r}, h1 {h1!r}")
        assert not wrong, "\n".join(wrong)
