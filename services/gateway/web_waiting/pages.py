"""Handlers of the waiting-list pages (R45). They call the booking service's waiting-list API through
the gateway's upstream table, like the booking pages; every state change is a POST with the CSRF token
(a mail scanner that opens a link changes nothing), followed by a redirect (post/redirect/get)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import structlog
from aiohttp import web
from babel.dates import format_date

from services.gateway.bot_defence import Bucket
from services.gateway.web import forms
from services.gateway.web.client import call
from services.gateway.web.i18n import _
from services.gateway.web.pages import babel_locale as locale_of
from services.gateway.web.pages import (
    bot_check,
    dialogue,
    error_page,
    fmt_date,
    fmt_time,
    lang,
    local,
    not_found,
    read_form,
    redirect,
    render,
    seal,
    start_again,
    state_of,
    today,
    token_of,
    url,
    web_errors,
)
from services.gateway.web.steps import already_booked

log = structlog.get_logger(__name__)

WEEKDAYS = range(6)  # Monday to Saturday: the days a location can offer appointments
# The times of day of the form, as (earliest, latest): mornings have no earliest time (a wish "from 00:00"
# reads oddly in every mail), afternoons no latest.
DAY_PARTS: dict[str, tuple[str | None, str | None]] = {
    "morning": (None, "12:00"),
    "afternoon": ("12:00", None),
}
DEFAULT_WEEKS = 4
MAX_DAYS = 56


def weekday_choices(days: list[int] | range = WEEKDAYS) -> list[tuple[int, str]]:
    monday = date(2024, 1, 1)
    return [(d, format_date(monday + timedelta(days=d), format="EEEE", locale=locale_of())) for d in days]


async def offered_weekdays(request: web.Request, state: dict[str, Any]) -> list[int]:
    """The days of the week on which the location has appointments of the concern (booking knows them
    from the opening windows); all six when booking cannot say, since it checks the wish anyway."""
    answer = await call(
        request,
        "booking",
        "GET",
        f"/api/v1/locations/{state['loc']}/waiting-list/weekdays",
        params={"concern": state["concern"], "mode": state["mode"]},
    )
    days = answer.body.get("weekdays") if answer.ok and isinstance(answer.body, dict) else None
    if not isinstance(days, list):
        return list(WEEKDAYS)
    return [d for d in days if isinstance(d, int) and d in WEEKDAYS]


def _page_context(
    request: web.Request, values: dict[str, Any], errors: forms.FormErrors, offered: list[int]
) -> dict[str, Any]:
    first = today(request)
    return {
        "title": _("Join the waiting list"),
        "weekday_choices": weekday_choices(offered),
        "values": values,
        "errors": errors,
        "min_date": first.isoformat(),
        "max_date": (first + timedelta(days=MAX_DAYS)).isoformat(),
        "form_action": url("/waiting-list/join", s=request.query.get("s")),
        "back": url("/time", s=request.query.get("s")),
    }


def _free_now(request: web.Request, details: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The free appointments booking named, each a link to its day on the time page."""
    found: list[dict[str, str]] = []
    for detail in details:
        start = str(detail.get("start", ""))
        try:
            day = local(start).date()
        except ValueError:
            continue
        link = url("/time#slots-title", s=request.query.get("s"), day=day.isoformat())
        at = _("%(time)s o'clock") % {"time": fmt_time(start)}
        label = f"{fmt_date(start)}, {at}"
        found.append({"label": label, "url": link})
    return found


@web_errors
async def join_page(
    request: web.Request,
    errors: forms.FormErrors | None = None,
    values: dict[str, Any] | None = None,
    free_now: list[dict[str, str]] | None = None,
) -> web.StreamResponse:
    found = await dialogue(request, ("loc", "concern", "mode"))
    if found is None:
        raise start_again(request)
    state, context = found
    offered = await offered_weekdays(request, state)
    defaults: dict[str, Any] = {
        "weekdays": [str(d) for d in offered],
        "parts": ["morning", "afternoon"],
        "latest_date": (today(request) + timedelta(weeks=DEFAULT_WEEKS)).isoformat(),
    }
    context.update(_page_context(request, values or defaults, errors or forms.FormErrors(), offered))
    context["state"] = state
    context["free_now"] = free_now or []
    if free_now:
        # The form did not put the customer on the list: the title says so (and the notice takes the focus).
        context["title_state"] = _("Free appointments found")
    status = 409 if free_now else 422 if errors else 200
    return render(request, "waiting/join.html", context, status=status)


