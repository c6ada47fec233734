"""Shared parts of the customer pages (R1, R42, R43): rendering in the request's language, links that keep
the language, the sealed state of the dialogue (`s`), CSRF-checked forms, friendly error pages, the bot
defence's check page, and the catalog's lists (briefly cached). The dialogue is in `steps.py`, the
confirmation and manage pages in `manage.py`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web
from babel.dates import format_date, format_time
from markupsafe import Markup, escape
from yarl import URL

from services.gateway.bot_defence import BOT_DEFENCE, Bucket, Verdict
from services.gateway.config import Settings
from services.gateway.origins import is_local_target
from services.gateway.proxy import client_ip
from services.gateway.web import forms
from services.gateway.web.client import UpstreamUnavailable, call
from services.gateway.web.i18n import DEFAULT_LANGUAGE, LANGUAGE_PARAM, LANGUAGES, _, current, ngettext
from services.gateway.web.security import CSRF_FIELD, Csrf, Sealer
from shared.clock import BERLIN
from shared.errors import OTVError
from shared.events.catalog import BOOKING_CUTOFF
from shared.languages import babel_locale as locale_for
from shared.phone import phone_link, with_phone_links
from shared.web import CLOCK, SETTINGS, parse_form, route_of

log = structlog.get_logger(__name__)

# Our own aiohttp_jinja2 environment; the staff pages have theirs.
JINJA = web.AppKey("otv_web_jinja2", jinja2.Environment)
CSRF = web.AppKey("web_csrf", Csrf)
SEALER = web.AppKey("web_sealer", Sealer)
STATE = "s"
# What one handler tells the page it renders (the day to show again, the choices to keep).
NOTES = web.RequestKey("otv_web_notes", dict)
HORIZON_DAYS = 56  # availability: at most 8 weeks (`to` inclusive)
MODES = ("in_person", "phone")

Handler = Callable[..., Awaitable[web.StreamResponse]]


# --- helpers ----------------------------------------------------------------------------------------


def notes(request: web.Request) -> dict[str, Any]:
    found = request.get(NOTES)
    if found is None:
        found = request[NOTES] = {}
    return found


def settings_of(request: web.Request) -> Settings:
    settings = request.app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    return settings


def lang() -> str:
    language = current()
    return language.code if language else DEFAULT_LANGUAGE


def babel_locale() -> str:
    """Dates and times as the mails write them (`services/notifier/texts.py`): British English, so an
    English page says "Monday, 7 December 2026" like the confirmation mail; a language added as content
    (R43) in its own way where Babel knows it."""
    return locale_for(lang())


def url(path: str, **params: Any) -> str:
    """An internal link that keeps the language (R43)."""
    query = {k: str(v) for k, v in params.items() if v not in (None, "")}
    if lang() != DEFAULT_LANGUAGE:
        query[LANGUAGE_PARAM] = lang()
    if not query:
        return path
    fragment = ""
    if "#" in path:
        path, fragment = path.split("#", 1)
        fragment = "#" + fragment
    return f"{path}?{urlencode(query)}{fragment}"


def local(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(BERLIN)


def fmt_date(value: str | datetime | date) -> str:
    day = value if isinstance(value, date) and not isinstance(value, datetime) else local(value).date()
    return format_date(day, format="full", locale=babel_locale())


def fmt_time(value: str | datetime) -> str:
    return format_time(local(value), format="HH:mm", locale=babel_locale())


def german(term: str) -> Markup:
    """A German term kept in a page of another language, so that people recognise it from their letters
    (Kundennummer, BG-Nummer, names of offices): marked `lang="de"`, so that a screen reader reads it with
    a German voice (WCAG 3.1.2). The templates pass it into a text as a placeholder, so that the German and
    the Leichte-Sprache catalogues place it (and may spell it) their own way."""
    if lang().startswith("de"):
        return escape(term)
    return Markup('<span lang="de">{}</span>').format(term)


def today(request: web.Request) -> date:
    return request.app[CLOCK].now().astimezone(BERLIN).date()


def first_open_day(request: web.Request) -> date:
    """The first day customers can still book: today until the day's cutoff (06:00, R19), then tomorrow."""
    now = request.app[CLOCK].now().astimezone(BERLIN)
    return now.date() if now.time() < BOOKING_CUTOFF else now.date() + timedelta(days=1)


