"""The booking dialogue of directive 2.3 (R1-R3, R11, R12, R38): (1) location, with the responsibility
finder; (2) concern and in person / by phone; (3) date and time, where choosing a slot holds it; (4) contact
data, and booking. Every step is a GET page and a POST that redirects to the next step
(post/redirect/get), so that the browser's back button and reload behave."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from babel.dates import format_date

from services.gateway.bot_defence import BOT_DEFENCE, Bucket, Verdict
from services.gateway.proxy import client_ip
from services.gateway.web import forms
from services.gateway.web.client import Answer, UpstreamUnavailable, call
from services.gateway.web.i18n import _
from services.gateway.web.pages import (
    ENDED,
    HORIZON_DAYS,
    MODES,
    STATE,
    address_line,
    babel_locale,
    bot_check,
    concerns_of,
    dialogue,
    first_open_day,
    fmt_date,
    fmt_time,
    grouped,
    lang,
    last_open_day,
    local,
    locations,
    notes,
    read_form,
    redirect,
    render,
    seal,
    settings_of,
    start_again,
    state_of,
    token_of,
    url,
    web_errors,
)
from shared.phone import link_phone_in, with_phone_links
from shared.web import CLOCK

log = structlog.get_logger(__name__)


# --- step 1: location and the responsibility finder (R3) -------------------------------------------


@web_errors
async def location_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    ended = request.query.get(ENDED) == "1"
    return render(
        request,
        "location.html",
        {
            "title": _("Choose your location"),
            "title_state": _("Your booking was not finished") if ended else "",
            "ended": ended,
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
    # The finder's message names a hotline as text: a link a phone dials, as everywhere on the pages (R42).
    text, hotline = str(answer.body.get("message") or ""), str(answer.body.get("hotline") or "")
    message = link_phone_in(text, hotline)
    context["finder_message"] = message
    context["finder_suggest"] = suggested_streets(text, hotline, answer.body.get("suggestions"))
    found = answer.body.get("location")
    if isinstance(found, dict):
        context["finder_location_address"] = address_line(found)
    needed = NEEDED_FIELD.get(str(answer.body.get("reason", "")))
    if needed and answer.body.get("message"):
        # The finder asks for one more part of the address: said at that field too, and the error summary
        # leads to it; the field is no longer "optional" then (WCAG 3.3.1, 3.3.3).
        errors.add(needed, message)
        context["needed"] = needed
        return render(request, "location.html", context, status=422)
    return render(request, "location.html", context)


def suggested_streets(text: str, hotline: str, suggestions: Any) -> dict[str, Any] | None:
    """The finder's message split around the streets it suggests for a misspelt one ("Meinten Sie:
    Sögestraße, Seestraße?"), so that the page makes each a button that searches with it (R3): the text
    before and after them (each with the hotline as a link) and the streets; None without suggestions, or
    when the message does not name them as the catalog does (joined by ", "): then it is shown as text."""
    streets = [s for s in suggestions if isinstance(s, str) and s] if isinstance(suggestions, list) else []
    names = ", ".join(streets)
    if not streets or names not in text:
        return None
    before, after = text.split(names, 1)
    return {
        "before": link_phone_in(before, hotline),
        "after": link_phone_in(after, hotline),
        "streets": streets,
    }


# The finder's reasons that name a missing or wrong part of the address, and its field.
NEEDED_FIELD = {
    "needs_house_number": "house_number",
    "number_not_covered": "house_number",
    "needs_postcode": "postcode",
    "postcode_not_matching": "postcode",
}


async def finder_get(request: web.Request) -> web.StreamResponse:
    raise redirect(url("/"))


# --- step 2: concern and mode (R11) -----------------------------------------------------------------


@web_errors
async def concern_page(request: web.Request, errors: forms.FormErrors | None = None) -> web.StreamResponse:
    found = await dialogue(request, ("loc",))
    if found is None:
        raise start_again(request)
    state, context = found
    concerns = await concerns_of(request, state["loc"])
    chosen = notes(request).get("chosen", {})
    context.update(
        {
            "title": _("Choose your concern"),
            "step": 2,
            "groups": grouped(concerns),
            "checked_mode": preselected_mode(
                concerns,
                chosen.get("concern") or state.get("concern"),
                chosen.get("mode") or state.get("mode"),
            ),
            "back": url("/", s=request.query.get(STATE)),
            "errors": errors or forms.FormErrors(),
        }
    )
    return render(request, "concern.html", context, status=422 if errors else 200)


def modes_of(concern: dict[str, Any]) -> tuple[str, ...]:
    """The ways a concern is offered (the catalog leaves the list empty for both)."""
    return tuple(m for m in MODES if m in (concern.get("modes") or MODES))


def preselected_mode(concerns: list[dict[str, Any]], concern_id: Any, mode: Any) -> str | None:
    """The mode the concern page checks: the customer's own choice, else the only one the chosen concern
    (or, before a concern is chosen, every concern of the location) is offered in. No default otherwise:
    a preselected "in person" sent a phone-only concern into an error, and a customer with a choice makes
    it (R11)."""
    if mode in MODES:
        return str(mode)
    chosen = [c for c in concerns if c.get("id") == concern_id] or concerns
    offered = {m for concern in chosen for m in modes_of(concern)}
    return offered.pop() if len(offered) == 1 else None


@web_errors
async def concern_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    state = state_of(request)
    if not state.get("loc"):
        raise start_again(request)
    concerns = {c.get("id"): c for c in await concerns_of(request, state["loc"])}
    errors = forms.FormErrors()
    concern = concerns.get(form.get("concern"))
    mode = form.get("mode", "")
    if not mode and concern is not None and len(modes_of(concern)) == 1:
        mode = modes_of(concern)[0]  # the only way it is offered: nothing to choose (as the page shows)
    if concern is None:
        errors.add("concern", _("Choose what your appointment is about."))
    if mode not in MODES:
        errors.add("mode", _("Choose how you want to talk to us: in person or by phone."))
    elif concern is not None and mode not in modes_of(concern):
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
    first, last = first_open_day(request), last_open_day(request)
    slots: list[dict[str, Any]] = []
    while first <= last:  # eight weeks at a time: before 06:00 a second question for the last day
        until = min(last, first + timedelta(days=HORIZON_DAYS - 1))
        answer = await call(
            request,
            "booking",
            "GET",
            f"/api/v1/locations/{location_id}/availability",
            params={"concern": concern_id, "mode": mode, "from": first.isoformat(), "to": until.isoformat()},
            language=lang(),
        )
        if not answer.ok or not isinstance(answer.body, dict):
            if answer.status in (404, 409, 422):
                return []
            raise UpstreamUnavailable("booking")
        slots += [s for s in answer.body.get("slots", []) if isinstance(s, dict) and "start" in s]
        first = until + timedelta(days=1)
    return slots


def calendar(
    request: web.Request, slots: list[dict[str, Any]], chosen: date | None, link: Callable[[date], str]
) -> list[dict[str, Any]]:
    """Months of weeks (Monday first) over the booking horizon; a day with free slots is a link."""
    per_day: dict[date, int] = {}
    for slot in slots:
        per_day[local(slot["start"]).date()] = per_day.get(local(slot["start"]).date(), 0) + 1
    first, last = first_open_day(request), last_open_day(request)
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
                        else {
                            "day": current_day,
                            "inactive": True,
                            "label": fmt_date(current_day),
                            "count": 0,
                        }
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


def same_instant(one: str, other: str) -> bool:
    try:
        return datetime.fromisoformat(one) == datetime.fromisoformat(other)
    except (TypeError, ValueError):
        return False


async def time_context(
    request: web.Request,
    location_id: str,
    concern_id: str,
    mode: str,
    chosen_day: date | None,
    link: Callable[[date], str],
    current_start: str | None = None,
) -> dict[str, Any]:
    slots = await availability(request, location_id, concern_id, mode)
    if current_start:
        # Moving: the appointment's own time (free for others where it has places left) is no new time.
        slots = [s for s in slots if not same_instant(s["start"], current_start)]
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
        raise start_again(request)
    state, context = found
    if request.method != "POST":  # a HEAD reads the availability like a GET (aiohttp answers it here)
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
        raise start_again(request)
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
    answer = await hold(request, state, start)
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


async def hold(
    request: web.Request, state: dict[str, Any], start: str, *, renews: str | None = None
) -> Answer:
    """Hold the chosen time while the customer types (R38); `renews` extends their own live hold of it."""
    body: dict[str, Any] = {"concern_id": state["concern"], "mode": state["mode"], "start": start}
    if renews:
        body["renews"] = renews
    return await call(
        request, "booking", "POST", f"/api/v1/locations/{state['loc']}/holds", json=body, language=lang()
    )


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
    token: str | None = None,
) -> web.StreamResponse:
    """The contact form; `token` is a new state made by this request (a renewed hold), else the address's."""
    found = await dialogue(request, ("loc", "concern", "mode", "start"), token=token)
    if found is None:
        raise start_again(request)
    state, context = found
    address = url("/details", s=token) if token else None
    token = token or request.query.get(STATE)
    # A time others have taken (R38): nothing is held any more, so no countdown that speaks up later and no
    # offer to hold it again, only "choose another time" (WCAG 3.3.3, 4.1.3).
    taken = bool(notes(request).get("choose_again"))
    context.update({"hold_seconds": None} if taken else hold_context(request, state))
    context.update(
        {
            "title": _("Your contact details"),
            "step": 4,
            "back": url("/time#slots-title", s=token, day=local(state["start"]).date().isoformat()),
            "errors": errors or forms.FormErrors(),
            "values": values or {},
            "token": token,
            "form_action": url("/details", s=token),
            "rehold_action": url("/details/hold", s=token),
            "idempotency_key": (values or {}).get("idempotency_key") or first_key(state),
            "challenge": request.app[BOT_DEFENCE].needs_challenge(client_ip(request), Bucket.BOOKING)
            or bool(notes(request).get("challenge")),
        }
    )
    return render(
        request, "details.html", context, status=status or (422 if errors else 200), address=address
    )