def _times(parts: list[str]) -> tuple[str | None, str | None]:
    """(earliest, latest) of the chosen times of day; both or none: any time."""
    if set(parts) >= set(DAY_PARTS) or not parts:
        return None, None
    return DAY_PARTS[parts[0]]


@web_errors
async def join_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    form_data = await request.post()  # read (and found readable) by read_form: its repeated fields
    state = state_of(request)
    if not all(state.get(k) for k in ("loc", "concern", "mode")):
        raise start_again(request)
    values: dict[str, Any] = forms.clean(form)
    values["weekdays"] = [v for v in form_data.getall("weekdays", []) if isinstance(v, str)]
    values["parts"] = [v for v in form_data.getall("parts", []) if isinstance(v, str) and v in DAY_PARTS]
    values["latest_date"] = form.get("latest_date", "").strip()
    values["evening"] = form.get("evening_declaration") == "yes"
    # The wish's fields come first in the form, so their errors head the summary (its order is the form's).
    errors = forms.FormErrors()
    weekdays = sorted({int(v) for v in values["weekdays"] if v.isdigit() and int(v) in WEEKDAYS})
    if not weekdays:
        errors.add("weekdays", _("Choose at least one day of the week."))
    try:
        latest = date.fromisoformat(values["latest_date"])
        if not today(request) <= latest <= today(request) + timedelta(days=MAX_DAYS):
            raise ValueError(latest)
    except ValueError:
        errors.add("latest_date", _("Choose a date within the next 8 weeks."))
    contact = forms.check_contact(values, phone_required=state["mode"] == "phone")
    for field, message in contact.messages.items():
        errors.add(field, message)
    if errors:
        return await join_page(request, errors, values)
    refused = bot_check(request, Bucket.BOOKING)
    if refused is not None:
        return refused
    earliest, latest_time = _times(values["parts"])
    body: dict[str, Any] = {
        "location_id": state["loc"],
        "concern_id": state["concern"],
        "mode": state["mode"],
        "weekdays": weekdays,
        "latest_date": values["latest_date"],
        "customer": {k: values[k] for k in forms.CONTACT_FIELDS if values[k]},
        "language": lang(),
        "evening_declaration": values["evening"],
    }
    if earliest:
        body["earliest"] = earliest
    if latest_time:
        body["latest"] = latest_time
    answer = await call(request, "booking", "POST", "/api/v1/waiting-list", json=body)
    if answer.status == 201 and isinstance(answer.body, dict):
        log.info("web_wish_registered", mode=state["mode"])
        registered = {"ref": answer.body.get("reference"), "until": answer.body.get("confirm_by")}
        raise redirect(url("/waiting-list/registered", s=seal(request, registered)))
    if answer.status >= 500:
        from services.gateway.web.client import UpstreamUnavailable

        raise UpstreamUnavailable("booking")
    if answer.error_code == "already_booked":
        already_booked(request, errors, answer)
    elif answer.error_code == "already_waiting":
        errors.add("email", _("You are already on the waiting list. Use the links in our e-mails."))
    elif answer.error_code == "slots_available":
        # Nothing to wait for: appointments that suit the wish are free now; book one of them.
        return await join_page(request, errors, values, free_now=_free_now(request, answer.error_details))
    elif (impossible := _no_matching_times(answer.error_details)) is not None:
        errors.add("weekdays", impossible)
    else:
        for detail in answer.error_details:
            name = forms.field_of(str(detail.get("field", "")))
            if name:
                errors.add(name, forms.generic_message(name))
        if not errors:
            errors.general.append(_("Please check your entries."))
    return await join_page(request, errors, values)


