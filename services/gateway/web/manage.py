"""After booking: the printable confirmation (R10), the manage page reached by the link in the mails (R41:
view, print, reschedule, cancel with a confirmation step), and the information pages (R36, R42)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

import structlog
from aiohttp import web
from babel.dates import format_date

from services.gateway.bot_defence import Bucket
from services.gateway.web import forms
from services.gateway.web.client import UpstreamUnavailable, call
from services.gateway.web.i18n import N_, _
from services.gateway.web.pages import (
    address_line,
    babel_locale,
    bot_check,
    fmt_date,
    fmt_time,
    lang,
    local,
    not_found,
    notes,
    read_form,
    redirect,
    render,
    settings_of,
    state_of,
    url,
    web_errors,
)
from services.gateway.web.steps import availability, parse_day, same_instant, time_context
from shared.web import CLOCK

log = structlog.get_logger(__name__)
STATEMENT_WRITTEN = date(2026, 11, 25)  # the accessibility statement's date (BITV 2.0 § 7)
PRIVACY_WRITTEN = date(2026, 12, 6)  # the privacy notice's date


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
    is_phone = found.get("mode") == "phone"
    return {
        "appointment": found,
        "a_location": location,
        # A phone appointment is a call: its location by name only, no street that reads like a place to
        # go to (on the confirmation, the manage and cancel pages and their printout).
        "a_location_address": "" if is_phone else address_line(location),
        "a_concern": concern,
        "documents": [d for d in documents if d],
        "date_label": fmt_date(start) if start else "",
        "time_label": fmt_time(start) if start else "",
        "end_label": fmt_time(found["end"]) if found.get("end") else "",
        "is_phone": is_phone,
        "cancelled": found.get("status") == "cancelled",
    }


def is_over(request: web.Request, found: dict[str, Any]) -> bool:
    """Whether the appointment has ended. Booking marks an appointment "passed" when it starts; until its end
    the customer who is on the way, or waits for the call, still sees where and when (R41)."""
    end = found.get("end") or found.get("start")
    if found.get("status") == "cancelled" or not isinstance(end, str):
        return False
    return local(end) <= request.app[CLOCK].now()


@web_errors
async def confirmation_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    found = await appointment(request, str(state.get("id", "")), str(state.get("token", "")))
    if found is None:
        return not_found(request)
    if found.get("status") == "cancelled" or is_over(request, found):
        # Opened again (Back, reload, a bookmark) after the appointment was cancelled or has taken place:
        # the manage page says so; "booked" with the details would be wrong.
        raise redirect(url(f"/manage/{state['id']}", token=state["token"]))
    context = appointment_context(found)
    context.update(
        {
            "title": _("Your appointment is booked"),
            "step": 5,
            "manage_url": url(f"/manage/{state['id']}", token=state["token"]),
            "calendar_url": calendar_url(str(state["id"]), str(state["token"])),
        }
    )
    return render(request, "confirmation.html", context)


def calendar_url(appointment_id: str, token: str) -> str:
    """The calendar file of the appointment (R40), from booking's API through the gateway."""
    return url(f"/api/v1/appointments/{appointment_id}/invitation.ics", token=token)


# What a manage token can be (URL-safe base64): it travels to booking in a header, and a NUL or a line
# break there made aiohttp refuse to send the request (a 500); such a token is a link that is not valid.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def manage_token(request: web.Request) -> str:
    token = request.query.get("token", "")
    return token if _TOKEN_SHAPE.fullmatch(token) else ""


def changeable(request: web.Request, found: dict[str, Any]) -> bool:
    """Whether the customer may still move or cancel: booked, and the start lies ahead (R9, R41)."""
    return (
        found.get("status") not in ("cancelled", "passed")
        and bool(found.get("can_change", True))
        and bool(found.get("start"))
        and local(found["start"]) > request.app[CLOCK].now()
    )


# The result of a change heads the page's title: the first thing a screen reader says of the new page.
DONE_TITLES = {
    "cancelled": N_("Appointment cancelled"),
    "already_cancelled": N_("Appointment already cancelled"),
    "rescheduled": N_("Appointment moved"),
    "booked": N_("Appointment booked"),
}