async def _details_sent(
    request: web.Request,
) -> web.Response | tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """The contact form as sent (to book, or to hold the time again): the form, the dialogue's state and
    the cleaned values; a refusal page for a form that cannot be read. Without a chosen time: the start."""
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    state = state_of(request)
    if not all(state.get(k) for k in ("loc", "concern", "mode", "start")):
        raise start_again(request)
    values = forms.clean(form)
    values["idempotency_key"] = form.get("idempotency_key", "")[:64]
    values["privacy"] = form.get("privacy", "")
    return form, state, values


@web_errors
async def details_submit(request: web.Request) -> web.StreamResponse:
    sent = await _details_sent(request)
    if isinstance(sent, web.Response):
        return sent
    form, state, values = sent
    errors = forms.check_contact(values, phone_required=state["mode"] == "phone")
    if errors:
        return await details_page(request, errors, values)
    refused = await bot_refusal(request, form, values)
    if refused is not None:
        return refused
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
    answer = await book(request, body, values["idempotency_key"] or secrets.token_hex(16))
    if key_used_before(answer):  # the form sent again after Back, but changed: a new attempt
        answer = await book(request, body, secrets.token_hex(16))
    if answer.status == 201 and isinstance(answer.body, dict):
        appointment_id = str(answer.body.get("id"))
        manage_token = token_of(answer.body.get("manage_url"))
        log.info("web_appointment_booked", mode=state["mode"])
        raise redirect(url("/confirmation", s=seal(request, {"id": appointment_id, "token": manage_token})))
    return await booking_refused(request, answer, values, state)


