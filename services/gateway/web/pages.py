"""The customer's booking pages (R1-R3, R10-R12, R41): handlers that call the catalog and booking APIs.

The dialogue follows directive 2.3: (1) location, with the responsibility finder; (2) concern and
in person / by phone; (3) date and time, where choosing a slot holds it (R38); (4) contact data, and
booking; then the printable confirmation. Every step is a GET page and a POST that redirects to the
next step (post/redirect/get), so that the browser's back button and reload behave. The state of the
dialogue travels sealed in the `s` parameter (see `security.py`).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web
from babel.dates import format_date, format_time

from services.gateway.bot_defence import BOT_DEFENCE, Bucket, Verdict
from services.gateway.config import Settings
from services.gateway.proxy import client_ip
from services.gateway.web import forms
from services.gateway.web.client import Answer, UpstreamUnavailable, call
from services.gateway.web.i18n import DEFAULT_LANGUAGE, LANGUAGE_PARAM, LANGUAGES, _, current
from services.gateway.web.security import CSRF_FIELD, Csrf, Sealer, set_csrf_cookie
from shared.clock import BERLIN
from shared.web import CLOCK, SETTINGS

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
    return "en" if lang() == "en" else "de"


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


def today(request: web.Request) -> date:
    return request.app[CLOCK].now().astimezone(BERLIN).date()


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    languages = request.app[LANGUAGES]
    here = request.rel_url
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
        "hotline": settings_of(request).hotline,
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
    set_csrf_cookie(request, response)
    return response


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def error_page(request: web.Request, status: int, title: str, message: str, **extra: Any) -> web.Response:
    return render(request, "error.html", {"title": title, "message": message, **extra}, status=status)


def unavailable(request: web.Request) -> web.Response:
    return error_page(
        request,
        503,
        _("The appointment booking is not available right now"),
        _("Please try again in a few minutes. If it is urgent, call us: %(hotline)s.")
        % {"hotline": settings_of(request).hotline},
    )


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
    """The posted form, after the CSRF check; a refused form is a 403 page."""
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    if not request.app[CSRF].valid(request, form.get(CSRF_FIELD)):
        log.info("csrf_refused", path=request.path)
        return error_page(
            request,
            403,
            _("This form has expired"),
            _(
                "For your security we could not accept this form. "
                "Please go back, reload the page and try again."
            ),
            back=str(request.rel_url),
        )
    return form


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
            _("Please wait %(seconds)s seconds and try again.") % {"seconds": decision.retry_after},
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
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
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
    request: web.Request, need: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The state and the chosen location and concern; None when a needed step is missing."""
    state = state_of(request)
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


# --- step 1: location and the responsibility finder (R3) -------------------------------------------


@web_errors
async def location_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    return render(
        request,
        "location.html",
        {
            "title": _("Choose your location"),
            "step": 1,
            "locations": await locations(request),
            "state": state,
        },
    )


@web_errors
async def location_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    all_locations = await locations(request)
    chosen = form.get("location", "")
    if chosen not in {loc.get("id") for loc in all_locations}:
        errors = forms.FormErrors()
        errors.add("location", _("Choose a location."))
        return render(
            request,
            "location.html",
            {
                "title": _("Choose your location"),
                "step": 1,
                "locations": all_locations,
                "errors": errors,
                "state": {},
            },
            status=422,
        )
    raise redirect(url("/concern", s=seal(request, {"loc": chosen})))