def _no_matching_times(details: list[dict[str, Any]]) -> str | None:
    """Booking's 422 for a wish the location can never meet (a Saturday where nobody works): which days it
    has appointments of this concern, so that the customer chooses one of them."""
    for detail in details:
        if detail.get("type") == "no_matching_times":
            days = detail.get("offered_weekdays") or []
            offered = [d for d in days if isinstance(d, int) and d in WEEKDAYS]
            if not offered:
                return _("Until this day there are no appointments for this concern. Choose a later day.")
            return _(
                "On the days and at the times you chose there are no appointments for this concern until"
                " the day you gave. Until then there are appointments on: %(days)s. Choose one of these"
                " days, or a later day."
            ) % {"days": _weekday_names(offered)}
    return None


async def registered_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    return render(
        request,
        "waiting/registered.html",
        {
            "title": _("Please confirm your e-mail address"),
            "reference": state.get("ref", ""),
            **_confirm_by(state.get("until")),
        },
    )


def _confirm_by(value: Any) -> dict[str, str]:
    """Until when the opt-in link works (R45), for the page to say: date and time in Berlin."""
    if not isinstance(value, str) or not value:
        return {}
    try:
        return {"confirm_date": fmt_date(value), "confirm_time": fmt_time(value)}
    except ValueError:
        return {}


def _time_of_day(wish: dict[str, Any]) -> str:
    """The wish's times of day as the join form named them (mornings, afternoons), else as a span."""
    earliest = str(wish.get("earliest") or "")[:5]
    latest = str(wish.get("latest") or "")[:5]
    if earliest == "00:00":
        earliest = ""
    if not earliest and not latest:
        return _("Any time")
    if (earliest, latest) == ("", "12:00"):
        return _("Mornings (until 12:00)")
    if (earliest, latest) == ("12:00", ""):
        return _("Afternoons (from 12:00)")
    if not latest:
        return _("from %(time)s o'clock") % {"time": earliest}
    if not earliest:
        return _("until %(time)s o'clock") % {"time": latest}
    return _("%(start)s to %(end)s o'clock") % {"start": earliest, "end": latest}


# --- the wish's page: the link in every mail ----------------------------------------------------------


def _link_token(request: web.Request) -> str:
    return request.query.get("token", "")[:200]


async def _wish(request: web.Request, wish_id: str, token: str) -> tuple[int, dict[str, Any] | None]:
    try:
        uuid.UUID(wish_id)
    except ValueError:
        return 404, None
    if not token:
        return 404, None
    answer = await call(
        request, "booking", "GET", f"/api/v1/waiting-list/{wish_id}", params={"token": token}, language=lang()
    )
    if answer.status >= 500:
        from services.gateway.web.client import UpstreamUnavailable

        raise UpstreamUnavailable("booking")
    return answer.status, answer.body if answer.ok and isinstance(answer.body, dict) else None


def expired_page(
    request: web.Request, wish: dict[str, Any] | None = None, page_url: str = ""
) -> web.Response:
    """410 for a link that no longer does anything. An offer's link while its wish still waits (the offer
    ran out, R45: the wish waits again in its place) says so and leads to the wish's page; telling such a
    customer to join again would send them to a refusal (already on the list)."""
    still_waiting = bool(page_url) and wish is not None and wish.get("status") in ("waiting", "offered")
    return render(
        request,
        "waiting/expired.html",
        {
            "title": _("This offer has expired") if still_waiting else _("This link has expired"),
            "still_waiting": still_waiting,
            "page_url": page_url,
            "start_url": url("/"),
        },
        status=410,
    )


def _weekday_names(days: list[int]) -> str:
    names = dict(weekday_choices())
    monday = date(2024, 1, 1)
    return ", ".join(
        names.get(d) or format_date(monday + timedelta(days=d), format="EEEE", locale=locale_of())
        for d in days
    )