async def bot_refusal(
    request: web.Request, form: dict[str, str], values: dict[str, str]
) -> web.StreamResponse | None:
    """None when the contact form may go on (R40); else the 429 page, or the form again with the check."""
    decision = request.app[BOT_DEFENCE].check(client_ip(request), Bucket.BOOKING, form.get("altcha"))
    if decision.verdict is Verdict.RATE_LIMITED:
        refused = bot_check(request, Bucket.BOOKING)
        assert refused is not None  # noqa: S101 -- still limited a moment later
        return refused
    if decision.verdict is Verdict.CHALLENGE_REQUIRED:
        errors = forms.FormErrors()
        errors.add(
            "altcha",
            _("Please confirm that you are a person: tick the box and wait a moment.")
            if form.get("altcha")
            else _("Please wait until the check below is finished, then send the form again."),
        )
        notes(request)["challenge"] = True
        return await details_page(request, errors, values, status=428)
    return None


@web_errors
async def details_rehold(request: web.Request) -> web.StreamResponse:
    """More time for the contact form (R38, WCAG 2.2.1), before or after the hold ran out. The button sends
    the form itself here, so the page comes back with what was typed and the new hold time; the typed
    details never go into an address."""
    sent = await _details_sent(request)
    if isinstance(sent, web.Response):
        return sent
    form, state, values = sent
    refused = await bot_refusal(request, form, values)
    if refused is not None:
        return refused
    answer = await hold(request, state, state["start"], renews=state.get("hold"))
    if answer.status == 201 and isinstance(answer.body, dict):
        renewed = {**state, "hold": answer.body.get("hold_id"), "hold_until": answer.body.get("expires_at")}
        if renewed["hold"] != state.get("hold"):
            values["idempotency_key"] = ""  # a new hold: the form's key is the new hold's (first_key)
        log.info("web_hold_renewed")
        notes(request)["renewed"] = True  # the page starts at the new hold time (focus on it)
        return await details_page(request, None, values, token=seal(request, renewed))
    errors = forms.FormErrors()
    if answer.error_code in ("slot_taken", "booking_closed", "too_late"):
        errors.general.append(_("This time is no longer free. Please choose another time."))
        notes(request)["choose_again"] = True
        return await details_page(request, errors, values, status=409)
    if answer.status >= 500 or answer.status == 0:
        raise UpstreamUnavailable("booking")
    errors.general.append(_("We could not hold this time again. You can still book it, if it is still free."))
    return await details_page(request, errors, values, status=422)