@web_errors
async def finder_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    address = {k: " ".join(form.get(k, "").split())[:100] for k in ("street", "house_number", "postcode")}
    under_25 = form.get("under_25") == "yes"
    errors = forms.FormErrors()
    if not address["street"]:
        errors.add("street", _("Enter your street."))
    if address["postcode"] and not (address["postcode"].isdigit() and len(address["postcode"]) == 5):
        errors.add("postcode", _("A postcode has 5 digits, like 28195."))
    context: dict[str, Any] = {
        "title": _("Choose your location"),
        "step": 1,
        "locations": await locations(request),
        "address": {**address, "under_25": "yes" if under_25 else ""},
        "errors": errors,
        "state": {},
    }
    if errors:
        return render(request, "location.html", context, status=422)
    answer = await call(
        request,
        "catalog",
        "GET",
        "/api/v1/finder",
        params={
            **{k: v for k, v in address.items() if v},
            "under_25": "true" if under_25 else "false",
            "lang": lang(),
        },
        language=lang(),
    )
    if answer.status == 422:
        for detail in answer.error_details:
            name = str(detail.get("field", "")).rsplit(".", 1)[-1]
            if name in address:
                errors.add(name, _("Please check this entry."))
        if not errors:
            errors.add("street", _("Please check this entry."))
        return render(request, "location.html", context, status=422)
    if not answer.ok or not isinstance(answer.body, dict):
        raise UpstreamUnavailable("catalog")
    context["finder"] = answer.body
    found = answer.body.get("location")
    if isinstance(found, dict):
        context["finder_location_address"] = address_line(found)
    return render(request, "location.html", context)


async def finder_get(request: web.Request) -> web.StreamResponse:
    raise redirect(url("/"))


# --- step 2: concern and mode (R11) -----------------------------------------------------------------


@web_errors
async def concern_page(request: web.Request, errors: forms.FormErrors | None = None) -> web.StreamResponse:
    found = await dialogue(request, ("loc",))
    if found is None:
        raise redirect(url("/"))
    state, context = found
    concerns = await concerns_of(request, state["loc"])
    context.update(
        {
            "title": _("Choose your concern"),
            "step": 2,
            "groups": grouped(concerns),
            "back": url("/", s=request.query.get(STATE)),
            "errors": errors or forms.FormErrors(),
        }
    )
    return render(request, "concern.html", context, status=422 if errors else 200)


@web_errors
async def concern_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    state = state_of(request)
    if not state.get("loc"):
        raise redirect(url("/"))
    concerns = {c.get("id"): c for c in await concerns_of(request, state["loc"])}
    errors = forms.FormErrors()
    concern = concerns.get(form.get("concern"))
    mode = form.get("mode", "")
    if concern is None:
        errors.add("concern", _("Choose what your appointment is about."))
    if mode not in MODES:
        errors.add("mode", _("Choose in person or by phone."))
    elif concern is not None and mode not in (concern.get("modes") or MODES):
        errors.add(
            "mode",
            _("This concern is only offered in person.")
            if mode == "phone"
            else _("This concern is only offered by phone."),
        )
    if errors:
        notes(request)["chosen"] = {"concern": form.get("concern"), "mode": mode}
        return await concern_page(request, errors)
    new_state = {"loc": state["loc"], "concern": concern["id"] if concern else None, "mode": mode}
    raise redirect(url("/time", s=seal(request, new_state)))


# --- step 3: date and time (R12, R38, R42) -----------------------------------------------------------


async def availability(
    request: web.Request, location_id: str, concern_id: str, mode: str
) -> list[dict[str, Any]]:
    first = today(request)
    answer = await call(
        request,
        "booking",
        "GET",
        f"/api/v1/locations/{location_id}/availability",
        params={
            "concern": concern_id,
            "mode": mode,
            "from": first.isoformat(),
            "to": (first + timedelta(days=HORIZON_DAYS - 1)).isoformat(),
        },
        language=lang(),
    )
    if not answer.ok or not isinstance(answer.body, dict):
        if answer.status in (404, 409, 422):
            return []
        raise UpstreamUnavailable("booking")
    return [s for s in answer.body.get("slots", []) if isinstance(s, dict) and "start" in s]