@web_errors
async def wish_page(request: web.Request, errors: forms.FormErrors | None = None) -> web.StreamResponse:
    wish_id = request.match_info["wish_id"]
    action = request.match_info.get("action", "")
    token = _link_token(request)
    _status, wish = await _wish(request, wish_id, token)
    if wish is None:
        return not_found(request)
    ended = wish.get("status") in ("booked", "withdrawn", "expired")
    if action == "confirm" and ended:
        return expired_page(request)
    offer = wish.get("offer")
    if action == "offer" and not offer:
        return expired_page(request, wish, url(f"/waiting-list/{wish_id}", token=token))
    # The withdraw link of every mail asks first: leaving gives up the place in the queue (and a held
    # offer), and joining again starts at the end (WCAG 3.3.4). The button on the page is a POST.
    asking = action == "withdraw" and not ended
    context = {
        "title": _("Leave the waiting list?") if asking else _("Your place on the waiting list"),
        "wish": wish,
        "offer": offer,
        "action": action,
        "done": request.query.get("done", ""),
        "days_label": _weekday_names(list(wish.get("weekdays") or [])),
        "latest_label": fmt_date(date.fromisoformat(wish["latest_date"])) if wish.get("latest_date") else "",
        "time_label": _time_of_day(wish),
        "offer_date": fmt_date(offer["start"]) if offer else "",
        "offer_time": fmt_time(offer["start"]) if offer else "",
        "offer_end": fmt_time(offer["end"]) if offer else "",
        "offer_until": f"{fmt_date(offer['expires_at'])}, {fmt_time(offer['expires_at'])}" if offer else "",
        "ended": ended,
        "is_phone": wish.get("mode") == "phone",
        "confirm_action": url(f"/waiting-list/{wish_id}/confirm", token=token),
        "withdraw_action": url(f"/waiting-list/{wish_id}/withdraw", token=token),
        "offer_action": url(f"/waiting-list/{wish_id}/offer", token=token),
        "page_url": url(f"/waiting-list/{wish_id}", token=token),
        "start_url": url("/"),
        "errors": errors or forms.FormErrors(),
        **(_confirm_by(wish.get("confirm_by")) if wish.get("status") == "pending_opt_in" else {}),
    }
    template = "waiting/withdraw.html" if asking else "waiting/wish.html"
    return render(request, template, context, status=409 if errors else 200)


@web_errors
async def wish_action(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    wish_id = request.match_info["wish_id"]
    action = request.match_info["action"]
    token = _link_token(request)
    try:
        uuid.UUID(wish_id)
    except ValueError:
        return not_found(request)
    if action == "offer":
        refused = bot_check(request, Bucket.BOOKING)
        if refused is not None:
            return refused
    path = {"confirm": "confirm", "withdraw": "withdraw", "offer": "offer/accept"}[action]
    answer = await call(
        request, "booking", "POST", f"/api/v1/waiting-list/{wish_id}/{path}", params={"token": token}, json={}
    )
    if answer.status == 404:
        return not_found(request)
    if answer.status == 410:
        if action != "offer":
            return expired_page(request)
        _status, wish = await _wish(request, wish_id, token)
        return expired_page(request, wish, url(f"/waiting-list/{wish_id}", token=token))
    if answer.status >= 500:
        from services.gateway.web.client import UpstreamUnavailable

        raise UpstreamUnavailable("booking")
    if not answer.ok:
        errors = forms.FormErrors()
        errors.general.append(
            _("This time is no longer free. We will offer you the next suitable time.")
            if action == "offer"
            else _("That did not work. Please try again.")
        )
        return await wish_page(request, errors)
    if action == "offer" and isinstance(answer.body, dict):
        appointment_id = str(answer.body.get("id"))
        manage = token_of(answer.body.get("manage_url"))
        raise redirect(url(f"/manage/{appointment_id}", token=manage, done="booked"))
    done = "confirmed" if action == "confirm" else "withdrawn"
    raise redirect(url(f"/waiting-list/{wish_id}", token=token, done=done))


__all__ = ["error_page"]