@web_errors
async def manage_page(request: web.Request) -> web.StreamResponse:
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    context = appointment_context(found)
    done = request.query.get("done", "")
    context.update(
        {
            "title": _("Your appointment"),
            "done": done if done in DONE_TITLES else "",
            "title_state": _(DONE_TITLES[done]) if done in DONE_TITLES else "",
            "calendar_url": calendar_url(appointment_id, token),
            "reschedule_url": url(f"/manage/{appointment_id}/reschedule", token=token),
            "cancel_url": url(f"/manage/{appointment_id}/cancel", token=token),
            "start_over_url": url("/"),
            "in_future": changeable(request, found),
            "over": is_over(request, found),
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
    if not changeable(request, found):  # the manage page says why: cancelled, passed or started
        raise redirect(url(f"/manage/{appointment_id}", token=token))
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
    before = await appointment(request, appointment_id, token)
    if before is None:
        return not_found(request)
    if before.get("status") == "cancelled":
        # A second "Yes, cancel" (another tab, a double submit): booking cancels once and sends one mail,
        # so the page must not promise another one.
        raise redirect(url(f"/manage/{appointment_id}", token=token, done="already_cancelled"))
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
        too_late = answer.error_code == "too_late"
        errors.general.append(
            _("The appointment can no longer be cancelled online, because it has already started or passed.")
            if too_late
            else _("The appointment could not be cancelled. Please try again.")
        )
        context.update(
            {
                "title": _("Cancel your appointment"),
                "form_action": url(f"/manage/{appointment_id}/cancel", token=token),
                "keep_url": url(f"/manage/{appointment_id}", token=token),
                "errors": errors,
                "too_late": too_late,  # no second "Yes, cancel" that cannot work
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
    if not changeable(request, found):  # no calendar for an appointment that can no longer move
        raise redirect(url(f"/manage/{appointment_id}", token=token))
    if request.method != "POST":  # a HEAD reads the availability like a GET (aiohttp answers it here)
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
            current_start=str(found.get("start") or ""),
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


async def chosen_slot(
    request: web.Request, found: dict[str, Any], start: str, evening_declared: bool
) -> tuple[dict[str, Any] | None, forms.FormErrors]:
    """The free slot the customer chose to move to, or the errors the reschedule page shows instead. The
    choice and its confirmation both ask: the page of the confirmation may be reloaded much later."""
    errors = forms.FormErrors()
    try:
        start_at = datetime.fromisoformat(start)
        if start_at.tzinfo is None:
            raise ValueError(start)
    except ValueError:
        errors.add("slots", _("Choose a time."))
        return None, errors
    notes(request)["day"] = local(start_at).date().isoformat()
    view = appointment_context(found)
    slots = await availability(
        request,
        str(view["a_location"].get("id") or found.get("location_id") or ""),
        str(view["a_concern"].get("id") or found.get("concern_id") or ""),
        str(found.get("mode") or "in_person"),
    )
    slot = next((s for s in slots if datetime.fromisoformat(s["start"]) == start_at), None)
    if slot is None:
        errors.add("slots", _("This time is no longer free. Please choose another time."))
    elif slot.get("evening_reserved") and not evening_declared:
        errors.add(
            "evening_declaration",
            _(
                "Evening appointments are only for people in work or in a measure. "
                "Please confirm this, or choose an earlier time."
            ),
        )
    return (None if errors else slot), errors


def already_at(found: dict[str, Any], start: str) -> bool:
    """Whether the appointment already starts at the time the customer asks to move it to: the move has
    happened (a second press on "Yes, move", the answer to the first one dropped by the browser, or "Back"
    to the confirmation afterwards). That time is no longer free because it is this appointment's."""
    return same_instant(start, str(found.get("start") or "")) and found.get("status") != "cancelled"


async def _opened_form(
    request: web.Request, bucket: Bucket
) -> tuple[dict[str, str], str, str, dict[str, Any]] | web.StreamResponse:
    """A form of the manage link's pages: the CSRF-checked form, the bot defence's `bucket`, and the
    appointment the link opens (form, appointment id, token, appointment); else the page that refuses."""
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    refused = bot_check(request, bucket)
    if refused is not None:
        return refused
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    return form, appointment_id, token, found


def confirm_url(appointment_id: str, token: str, slot: dict[str, Any]) -> str:
    return url(
        f"/manage/{appointment_id}/reschedule/confirm",
        token=token,
        start=slot["start"],
        evening="yes" if slot.get("evening_reserved") else None,
    )


@web_errors
async def reschedule_submit(request: web.Request) -> web.StreamResponse:
    """A time chosen on the reschedule page: not yet a move (WCAG 3.3.4, R41), but the confirmation page
    with the old and the new time. The slot the customer leaves is blocked for a while after a move (R39)
    and then free for anyone: a press on a time in a list must not give it up."""
    opened = await _opened_form(request, Bucket.AVAILABILITY)
    if isinstance(opened, web.StreamResponse):
        return opened
    form, appointment_id, token, found = opened
    if not changeable(request, found) or already_at(found, form.get("start", "")):
        # Its own time (from a list loaded before a move): nothing to move, the manage page shows it.
        raise redirect(url(f"/manage/{appointment_id}", token=token))
    slot, errors = await chosen_slot(
        request, found, form.get("start", ""), form.get("evening_declaration") == "yes"
    )
    if slot is None:
        return await reschedule_page(request, errors)
    raise redirect(confirm_url(appointment_id, token, slot))


def confirm_context(
    request: web.Request, appointment_id: str, token: str, found: dict[str, Any], slot: dict[str, Any]
) -> dict[str, Any]:
    context = appointment_context(found)
    context.update(
        {
            "title": _("Move your appointment"),
            "new_date_label": fmt_date(slot["start"]),
            "new_time_label": fmt_time(slot["start"]),
            "new_end_label": fmt_time(slot["end"]) if slot.get("end") else "",
            "form_action": confirm_url(appointment_id, token, slot),
            "keep_url": url(f"/manage/{appointment_id}", token=token),
            "back": url(
                f"/manage/{appointment_id}/reschedule#slots-title",
                token=token,
                day=local(slot["start"]).date().isoformat(),
            ),
        }
    )
    return context


@web_errors
async def reschedule_confirm_page(request: web.Request) -> web.StreamResponse:
    """Old time and new time, with "Yes, move" and "No, keep" (like the cancellation, R41)."""
    appointment_id = request.match_info["appointment_id"]
    token = manage_token(request)
    found = await appointment(request, appointment_id, token)
    if found is None:
        return not_found(request)
    if already_at(found, request.query.get("start", "")):
        raise redirect(url(f"/manage/{appointment_id}", token=token, done="rescheduled"))
    if not changeable(request, found):
        raise redirect(url(f"/manage/{appointment_id}", token=token))
    refused = bot_check(request, Bucket.AVAILABILITY)
    if refused is not None:
        return refused
    slot, errors = await chosen_slot(
        request, found, request.query.get("start", ""), request.query.get("evening") == "yes"
    )
    if slot is None:
        return await reschedule_page(request, errors)
    return render(
        request, "reschedule_confirm.html", confirm_context(request, appointment_id, token, found, slot)
    )


@web_errors
async def reschedule_confirm_submit(request: web.Request) -> web.StreamResponse:
    """The move itself: only this confirmed form moves the appointment."""
    opened = await _opened_form(request, Bucket.BOOKING)
    if isinstance(opened, web.StreamResponse):
        return opened
    _form, appointment_id, token, found = opened
    start = request.query.get("start", "")
    moved = url(f"/manage/{appointment_id}", token=token, done="rescheduled")
    if already_at(found, start):
        raise redirect(moved)
    if not changeable(request, found):
        raise redirect(url(f"/manage/{appointment_id}", token=token))
    evening = request.query.get("evening") == "yes"
    slot, errors = await chosen_slot(request, found, start, evening)
    if slot is None:
        return await reschedule_page(request, errors)
    body: dict[str, Any] = {"start": slot["start"]}
    if slot.get("evening_reserved"):
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
        # `too_late` naming `start` is the chosen time that has passed meanwhile (choose another one);
        # without it, the appointment itself has begun.
        appointment_begun = answer.error_code == "too_late" and not any(
            d.get("field") == "start" for d in answer.error_details
        )
        errors.add(
            "slots",
            _("The appointment can no longer be changed online, because it has already started or passed.")
            if appointment_begun
            else _("This time is no longer free. Please choose another time."),
        )
        return await reschedule_page(request, errors)
    raise redirect(moved)


# --- the manage link again (R41): for a customer who lost the confirmation mail ----------------------


def link_request_context(values: dict[str, str], errors: forms.FormErrors) -> dict[str, Any]:
    return {
        "title": _("Get the link to your appointment"),
        "values": values,
        "errors": errors,
        "form_action": url("/manage"),
        "sent": False,
    }


async def link_request_page(request: web.Request) -> web.StreamResponse:
    context = link_request_context({}, forms.FormErrors())
    if request.query.get("sent"):
        context.update({"title": _("Please look in your mailbox"), "sent": True})
    return render(request, "link_request.html", context)


@web_errors
async def link_request_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if isinstance(form, web.Response):
        return form
    refused = bot_check(request, Bucket.BOOKING)
    if refused is not None:
        return refused
    values = {"email": " ".join(form.get("email", "").split())}
    errors = forms.check_email(values["email"])
    if not errors:
        answer = await call(request, "booking", "POST", "/api/v1/manage-links", json=values)
        if answer.status == 422:
            errors.add("email", forms.generic_message("email"))
        elif not answer.ok:
            raise UpstreamUnavailable("booking")
    if errors:
        return render(request, "link_request.html", link_request_context(values, errors), status=422)
    log.info("web_manage_link_requested")  # never the address (DSGVO)
    # The address stays out of the address bar: the next page says the same for any address.
    raise redirect(url("/manage", sent="1"))


# --- information pages (R36, R42) -------------------------------------------------------------------


async def accessibility_page(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    return render(
        request,
        "accessibility.html",
        {
            "title": _("Accessibility statement"),
            "contact": settings.accessibility_contact,
            "written_on": format_date(STATEMENT_WRITTEN, format="long", locale=babel_locale()),
        },
    )


async def privacy_page(request: web.Request) -> web.StreamResponse:
    """The privacy notice (Art. 13 GDPR, R34): who is responsible, what is kept and for how long (the
    retention period every service shares), and the customer's rights."""
    settings = settings_of(request)
    return render(
        request,
        "privacy.html",
        {
            "title": _("Privacy notice"),
            "controller": settings.privacy_controller,
            "contact": settings.privacy_contact,
            "retention_days": settings.retention_days,
            "written_on": format_date(PRIVACY_WRITTEN, format="long", locale=babel_locale()),
        },
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