async def details_rehold_get(request: web.Request) -> web.StreamResponse:
    """The renewal's answer reloaded or bookmarked (its address takes only POST): back to the form. An `s`
    that is no state of a chosen time goes to the start like on every step, not back into the address
    (a forged or over-long one made a Location header that proxies refuse)."""
    state = state_of(request)
    if not all(state.get(k) for k in ("loc", "concern", "mode", "start")):
        raise redirect(url("/"))
    raise redirect(url("/details", s=request.query.get(STATE)))


def first_key(state: dict[str, Any]) -> str:
    """The Idempotency-Key of a details form: one per held time, so that the form reloaded with Back and
    sent again after the booking answers with that booking, not with "you already have an appointment"."""
    return f"web-hold-{state['hold']}" if state.get("hold") else str(uuid.uuid4())


async def book(request: web.Request, body: dict[str, Any], key: str) -> Answer:
    return await call(
        request, "booking", "POST", "/api/v1/appointments", json=body, headers={"Idempotency-Key": key}
    )


def key_used_before(answer: Answer) -> bool:
    return answer.error_code == "validation_error" and any(
        str(d.get("field", "")).lower() == "idempotency-key" for d in answer.error_details
    )


def already_booked(request: web.Request, errors: forms.FormErrors, answer: Answer) -> None:
    """One pending appointment per customer (R5), matched by address, customer or household number (R47):
    the message is put at the field that matched and says what helps there; a household member may have
    booked the appointment with the shared number, and the link of someone else's mail is not theirs."""
    matched = {forms.field_of(str(d.get("field", ""))) for d in answer.error_details}
    hotline = settings_of(request).hotline
    if "household_number" in matched:
        errors.add(
            "household_number",
            with_phone_links(
                _(
                    "An appointment that has not yet taken place is already booked with this household "
                    "number. Only one appointment per household is possible at a time. If someone in your "
                    "household booked it, they can cancel it with the link in their confirmation e-mail. "
                    "Otherwise please call us: %(hotline)s."
                ),
                hotline=hotline,
            ),
        )
    elif "customer_number" in matched:
        errors.add(
            "customer_number",
            with_phone_links(
                _(
                    "An appointment that has not yet taken place is already booked with this customer "
                    "number. You can cancel it with the link in its confirmation e-mail. If you did not "
                    "book it, please call us: %(hotline)s."
                ),
                hotline=hotline,
            ),
        )
    else:
        errors.add(
            "email",
            _(
                "You already have an appointment that has not yet taken place. You can book a new one "
                "after it, or cancel it first with the link in your confirmation e-mail."
            ),
        )


async def booking_refused(
    request: web.Request, answer: Answer, values: dict[str, str], state: dict[str, Any]
) -> web.StreamResponse:
    errors = forms.FormErrors()
    code = answer.error_code
    if code == "already_booked":
        already_booked(request, errors, answer)
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
    notes(request)["already_booked"] = code == "already_booked"
    return await details_page(request, errors, values, status=context_status)