def calendar(
    request: web.Request, slots: list[dict[str, Any]], chosen: date | None, link: Callable[[date], str]
) -> list[dict[str, Any]]:
    """Months of weeks (Monday first) over the booking horizon; a day with free slots is a link."""
    per_day: dict[date, int] = {}
    for slot in slots:
        per_day[local(slot["start"]).date()] = per_day.get(local(slot["start"]).date(), 0) + 1
    first = today(request)
    last = first + timedelta(days=HORIZON_DAYS - 1)
    months: list[dict[str, Any]] = []
    day = first.replace(day=1)
    while day <= last:
        month_start = day
        next_month = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
        weeks: list[list[dict[str, Any] | None]] = []
        cursor = month_start - timedelta(days=month_start.weekday())
        while cursor < next_month:
            week: list[dict[str, Any] | None] = []
            for offset in range(7):
                current_day = cursor + timedelta(days=offset)
                if current_day.month != month_start.month or current_day < first or current_day > last:
                    week.append(
                        None
                        if current_day.month != month_start.month
                        else {"day": current_day, "count": 0, "inactive": True}
                    )
                    continue
                count = per_day.get(current_day, 0)
                week.append(
                    {
                        "day": current_day,
                        "count": count,
                        "label": fmt_date(current_day),
                        "href": link(current_day) if count else None,
                        "chosen": current_day == chosen,
                    }
                )
            weeks.append(week)
            cursor += timedelta(days=7)
        if any(cell and cell.get("count") for week in weeks for cell in week) or month_start <= first:
            months.append(
                {
                    "title": format_date(month_start, format="LLLL yyyy", locale=babel_locale()),
                    "weeks": weeks,
                }
            )
        day = next_month
    return months


def weekday_names() -> list[tuple[str, str]]:
    monday = date(2024, 1, 1)
    return [
        (
            format_date(monday + timedelta(days=i), format="EEEEEE", locale=babel_locale()),
            format_date(monday + timedelta(days=i), format="EEEE", locale=babel_locale()),
        )
        for i in range(7)
    ]