def last_open_day(request: web.Request) -> date:
    """The last day booking may take: today + the longest horizon (56 days, R19), whatever the hour. Before
    06:00 the calendar runs from today to that day: one day more than booking answers at once."""
    return today(request) + timedelta(days=HORIZON_DAYS)


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    address: str | None = None,
) -> web.Response:
    """`address`: the page's own address when it answers a POST to another one (the language links)."""
    languages = request.app[LANGUAGES]
    here = URL(address) if address else request.rel_url
    ctx: dict[str, Any] = {
        "lang": lang(),
        "languages": [
            {
                "code": code,
                "name": language.name,
                "url": str(here.with_query({**here.query, LANGUAGE_PARAM: code})),
                "current": code == lang(),
            }
            for code, language in languages.items()
        ],
        "csrf_field": CSRF_FIELD,
        "csrf_token": request.app[CSRF].form_token(request),
        "url": url,
        "fmt_date": fmt_date,
        "fmt_time": fmt_time,
        "german": german,
        # A link that dials it (a global tel: URI), or text where the number has no global form.
        "hotline": phone_link(settings_of(request).hotline),
        "phone_link": phone_link,
        "imprint_url": settings_of(request).imprint_url,
        "errors": forms.FormErrors(),
        "self_url": str(here),
        "request": request,
        "notes": notes(request),
        "embedded": request.query.get("embed") == "1",
    }
    ctx.update(context or {})
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status, app_key=JINJA)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang()
    request.app[CSRF].set_cookie(request, response)
    return response


def without_links(message: str) -> str:
    """A message as text for a place that is a link itself (the error summary's link to its field): a
    message with markup (a hotline as a link, `shared.phone`) without its tags, any other as it is."""
    return message.striptags() if isinstance(message, Markup) else message


# The longest address a redirect of the pages sends. The dialogue's state (`s`) is a few hundred
# characters and a manage link's token at most 200; far longer is an address pasted twice or a crafted
# one, and a Location of several KB makes a proxy refuse the whole answer (nginx: 502 beyond its 4 or 8 KB
# header buffer). Such an address leads to its page without the query (a step then starts over).
MAX_LOCATION = 2000


def redirect(location: str) -> web.HTTPSeeOther:
    if len(location) > MAX_LOCATION:
        path = urlsplit(location).path
        log.info("redirect_shortened", length=len(location))
        location = url(path if is_local_target(path) and len(path) <= MAX_LOCATION else "/")
    return web.HTTPSeeOther(location)


ENDED = "ended"  # the start page's parameter: the dialogue the customer came from ran out


def start_again(request: web.Request) -> web.HTTPSeeOther:
    """To the start page, for a step whose earlier steps are missing. A dialogue whose state ran out (after a
    day) says so there, instead of dropping the customer at the start without a word (WCAG 3.3.1)."""
    if request.app[SEALER].stale(request.query.get(STATE)):
        return redirect(url("/", **{ENDED: "1"}))
    return redirect(url("/"))


def error_page(
    request: web.Request, status: int, title: str, message: str, *, address: str | None = None, **extra: Any
) -> web.Response:
    context = {"title": title, "message": message, **extra}
    return render(request, "error.html", context, status=status, address=address)


def unavailable(request: web.Request, status: int = 503) -> web.Response:
    """The booking cannot answer: a service is down (503), or something failed unexpectedly (500)."""
    return error_page(
        request,
        status,
        _("The appointment booking is not available right now"),
        with_phone_links(
            _("Please try again in a few minutes. If it is urgent, call us: %(hotline)s."),
            hotline=settings_of(request).hotline,
        ),
    )


def not_found(request: web.Request) -> web.Response:
    return error_page(
        request,
        404,
        _("This link is not valid"),
        with_phone_links(
            _(
                "Please use the complete link from your newest e-mail about the appointment. "
                "If you need help, call us: %(hotline)s."
            ),
            hotline=settings_of(request).hotline,
        ),
        link_request=url("/manage"),
    )


def token_of(manage_url: Any) -> str:
    query = parse_qs(urlsplit(str(manage_url or "")).query)
    return (query.get("token") or [""])[0]


