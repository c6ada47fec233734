"""Calendar invitations (R40): one VEVENT per appointment with a stable UID; SEQUENCE is the appointment's
revision, so every change outranks what the customer's calendar holds. A cancellation is METHOD:CANCEL
with STATUS:CANCELLED under the same UID.

The title never names the concern (R52): calendars are shared and shown on lock screens. The concern
is in the mail; the invitation only points to the manage page.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vRecur

from shared.clock import BERLIN
from shared.events.appointment import AppointmentSnapshot
from shared.languages import pick
from shared.links import in_language

TITLES = {
    "de": "Termin im Jobcenter Bremen",
    "de-x-ls": "Termin im Jobcenter Bremen",
    "en": "Appointment at Jobcenter Bremen",
}
PHONE_LOCATION = {"de": "Telefontermin", "de-x-ls": "Termin am Telefon", "en": "Phone appointment"}
MANAGE_LABEL = {
    "de": "Termin ansehen, verschieben oder absagen",
    "de-x-ls": "Hier können Sie den Termin ansehen, verschieben oder absagen",
    "en": "View, reschedule or cancel the appointment",
}


def uid_of(snap: AppointmentSnapshot, domain: str) -> str:
    return f"{snap.id}@{domain}"


@lru_cache(maxsize=1)
def _berlin_timezone_ical() -> bytes:
    """The same for every invitation: serialised once (a third of an invitation's CPU)."""
    data: bytes = _berlin_timezone().to_ical()
    return data


def _berlin_timezone() -> Timezone:
    """Europe/Berlin with the EU rules (last Sunday of March and of October), valid beyond 2038."""
    tz = Timezone()
    tz.add("tzid", "Europe/Berlin")
    summer = TimezoneDaylight()
    summer.add("tzname", "CEST")
    summer.add("dtstart", datetime(1981, 3, 29, 2, 0))  # noqa: DTZ001 -- VTIMEZONE wants local times
    summer.add("tzoffsetfrom", BERLIN.utcoffset(datetime(2026, 1, 1)))  # noqa: DTZ001 -- winter offset
    summer.add("tzoffsetto", BERLIN.utcoffset(datetime(2026, 7, 1)))  # noqa: DTZ001 -- summer offset
    summer.add("rrule", vRecur(freq="YEARLY", bymonth=3, byday="-1SU"))
    winter = TimezoneStandard()
    winter.add("tzname", "CET")
    winter.add("dtstart", datetime(1996, 10, 27, 3, 0))  # noqa: DTZ001 -- VTIMEZONE wants local times
    winter.add("tzoffsetfrom", BERLIN.utcoffset(datetime(2026, 7, 1)))  # noqa: DTZ001 -- summer offset
    winter.add("tzoffsetto", BERLIN.utcoffset(datetime(2026, 1, 1)))  # noqa: DTZ001 -- winter offset
    winter.add("rrule", vRecur(freq="YEARLY", bymonth=10, byday="-1SU"))
    tz.add_component(summer)
    tz.add_component(winter)
    return tz


def invitation(
    snap: AppointmentSnapshot,
    *,
    cancel: bool,
    organizer_address: str,
    organizer_name: str,
    domain: str,
    stamp: datetime,
    publish: bool = False,
) -> bytes:
    """The invitation of a mail (REQUEST, or CANCEL), or with `publish` the same entry as a file to
    download from the customer's pages (PUBLISH: no attendee, RFC 5546); one UID for all of them."""
    # The texts in the customer's language where there are some, else German (R43); the link opens the
    # pages in the customer's own language.
    language = pick(snap.customer_language, TITLES)
    cal = Calendar()
    cal.add("prodid", "-//Jobcenter Bremen//OTV//DE")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH" if publish else "CANCEL" if cancel else "REQUEST")

    event = Event()
    event.add("uid", uid_of(snap, domain))
    event.add("sequence", snap.revision)
    event.add("dtstamp", stamp)
    event.add("dtstart", snap.start.astimezone(BERLIN))
    event.add("dtend", snap.end.astimezone(BERLIN))
    event.add("summary", TITLES[language])
    if snap.mode.value == "phone":
        # A call, not a place to go to: no street address, only which jobcenter calls.
        event.add("location", f"{PHONE_LOCATION[language]} \u2013 {snap.location_name}")
    else:
        event.add("location", f"{snap.location_name}, {snap.location_address}")
    link = in_language(snap.manage_url, snap.customer_language)
    event.add("description", f"{snap.reference}\n{MANAGE_LABEL[language]}: {link}")
    event.add("url", link)
    organizer = vCalAddress(f"mailto:{organizer_address}")
    organizer.params["cn"] = organizer_name
    event.add("organizer", organizer)
    if not publish:
        attendee = vCalAddress(f"mailto:{snap.customer.email}")
        attendee.params["role"] = "REQ-PARTICIPANT"
        attendee.params["partstat"] = "ACCEPTED"
        attendee.params["rsvp"] = "FALSE"
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    event.add("transp", "OPAQUE")
    cal.add_component(event)
    # The time zone goes first among the components, where add_component would have put it.
    data: bytes = cal.to_ical().replace(b"BEGIN:VEVENT\r\n", _berlin_timezone_ical() + b"BEGIN:VEVENT\r\n", 1)
    return data