def slots_of_day(
    slots: list[dict[str, Any]], day: date | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if day is None:
        return [], []
    todays = [s for s in slots if local(s["start"]).date() == day]
    for slot in todays:
        slot["label"] = fmt_time(slot["start"])
        slot["end_label"] = fmt_time(slot["end"]) if slot.get("end") else ""
    return [s for s in todays if not s.get("evening_reserved")], [
        s for s in todays if s.get("evening_reserved")
    ]


def parse_day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


async def time_context(
    request: web.Request,
    location_id: str,
    concern_id: str,
    mode: str,
    chosen_day: date | None,
    link: Callable[[date], str],
) -> dict[str, Any]:
    slots = await availability(request, location_id, concern_id, mode)
    days_with_slots = sorted({local(s["start"]).date() for s in slots})
    if chosen_day not in days_with_slots:
        chosen_day = None
    day_slots, evening_slots = slots_of_day(slots, chosen_day)
    return {
        "months": calendar(request, slots, chosen_day, link),
        "weekdays": weekday_names(),
        "chosen_day": chosen_day,
        "chosen_day_label": fmt_date(chosen_day) if chosen_day else "",
        "day_slots": day_slots,
        "evening_slots": evening_slots,
        "any_evening": any(s.get("evening_reserved") for s in slots),
        "first_day": days_with_slots[0] if days_with_slots else None,
        "first_day_href": link(days_with_slots[0]) if days_with_slots else None,
        "no_slots": not slots,
    }


@web_errors
async def time_page(request: web.Request, errors: forms.FormErrors | None = None) -> web.StreamResponse:
    found = await dialogue(request, ("loc", "concern", "mode"))
    if found is None:
        raise redirect(url("/"))
    state, context = found
    if request.method == "GET":
        refused = bot_check(request, Bucket.AVAILABILITY)
        if refused is not None:
            return refused
    token = request.query.get(STATE)
    chosen = parse_day(request.query.get("day")) or parse_day(notes(request).get("day"))
    context.update(
        await time_context(
            request,
            state["loc"],
            state["concern"],
            state["mode"],
            chosen,
            lambda d: url("/time#slots-title", s=token, day=d.isoformat()),
        )
    )
    day = context["chosen_day"].isoformat() if context["chosen_day"] else None
    context.update(
        {
            "title": _("Choose date and time"),
            "step": 3,
            "back": url("/concern", s=token),
            "errors": errors or forms.FormErrors(),
            "form_action": url("/time", s=token, day=day),
        }
    )
    return render(request, "time.html", context, status=422 if errors else 200)


@web_errors
async def time_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    state = state_of(request)
    if not all(state.get(k) for k in ("loc", "concern", "mode")):
        raise redirect(url("/"))
    refused = bot_check(request, Bucket.BOOKING)
    if refused is not None:
        return refused
    start = form.get("start", "")
    errors = forms.FormErrors()
    try:
        start_at = datetime.fromisoformat(start)
        if start_at.tzinfo is None:
            raise ValueError(start)
    except ValueError:
        errors.add("slots", _("Choose a time."))
        return await time_page(request, errors)
    notes(request)["day"] = local(start_at).date().isoformat()
    slots = await availability(request, state["loc"], state["concern"], state["mode"])
    slot = next((s for s in slots if datetime.fromisoformat(s["start"]) == start_at), None)
    evening = bool(slot and slot.get("evening_reserved")) or bool(form.get("evening"))
    declared = form.get("evening_declaration") == "yes"
    if slot is None:
        errors.add("slots", _("This time is no longer free. Please choose another time."))
        return await time_page(request, errors)
    if evening and not declared:
        errors.add(
            "evening_declaration",
            _(
                "Evening appointments are only for people in work or in a measure. "
                "Please confirm this, or choose an earlier time."
            ),
        )
        return await time_page(request, errors)
    answer = await call(
        request,
        "booking",
        "POST",
        f"/api/v1/locations/{state['loc']}/holds",
        json={"concern_id": state["concern"], "mode": state["mode"], "start": start},
        language=lang(),
    )
    new_state = {
        **{k: state[k] for k in ("loc", "concern", "mode")},
        "start": start,
        "end": slot.get("end"),
        "evening": evening,
        "declared": declared,
    }
    if answer.status == 201 and isinstance(answer.body, dict):
        new_state["hold"] = answer.body.get("hold_id")
        new_state["hold_until"] = answer.body.get("expires_at")
    elif answer.error_code in ("slot_taken", "booking_closed", "too_late"):
        errors.add("slots", _("This time is no longer free. Please choose another time."))
        return await time_page(request, errors)
    elif answer.status >= 500:
        raise UpstreamUnavailable("booking")
    # Another refusal of the hold (or no hold offered): booking without a hold is allowed and races fairly.
    raise redirect(url("/details", s=seal(request, new_state)))


# --- step 4: contact data, and booking (R2, R4, R39) ------------------------------------------------


def hold_context(request: web.Request, state: dict[str, Any]) -> dict[str, Any]:
    until = state.get("hold_until")
    if not until:
        return {"hold_seconds": None}
    try:
        expires = datetime.fromisoformat(until)
    except ValueError:
        return {"hold_seconds": None}
    remaining = int((expires - request.app[CLOCK].now()).total_seconds())
    return {
        "hold_seconds": max(0, remaining),
        "hold_until_label": fmt_time(expires),
        "hold_minutes": max(1, round(remaining / 60)) if remaining > 0 else 0,
    }


@web_errors
async def details_page(
    request: web.Request,
    errors: forms.FormErrors | None = None,
    values: dict[str, str] | None = None,
    *,
    status: int | None = None,
) -> web.StreamResponse:
    found = await dialogue(request, ("loc", "concern", "mode", "start"))
    if found is None:
        raise redirect(url("/"))
    state, context = found
    token = request.query.get(STATE)
    context.update(hold_context(request, state))
    context.update(
        {
            "title": _("Your contact details"),
            "step": 4,
            "back": url("/time#slots-title", s=token, day=local(state["start"]).date().isoformat()),
            "errors": errors or forms.FormErrors(),
            "values": values or {},
            "form_action": url("/details", s=token),
            "rehold_action": url("/time", s=token),
            "idempotency_key": (values or {}).get("idempotency_key") or str(uuid.uuid4()),
            "challenge": request.app[BOT_DEFENCE].needs_challenge(client_ip(request), Bucket.BOOKING)
            or bool(notes(request).get("challenge")),
        }
    )
    return render(request, "details.html", context, status=status or (422 if errors else 200))


@web_errors
async def details_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    state = state_of(request)
    if not all(state.get(k) for k in ("loc", "concern", "mode", "start")):
        raise redirect(url("/"))
    values = forms.clean(form)
    values["idempotency_key"] = form.get("idempotency_key", "")[:64]
    values["privacy"] = form.get("privacy", "")
    errors = forms.check_contact(values, phone_required=state["mode"] == "phone")
    if errors:
        return await details_page(request, errors, values)
    decision = request.app[BOT_DEFENCE].check(client_ip(request), Bucket.BOOKING, form.get("altcha"))
    if decision.verdict is Verdict.RATE_LIMITED:
        refused = bot_check(request, Bucket.BOOKING)
        assert refused is not None  # noqa: S101 -- still limited a moment later
        return refused
    if decision.verdict is Verdict.CHALLENGE_REQUIRED:
        errors.add(
            "altcha",
            _("Please confirm that you are a person: tick the box and wait a moment.")
            if form.get("altcha")
            else _("Please wait until the check below is finished, then send the form again."),
        )
        notes(request)["challenge"] = True
        return await details_page(request, errors, values, status=428)
    customer = {k: values[k] for k in forms.CONTACT_FIELDS if values[k]}
    body: dict[str, Any] = {
        "location_id": state["loc"],
        "concern_id": state["concern"],
        "start": state["start"],
        "mode": state["mode"],
        "customer": customer,
        "language": lang(),
    }
    if state.get("evening"):
        body["evening_declaration"] = bool(state.get("declared"))
    if state.get("hold"):
        body["hold_id"] = state["hold"]
    key = values["idempotency_key"] or secrets.token_hex(16)
    answer = await call(
        request, "booking", "POST", "/api/v1/appointments", json=body, headers={"Idempotency-Key": key}
    )
    if answer.status == 201 and isinstance(answer.body, dict):
        appointment_id = str(answer.body.get("id"))
        manage_token = token_of(answer.body.get("manage_url"))
        log.info("web_appointment_booked", mode=state["mode"])
        raise redirect(url("/confirmation", s=seal(request, {"id": appointment_id, "token": manage_token})))
    return await booking_refused(request, answer, values, state)


def token_of(manage_url: Any) -> str:
    query = parse_qs(urlsplit(str(manage_url or "")).query)
    return (query.get("token") or [""])[0]


async def booking_refused(
    request: web.Request, answer: Answer, values: dict[str, str], state: dict[str, Any]
) -> web.StreamResponse:
    errors = forms.FormErrors()
    code = answer.error_code
    if code == "already_booked":
        errors.add(
            "email",
            _(
                "You already have an appointment that has not yet taken place. You can book a new one "
                "after it, or cancel it first with the link in your confirmation e-mail."
            ),
        )
    elif code in ("slot_taken", "booking_closed", "too_late"):
        errors.general.append(_("This time is no longer free. Please choose another time."))
    elif code == "validation_error":
        for detail in answer.error_details:
            name = forms.field_of(str(detail.get("field", "")))
            if name:
                errors.add(name, forms.generic_message(name))
            elif "evening" in str(detail.get("field", "")):
                errors.general.append(
                    _(
                        "Evening appointments are only for people in work or in a measure. "
                        "Please confirm this, or choose an earlier time."
                    )
                )
        if not errors:
            errors.general.append(_("Please check your entries."))
    elif answer.status >= 500 or answer.status == 0:
        raise UpstreamUnavailable("booking")
    else:
        errors.general.append(_("The appointment could not be booked. Please try again."))
    values = {**values, "idempotency_key": str(uuid.uuid4())}  # a corrected form is a new attempt
    context_status = 409 if answer.status == 409 else 422
    notes(request)["choose_again"] = code in ("slot_taken", "booking_closed", "too_late")
    return await details_page(request, errors, values, status=context_status)


# --- step 5: confirmation (R10) and the manage page (R41) --------------------------------------------


async def appointment(request: web.Request, appointment_id: str, token: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(appointment_id)
    except ValueError:
        return None
    if not token:
        return None
    answer = await call(
        request,
        "booking",
        "GET",
        f"/api/v1/appointments/{appointment_id}",
        headers={"X-Manage-Token": token},
        language=lang(),
        params={"lang": lang()},
    )
    if answer.status in (400, 403, 404, 422):
        return None
    if not answer.ok or not isinstance(answer.body, dict):
        raise UpstreamUnavailable("booking")
    return answer.body


def appointment_context(found: dict[str, Any]) -> dict[str, Any]:
    location = found.get("location") if isinstance(found.get("location"), dict) else {}
    concern = found.get("concern") if isinstance(found.get("concern"), dict) else {}
    documents = [
        d if isinstance(d, str) else str(d.get(lang()) or d.get("de") or "")
        for d in found.get("documents") or []
    ]
    start = found.get("start")
    return {
        "appointment": found,
        "a_location": location,
        "a_location_address": address_line(location),
        "a_concern": concern,
        "documents": [d for d in documents if d],
        "date_label": fmt_date(start) if start else "",
        "time_label": fmt_time(start) if start else "",
        "end_label": fmt_time(found["end"]) if found.get("end") else "",
        "is_phone": found.get("mode") == "phone",
        "cancelled": found.get("status") == "cancelled",
        "passed": found.get("status") == "passed",
    }


def not_found(request: web.Request) -> web.Response:
    return error_page(
        request,
        404,
        _("This link is not valid"),
        _("Please use the complete link from your e-mail. If you need help, call us: %(hotline)s.")
        % {"hotline": settings_of(request).hotline},
    )


@web_errors
async def confirmation_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    found = await appointment(request, str(state.get("id", "")), str(state.get("token", "")))
    if found is None:
        return not_found(request)
    context = appointment_context(found)
    context.update(
        {
            "title": _("Your appointment is booked"),
            "step": 5,
            "manage_url": url(f"/manage/{state['id']}", token=state["token"]),
        }
    )
    return render(request, "confirmation.html", context)


def manage_token(request: web.Request) -> str:
    return request.query.get("token", "")[:200]


@web_errors
async def manage_page(request: web.Request) -> web.StreamResponse:
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    context = appointment_context(found)
    context.update(
        {
            "title": _("Your appointment"),
            "done": request.query.get("done", ""),
            "reschedule_url": url(f"/manage/{appointment_id}/reschedule", token=token),
            "cancel_url": url(f"/manage/{appointment_id}/cancel", token=token),
            "start_over_url": url("/"),
            "in_future": bool(found.get("can_change", True))
            and bool(found.get("start"))
            and local(found["start"]) > request.app[CLOCK].now(),
        }
    )
    return render(request, "manage.html", context)


@web_errors
async def cancel_page(request: web.Request) -> web.StreamResponse:
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    context = appointment_context(found)
    context.update(
        {
            "title": _("Cancel your appointment"),
            "form_action": url(f"/manage/{appointment_id}/cancel", token=token),
            "keep_url": url(f"/manage/{appointment_id}", token=token),
        }
    )
    return render(request, "cancel.html", context)


@web_errors
async def cancel_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    try:
        uuid.UUID(appointment_id)
    except ValueError:
        return not_found(request)
    answer = await call(
        request,
        "booking",
        "POST",
        f"/api/v1/appointments/{appointment_id}/cancel",
        headers={"X-Manage-Token": token},
        json={},
    )
    if answer.status in (403, 404):
        return not_found(request)
    if answer.status >= 500:
        raise UpstreamUnavailable("booking")
    if not answer.ok:
        found = await appointment(request, appointment_id, token)
        if found is None:
            return not_found(request)
        context = appointment_context(found)
        errors = forms.FormErrors()
        errors.general.append(
            _("The appointment can no longer be cancelled online, because it has already started or passed.")
            if answer.error_code == "too_late"
            else _("The appointment could not be cancelled. Please try again.")
        )
        context.update(
            {
                "title": _("Cancel your appointment"),
                "form_action": url(f"/manage/{appointment_id}/cancel", token=token),
                "keep_url": url(f"/manage/{appointment_id}", token=token),
                "errors": errors,
            }
        )
        return render(request, "cancel.html", context, status=409)
    raise redirect(url(f"/manage/{appointment_id}", token=token, done="cancelled"))


@web_errors
async def reschedule_page(request: web.Request, errors: forms.FormErrors | None = None) -> web.StreamResponse:
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    if request.method == "GET":
        refused = bot_check(request, Bucket.AVAILABILITY)
        if refused is not None:
            return refused
    context = appointment_context(found)
    location_id = str(context["a_location"].get("id") or found.get("location_id") or "")
    concern_id = str(context["a_concern"].get("id") or found.get("concern_id") or "")
    chosen = parse_day(request.query.get("day")) or parse_day(notes(request).get("day"))
    context.update(
        await time_context(
            request,
            location_id,
            concern_id,
            str(found.get("mode") or "in_person"),
            chosen,
            lambda d: url(f"/manage/{appointment_id}/reschedule#slots-title", token=token, day=d.isoformat()),
        )
    )
    context.update(
        {
            "title": _("Choose a new date and time"),
            "back": url(f"/manage/{appointment_id}", token=token),
            "errors": errors or forms.FormErrors(),
            "form_action": url(
                f"/manage/{appointment_id}/reschedule",
                token=token,
                day=request.query.get("day") or notes(request).get("day"),
            ),
            "rescheduling": True,
        }
    )
    return render(request, "time.html", context, status=422 if errors else 200)


@web_errors
async def reschedule_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    refused = bot_check(request, Bucket.BOOKING)
    if refused is not None:
        return refused
    errors = forms.FormErrors()
    start = form.get("start", "")
    try:
        start_at = datetime.fromisoformat(start)
        if start_at.tzinfo is None:
            raise ValueError(start)
    except ValueError:
        errors.add("slots", _("Choose a time."))
        return await reschedule_page(request, errors)
    notes(request)["day"] = local(start_at).date().isoformat()
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    current_view = appointment_context(found)
    slots = await availability(
        request,
        str(current_view["a_location"].get("id") or ""),
        str(current_view["a_concern"].get("id") or ""),
        str(found.get("mode") or "in_person"),
    )
    slot = next((s for s in slots if datetime.fromisoformat(s["start"]) == start_at), None)
    if slot is None:
        errors.add("slots", _("This time is no longer free. Please choose another time."))
        return await reschedule_page(request, errors)
    evening = bool(slot.get("evening_reserved"))
    if evening and form.get("evening_declaration") != "yes":
        errors.add(
            "evening_declaration",
            _(
                "Evening appointments are only for people in work or in a measure. "
                "Please confirm this, or choose an earlier time."
            ),
        )
        return await reschedule_page(request, errors)
    body: dict[str, Any] = {"start": start}
    if evening:
        body["evening_declaration"] = True
    answer = await call(
        request,
        "booking",
        "POST",
        f"/api/v1/appointments/{appointment_id}/reschedule",
        headers={"X-Manage-Token": token},
        json=body,
    )
    if answer.status in (403, 404):
        return not_found(request)
    if answer.status >= 500:
        raise UpstreamUnavailable("booking")
    if not answer.ok:
        errors.add(
            "slots",
            _("The appointment can no longer be changed online, because it has already started or passed.")
            if answer.error_code == "too_late"
            else _("This time is no longer free. Please choose another time."),
        )
        return await reschedule_page(request, errors)
    raise redirect(url(f"/manage/{appointment_id}", token=token, done="rescheduled"))


# --- information pages (R36, R42) -------------------------------------------------------------------


async def accessibility_page(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    return render(
        request,
        "accessibility.html",
        {"title": _("Accessibility statement"), "contact": settings.accessibility_contact},
    )


async def embed_page(request: web.Request) -> web.StreamResponse:
    base = settings_of(request).public_base_url.rstrip("/")
    return render(
        request,
        "embed.html",
        {
            "title": _("Embed the appointment booking"),
            "base": base,
            "ancestors": settings_of(request).frame_ancestors,
        },
    )