def web_errors(handler: Handler) -> Handler:
    """Upstream outages and expired forms become friendly pages instead of JSON errors."""

    async def wrapped(request: web.Request, *args: Any, **kwargs: Any) -> web.StreamResponse:
        try:
            return await handler(request, *args, **kwargs)
        except UpstreamUnavailable:
            return unavailable(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def read_form(request: web.Request) -> dict[str, str] | web.Response:
    """The posted form, after the CSRF check; a refused form is a 403 page, one that cannot be read (bytes
    that are not UTF-8, an unknown charset, too large: no browser sends it) a 400 or 413 page alike."""
    try:
        data = await parse_form(request)
    except OTVError as exc:
        log.info("form_unreadable", route=route_of(request), code=exc.code)
        return _form_refused(request, 413 if exc.status == 413 else 400)
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    if not request.app[CSRF].valid(request, form.get(CSRF_FIELD)):
        log.info("csrf_refused", route=route_of(request))
        return _form_refused(request, 403)
    return form


def _form_refused(request: web.Request, status: int) -> web.Response:
    return error_page(
        request,
        status,
        _("This form has expired"),
        _("For your security we could not accept this form. Please go back, reload the page and try again."),
        back=str(request.rel_url),
    )


def state_of(request: web.Request) -> dict[str, Any]:
    return request.app[SEALER].open(request.query.get(STATE)) or {}


def seal(request: web.Request, state: dict[str, Any]) -> str:
    return request.app[SEALER].seal({k: v for k, v in state.items() if v is not None})


def bot_check(request: web.Request, bucket: Bucket, solution: str | None = None) -> web.Response | None:
    """None when the request may go on; otherwise the 429 page (428 is handled by the forms)."""
    decision = request.app[BOT_DEFENCE].check(client_ip(request), bucket, solution)
    if decision.verdict is Verdict.RATE_LIMITED:
        response = error_page(
            request,
            429,
            _("Too many requests"),
            ngettext(
                "Please wait %(num)s second and try again.",
                "Please wait %(num)s seconds and try again.",
                decision.retry_after,
            )
            % {"num": decision.retry_after},
        )
        response.headers["Retry-After"] = str(decision.retry_after)
        return response
    if decision.verdict is Verdict.CHALLENGE_REQUIRED:
        return challenge_page(request)
    return None


def challenge_page(request: web.Request) -> web.Response:
    return render(
        request,
        "challenge.html",
        {"title": _("Please confirm that you are a person"), "back": str(request.rel_url)},
        status=428,
    )


@web_errors
async def challenge_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    target = form.get("next", "")
    if not is_local_target(target):
        target = url("/")
    if request.app[BOT_DEFENCE].solve(client_ip(request), form.get("altcha")):
        raise redirect(target)
    errors = forms.FormErrors()
    errors.add("altcha", _("Please confirm that you are a person: tick the box and wait a moment."))
    return render(
        request,
        "challenge.html",
        {"title": _("Please confirm that you are a person"), "back": target, "errors": errors},
        status=428,
    )


# --- catalog data -----------------------------------------------------------------------------------


# The catalog's public lists change rarely (the catalog itself says `max-age=60`): the pages keep them
# for a short while, so that a step of the dialogue costs no catalog round trip and survives a short
# outage of the catalog.
CATALOG_CACHE = web.AppKey("web_catalog_cache", dict)
CATALOG_TTL_SECONDS = 30.0


async def cached_list(request: web.Request, path: str) -> list[dict[str, Any]] | None:
    """A list answer of the catalog in the current language; None for 404."""
    cache: dict[tuple[str, str], tuple[float, list[dict[str, Any]] | None]] = request.app[CATALOG_CACHE]
    key = (path, lang())
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    answer = await call(request, "catalog", "GET", path, language=lang(), params={"lang": lang()})
    if answer.status == 404:
        result = None
    elif answer.ok and isinstance(answer.body, list):
        result = [item for item in answer.body if isinstance(item, dict)]
    elif hit is not None:
        return hit[1]  # a stale list is better than no page
    else:
        raise UpstreamUnavailable("catalog")
    if len(cache) > 1000:
        cache.clear()
    cache[key] = (now + CATALOG_TTL_SECONDS, result)
    return result


async def locations(request: web.Request) -> list[dict[str, Any]]:
    return await cached_list(request, "/api/v1/locations") or []


async def location_of(request: web.Request, location_id: str | None) -> dict[str, Any] | None:
    if not location_id:
        return None
    return next((loc for loc in await locations(request) if loc.get("id") == location_id), None)


async def concerns_of(request: web.Request, location_id: str) -> list[dict[str, Any]]:
    return await cached_list(request, f"/api/v1/locations/{location_id}/concerns") or []


def grouped(concerns: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for concern in concerns:
        group = concern.get("group")
        name = concern.get("group_name") or (group.get("name") if isinstance(group, dict) else group)
        groups.setdefault(str(name or ""), []).append(concern)
    return list(groups.items())


def address_line(location: dict[str, Any] | None) -> str:
    if not location:
        return ""
    address = location.get("address")
    if isinstance(address, dict):
        return ", ".join(
            str(p)
            for p in (address.get("street"), f"{address.get('postcode', '')} {address.get('city', '')}")
            if p
        ).strip(", ")
    return str(address or "")


async def dialogue(
    request: web.Request, need: tuple[str, ...], *, token: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The state (of the address, or the given sealed `token`) and the chosen location and concern; None
    when a needed step is missing."""
    state = (request.app[SEALER].open(token) or {}) if token else state_of(request)
    if any(not state.get(key) for key in need):
        return None
    context: dict[str, Any] = {"state": state}
    if "loc" in state:
        context["location"] = await location_of(request, state["loc"])
        if context["location"] is None:
            return None
        context["location_address"] = address_line(context["location"])
    if "concern" in state:
        concern = next(
            (c for c in await concerns_of(request, state["loc"]) if c.get("id") == state["concern"]), None
        )
        if concern is None:
            return None
        context["concern"] = concern
    return state, context
