"""The staff pages (server-rendered, German, usable without JavaScript): sign-in, the start page of each
role, one's own password, and for administrators the accounts and roles, API keys, the audit log and the
mail texts. The location pages (catalog configuration) are in `location_pages.py`.

Who may open which page is decided by `authz.py` from `rules.py`; forms carry the session's CSRF token,
which the middleware checks before a handler runs.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
import pydantic
from aiohttp import web
from markupsafe import Markup

from services.gateway.origins import Provenance, is_local_target, provenance
from services.gateway.proxy import client_ip
from services.gateway.staff import service, upstream
from services.gateway.staff.api import (
    LOGIN_REFUSED,
    AuditQuery,
    actor,
    audit_json,
    clear_session_cookie,
    set_session_cookie,
)
from services.gateway.staff.authz import CSRF_FIELD, session_cookie
from services.gateway.staff.domain import (
    CENTRAL_ROLES,
    GRANTABLE_ROLES,
    KEY_REQUESTS_PER_MINUTE_MAX,
    KEY_REQUESTS_PER_MINUTE_MIN,
    LOCATION_DELEGABLE_ROLES,
    OPERATIONS,
    ROLE_LABELS_DE,
    LoginRefused,
    LoginThrottled,
    PasswordChecksBusy,
    PasswordGuessStopped,
    is_account_id,
)
from services.gateway.staff.keys import ALLOWED_ORIGINS, IDENTITY, PAGE_ERROR, PAGE_SIGN_IN, SESSION, STAFF
from services.gateway.staff.mail_languages import MAIL_LANGUAGES
from services.gateway.staff.service import Actor
from services.gateway.web.i18n import offered_languages
from shared.clock import BERLIN
from shared.errors import NotFoundError, OTVError, RepeatedParameterError, ValidationError
from shared.identity import ALL_LOCATIONS, Role
from shared.labels import MAIL_KINDS_DE, language_de
from shared.languages import is_well_formed, pick
from shared.logging import current_correlation_id
from shared.staff_nav import main_nav
from shared.web import CLOCK, SETTINGS, parse_form, validation_error

HERE = Path(__file__).parent
JINJA = web.AppKey("otv_staff_jinja2", jinja2.Environment)
LOGIN_COOKIE = "otv_staff_login"

# The staff pages' own policy: no inline script or style, never framed.
STAFF_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)

ERROR_TEXTS_DE = {
    "forbidden": "Dafür fehlt Ihnen die Rolle oder der Standort.",
    "not_found": "Das gibt es nicht (mehr).",
    "csrf_failed": (
        "Das Formular ist abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal."
    ),
    "unavailable": "Ein Dienst antwortet gerade nicht. Bitte versuchen Sie es gleich noch einmal.",
    "conflict": "Das geht so nicht.",
    "stale": "Inzwischen von jemand anderem geändert. Bitte laden Sie die Seite neu und prüfen Sie.",
    "rate_limited": "Zu viele Anfragen. Bitte warten Sie eine Minute.",
    "validation_error": "Bitte prüfen Sie Ihre Eingaben.",
    "internal_error": (
        "Es ist ein Fehler aufgetreten; er ist protokolliert. Bitte versuchen Sie es später noch einmal."
    ),
    "payload_too_large": "Das Formular ist zu groß. Bitte kürzen Sie Ihre Eingaben.",
}
# The title of the error page says what went wrong (a tab or a screen reader's window list shows it).
ERROR_TITLES_DE = {
    "forbidden": "Keine Berechtigung",
    "not_found": "Nicht gefunden",
    "csrf_failed": "Formular abgelaufen",
    "unavailable": "Dienst nicht erreichbar",
    "rate_limited": "Zu viele Anfragen",
    "validation_error": "Eingabe nicht gespeichert",
    "internal_error": "Technischer Fehler",
}

# A form loaded before someone else's change of the same thing (409 `stale`): it is shown again as stored.
STALE_DE = (
    "Nicht gespeichert: inzwischen von jemand anderem geändert \N{EN DASH} bitte prüfen. Das Formular zeigt "
    "jetzt den gespeicherten Stand; tragen Sie Ihre Änderung dort bitte erneut ein."
)
# ... when the audit log names who made that change, and when.
STALE_BY_DE = (
    "Nicht gespeichert: Das wurde inzwischen {who} {when} geändert \N{EN DASH} bitte prüfen. Das Formular "
    "zeigt jetzt den gespeicherten Stand; tragen Sie Ihre Änderung dort bitte erneut ein."
)


def stale_text(request: web.Request, change: service.LastChange | None) -> str:
    """The line of a form refused as `stale`: who changed it meanwhile and when, where the audit log has
    the change (a colleague's name and login, an API key's name; never a customer's data)."""
    if change is None:
        return STALE_DE
    identity = request.get(IDENTITY)
    if identity is not None and change.actor == identity.subject and change.kind == str(identity.kind):
        who = "von Ihnen selbst (in einem anderen Fenster oder Formular)"
    elif change.kind == "api_key":
        who = f"über den API-Schlüssel „{change.name}“" if change.name else "über einen API-Schlüssel"
    elif change.name and change.name != change.actor:
        who = f"von {change.name} ({change.actor})"
    else:
        who = f"von {change.actor}"
    at = change.at.astimezone(BERLIN)
    today = request.app[CLOCK].now().astimezone(BERLIN).date()
    when = f"um {at:%H:%M} Uhr" if at.date() == today else f"am {at:%d.%m.%Y} um {at:%H:%M} Uhr"
    return STALE_BY_DE.format(who=who, when=when)


# The name of the form field that carries the `version` it was loaded with (shared.versions).
VERSION_FIELD = "expected_version"
# No turn for the password check came in time (OTV_STAFF_PASSWORD_CHECKS at once, all taken).
BUSY_DE = "Gerade melden sich sehr viele Personen an. Bitte versuchen Sie es in einer Minute noch einmal."

routes = web.RouteTableDef()


def with_version(data: dict[str, Any], form: Any) -> dict[str, Any]:
    """The change with the version its form was loaded with, when the form has one (a page rendered
    before the forms carried it has none: the change is then made as before)."""
    version = str(form.get(VERSION_FIELD, "")).strip()
    return {**data, VERSION_FIELD: version} if version else data


def lang_attribute(tag: Any) -> Markup:
    """` lang="…"` for a text in `tag` (WCAG 3.1.2: a screen reader reads it in its language; Leichte
    Sprache keeps its tag `de-x-ls`, as the customer pages mark it), nothing for a tag that is not one."""
    tag = str(tag or "")
    return Markup(' lang="{}"').format(tag) if is_well_formed(tag) else Markup("")


def setup_pages(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        app_key=JINJA,
    )
    env.filters["when"] = _when
    env.filters["date_de"] = date_de
    env.filters["language_de"] = language_de
    env.filters["lang_attribute"] = lang_attribute
    env.globals["role_label"] = lambda role: ROLE_LABELS_DE.get(Role(role), role)
    app[PAGE_ERROR] = render_error
    app[PAGE_SIGN_IN] = session_ended_page
    from services.gateway.staff import dead_letter_pages, location_pages

    app.router.add_routes(routes)
    app.router.add_routes(location_pages.routes)
    app.router.add_routes(dead_letter_pages.routes)


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M")
    return "\N{EN DASH}" if value is None else str(value)


def date_de(value: Any) -> str:
    """A calendar day as staff write it (09.12.2026); anything else as it is."""
    try:
        return date.fromisoformat(str(value)).strftime("%d.%m.%Y")
    except ValueError:
        return "" if value is None else str(value)


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    nav: list[tuple[str, str]] | None = None,
    app_key: web.AppKey[jinja2.Environment] = JINJA,
) -> web.Response:
    """A staff page: the signed-in member, the form token, the navigation (the member's own unless
    given), no caching and the staff pages' security headers."""
    identity = request.get(IDENTITY)
    session = request.get(SESSION)
    ctx = {
        "me": identity,
        "csrf_token": session.csrf_token if session else "",
        "csrf_field": CSRF_FIELD,
        "nav": main_nav(identity) if nav is None else nav,
        "current_path": request.path,
        # A signed-in page says how long the session lasts without activity; staff.js warns before it
        # ends and offers to extend it (WCAG 2.2.1).
        "session_idle_minutes": (
            int(getattr(request.app[SETTINGS], "staff_session_idle_minutes", 30)) if session else 0
        ),
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status, app_key=app_key)
    no_store(response)
    return response


def no_store(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = STAFF_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # Same-origin form posts then carry their Origin (under `no-referrer` a browser sends "null").
    response.headers["Referrer-Policy"] = "same-origin"


# An address that names a parameter twice (shared.web): a link put together wrongly or edited by hand.
REPEATED_TITLE_DE = "Adresse nicht eindeutig"
REPEATED_TEXT_DE = (
    "Die Adresse dieser Seite nennt {fields} mehrfach; welcher Wert gemeint ist, bleibt offen. "
    "Bitte öffnen Sie die Seite noch einmal über die Navigation."
)


async def render_error(request: web.Request, exc: OTVError) -> web.Response:
    title = ERROR_TITLES_DE.get(exc.code, "Nicht möglich")
    message = ERROR_TEXTS_DE.get(exc.code, "Das hat nicht geklappt.")
    if isinstance(exc, RepeatedParameterError):
        title = REPEATED_TITLE_DE
        message = REPEATED_TEXT_DE.format(fields=", ".join(f"„{d['field']}“" for d in exc.details))
    return render(
        request, "error.html", {"title": title, "message": message, "code": exc.code}, status=exc.status
    )


# The labels of the staff forms' fields, for the lines of an error summary (the service names the field):
# the visible labels, so that a reader finds the field the line speaks of.
FIELD_LABELS_DE = {
    "who": "Wer",
    "from": "Von (Datum)",
    "to": "Bis (Datum)",
    "first": "Erster Tag",
    "last": "Letzter Tag",
    "group_id": "Gruppe",
    "reason": "Grund",
    "service_points_left": "Serviceplätze, die bleiben",
    "service_points": "Serviceplätze",
    "weekday": "Wochentag",
    "start": "Von",
    "end": "Bis",
    "valid_from": "Gültig ab",
    "valid_until": "Gültig bis",
    "evening": "Abendtermine",
    "min_minutes": "Frühestens so viele Minuten vor dem Termin buchbar",
    "max_days": "Höchstens so viele Tage im Voraus buchbar",
    "last_days": "Letzte Tage des Monats",
    "first_days": "Erste Tage des neuen Monats",
    "name": "Name",
    "street": "Straße und Hausnummer",
    "postcode": "Postleitzahl",
    "city": "Ort",
    "hotline": "Hotline",
    "phone": "Telefon",
    "duration_minutes": "Dauer",
    "modes": "Art",
    "username": "Benutzername",
    "display_name": "Anzeigename",
    "password": "Passwort",
    "locations": "Standorte",
    "operations": "Erlaubte Vorgänge",
    "reference": "Aktenzeichen",
    "approved_by": "Abgestimmt mit",
    "note": "Notiz",
    "id": "Kennung",
    "kind": "Art",
    "concern_id": "Anliegen",
    "location": "Standort",
    "role": "Rolle",
    "roles": "Rollen",
    "groups": "Gruppen",
    "entry": "Adresse oder Domain",
    "url": "Adresse",
    "group_kinds": "Für Gruppen der Art",
    "default_duration_minutes": "Übliche Dauer in Minuten",
    "info": "Hinweise",
    "documents": "Unterlagen",
    "links": "Links",
    "requests_per_minute": "Anfragen je Minute",
}
# German for the usual kinds of invalid input (pydantic's `type`); other messages stay as the service said.
PROBLEMS_DE = {
    "missing": "fehlt",
    "int_parsing": "bitte eine ganze Zahl",
    "int_type": "bitte eine ganze Zahl",
    "greater_than_equal": "ist zu klein",
    "greater_than": "ist zu klein",
    "less_than_equal": "ist zu groß",
    "less_than": "ist zu groß",
    "too_short": "bitte mindestens eine Angabe ankreuzen",
    "string_too_long": "ist zu lang",
    "string_too_short": "fehlt oder ist zu kurz",
    "date_from_datetime_parsing": "bitte ein Datum",
    "datetime_from_date_parsing": "bitte ein Datum",
    "date_parsing": "bitte ein Datum",
    "time_parsing": "bitte eine Uhrzeit",
    "string_pattern_mismatch": "hat nicht die erwartete Form",
    "unknown_group": "diese Gruppe gibt es an diesem Standort nicht",
    "unknown_concern": "dieses Anliegen gibt es im Leistungskatalog nicht",
    "unknown_location": "diesen Standort gibt es nicht",
    # The catalog's refusal of a closure that would be over before it is saved (R20).
    "in_the_past": "liegt vor heute, die Schließung wäre schon vorbei; bitte das Datum prüfen, auch das Jahr",
    # The catalog's checks of windows and the month-change block (its kinds of problem).
    "window_order": "muss nach „Von“ liegen",
    "window_overlap": "überschneidet sich mit einem anderen Zeitfenster der Gruppe an diesem Wochentag",
    "month_change_block_too_long": "zusammen mit den letzten Tagen des Monats höchstens 3 Tage (Ziffer 3.3)",
}
# The catalog's own messages for values that do not fit together.
MESSAGES_DE = {
    "must not be before first": "darf nicht vor dem ersten Tag liegen",
    "must not be before valid_from": "darf nicht vor „Gültig ab“ liegen",
    "must not be null": "fehlt",
    "a location needs a hotline": "ein Standort braucht eine Hotline",
    "already exists": "gibt es schon",
    "whole minutes in steps of 5": "bitte in Schritten von 5 Minuten (zum Beispiel 08:05)",
    "German text is required": "der deutsche Text fehlt",
    "Value error, the German text ('de') is required": "der deutsche Text fehlt",
    "Value error, a postcode has five digits, e.g. 28195": "bitte fünf Ziffern, zum Beispiel 28195",
    "Value error, a time of day such as 08:30": "bitte eine Uhrzeit wie 08:30",
    "Value error, a time of day without an offset (Berlin time), such as 08:30": (
        "bitte eine Uhrzeit wie 08:30"
    ),
    "last_days + first_days must be at least 1": "zusammen mindestens 1 Tag (sonst die Sperre entfernen)",
    "still offers concerns": "bietet noch Anliegen an",
    "was used at another location": "ist schon an einem anderen Standort vergeben",
    "Value error, is not a day of the audit log": "bitte ein Datum zwischen 2000 und 2999",
    "choose a location": "bitte wählen Sie einen Standort (oder ausdrücklich „alle Standorte“)",
    "an e-mail address (name@domain) or @domain": "bitte eine E-Mail-Adresse (name@domain) oder @domain",
    # The notifier's checks of a mail text.
    "the subject is empty": "fehlt (nach dem Einsetzen der Platzhalter ist er leer)",
    "the subject must not name the concern": "darf das Anliegen nicht nennen (Datenschutz)",
    "the text must contain the manage link": "der Link zur Terminverwaltung {{ manage_url }} fehlt",
    "the text must contain the book again link": "der Link für eine neue Buchung {{ book_again_url }} fehlt",
    # The staff service's checks of accounts, roles and API keys.
    "empty": "bitte mindestens einen ankreuzen",
    "length": "bitte 1 bis 120 Zeichen",
    "invalid username": "bitte 2 bis 63 Kleinbuchstaben, Ziffern, Punkt, Unterstrich oder Bindestrich",
    "looks like an account id": "darf nicht wie die Kennung eines Kontos aussehen (eine UUID)",
    "unknown role": "bitte eine Rolle wählen",
    "invalid location id": "diesen Standort gibt es nicht",
    "only for group_leader": "nur für die Rolle Serviceplatzgruppen-Leiter:in",
    "invalid group id": "bitte die Kennungen der Gruppen, durch Komma getrennt (zum Beispiel mitte-ez)",
    "unknown operation": "diesen Vorgang gibt es nicht",
    "unknown actor": "bitte aus der Liste wählen",
    "Value error, give either actor or who": "bitte nur eine Angabe unter „Wer“",
    "not delegable": "an einem Standort nur Termin-Manager:in und Serviceplatzgruppen-Leiter:in",
    "out of range": (
        f"bitte eine ganze Zahl von {KEY_REQUESTS_PER_MINUTE_MIN} bis {KEY_REQUESTS_PER_MINUTE_MAX}"
    ),
}
# What is wrong with a field of a certain name, where the kind of problem alone would not say it.
FIELD_PROBLEMS_DE = {
    ("url", "string_pattern_mismatch"): "bitte eine Adresse, die mit https:// beginnt",
    ("requests_per_minute", "greater_than_equal"): f"bitte mindestens {KEY_REQUESTS_PER_MINUTE_MIN}",
    ("requests_per_minute", "less_than_equal"): f"bitte höchstens {KEY_REQUESTS_PER_MINUTE_MAX}",
    ("requests_per_minute", "int_parsing"): "bitte eine ganze Zahl (oder leer lassen für den Standard)",
}
# The staff service's refusals that name no field, as its API words them (in English): the field they
# concern ("" for none) and the German line.
REFUSALS_DE = {
    "An account with this username exists already.": ("username", "gibt es schon"),
    "No such account.": ("username", "ein Konto mit diesem Namen gibt es nicht"),
    "You cannot disable your own account.": ("", "Das eigene Konto können Sie nicht deaktivieren."),
    "You cannot take the administrator role from yourself.": (
        "",
        "Die Rolle Administrator:in können Sie sich nicht selbst entziehen.",
    ),
}


# The notifier's checks of a mail text (services/notifier/texts.py `validate`), by the start of its
# message: the German line, given what follows (a line number, a placeholder's name, the HTML found).
def _mail_text_problem_de(message: str) -> str | None:
    head, _, rest = message.partition(": ")
    if head.startswith("syntax error in line "):
        line = head.removeprefix("syntax error in line ")
        return (
            f"in Zeile {line} ist ein Platzhalter {{{{ … }}}} oder eine Anweisung {{% … %}} nicht richtig "
            "geschrieben oder nicht geschlossen"
        )
    if head == "unknown value":
        name = rest.split("'")[1] if rest.count("'") >= 2 and rest.endswith("is undefined") else ""
        return f"den Platzhalter „{name}“ gibt es nicht" if name else "ein Platzhalter ist unbekannt"
    if head == "not allowed":
        return "diese Anweisung ist in E-Mail-Texten nicht erlaubt"
    if head == "unsafe HTML":
        return (
            f"nicht erlaubt in E-Mails: {rest} (Skripte, Frames, Formulare, on…-Attribute und "
            "javascript:-Links)"
        )
    if head == "the text must contain the link":
        return f"der Link {{{{ {rest} }}}} fehlt"
    if message.endswith(" while rendering") or (": " in message and head.endswith("Error")):
        return "lässt sich mit den Beispieldaten nicht erzeugen"
    return None


def too_many_points_de(most: int | str, *, location_wide: bool) -> str:
    """More service points than the group has (for the whole location: its largest group), in German with
    the number, so that the reader knows what to enter."""
    whose = "die größte Gruppe des Standorts" if location_wide else "die Gruppe"
    return f"höchstens {most}, so viele Serviceplätze hat {whose}"


def too_many_points_de_of(message: str) -> str:
    """The catalog's refusal of more service points than the group has ("the group has 6 service
    points"; `too_many_service_points`) in German."""
    most = "".join(c for c in message if c.isdigit()) or "?"
    return too_many_points_de(most, location_wide="largest" in message)


def error_details(exc: OTVError, labels: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Each detail of a refusal as the field's path the service named ("" for none) and its German
    line: the field's visible label (a form's own `labels` first) and what is wrong."""
    labels = {**FIELD_LABELS_DE, **(labels or {})}
    details = exc.details
    if not details and exc.message in REFUSALS_DE:
        field, known = REFUSALS_DE[exc.message]
        details = [{"field": field, "message": known}]
    lines: list[tuple[str, str]] = []
    for detail in details:
        field = str(detail.get("field") or "")
        message = str(detail.get("message") or "")
        kind = str(detail.get("type") or "")
        # A nested path (`name.de`, `links.0.url`) is named by its innermost part that has a label.
        parts = [part for part in reversed(field.split(".")) if part in labels]
        text = FIELD_PROBLEMS_DE.get((parts[0] if parts else "", kind)) or PROBLEMS_DE.get(
            kind, MESSAGES_DE.get(message) or _mail_text_problem_de(message) or message
        )
        if kind == "too_many_service_points":
            text = too_many_points_de_of(message)
        label = labels[parts[0]] if parts else field
        line = f"{label}: {text}" if field else text
        # A field of several types (a date, or a date and time) is refused once for each: one line.
        if line not in (known for _, known in lines):
            lines.append((field, line))
    return lines


def error_messages(exc: OTVError) -> list[str]:
    """German lines for a form: the fields the service named, with their labels, and what is wrong; a
    refusal that names none in the words of its kind (a service's own message is English)."""
    fallback = ERROR_TEXTS_DE.get(exc.code, "Das hat nicht geklappt.")
    return [line for _, line in error_details(exc)] or [fallback]


@dataclass(frozen=True)
class ErrorLine:
    """A line of the error summary that links to the field it names (`target`: the input's id)."""

    text: str
    target: str = ""

    def __str__(self) -> str:
        return self.text


def confirmed(form: Any) -> bool:
    """The second press of a button that asks first (`confirm.html`)."""
    return bool(form.get("confirm") == "yes")


def ask_first(
    request: web.Request,
    *,
    title: str,
    question: str,
    consequence: str,
    button: str,
    back: str,
    fields: list[tuple[str, str]] | None = None,
) -> web.Response:
    """The page that asks before what cannot be undone with one click (a revoked key, a reset text, a
    removed offer, a deleted window, a lifted closure, a deactivated account, a new start password):
    nothing has changed yet; its button sends the same form again with `confirm=yes`, "Abbrechen" leads
    back."""
    return render(
        request,
        "confirm.html",
        {
            "title": title,
            "question": question,
            "consequence": consequence,
            "button": button,
            "back": back,
            "action": request.path,
            "fields": fields or [],
        },
    )


def form_refused(
    key: str, exc: OTVError, form: Any, fields: tuple[str, ...]
) -> tuple[list[ErrorLine], dict[str, Any]]:
    """A refused form of the administration, as the location page shows its own (`location_forms`): the
    summary's lines linked to the fields (ids `<key>-<field>`), and the form again as it was filled in,
    each named field with its message. `fields` names the form's fields, also those sent empty or not
    at all (a box left unticked). A refusal that names no field is a line of its own."""
    from services.gateway.staff.location_forms import refused, typed  # it builds on this module

    lines, failed = refused(key, exc, typed(form), fields)
    return lines or [ErrorLine(line) for line in error_messages(exc)], failed


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def see_other(location: str) -> web.Response:
    """A 303 that can carry cookies (an HTTPException cannot)."""
    response = web.Response(status=303, headers={"Location": location})
    no_store(response)
    return response


# --- sign-in ----------------------------------------------------------------------------------------
def _safe_next(raw: str | None) -> str:
    """Only our own staff pages as a target after sign-in (no open redirect)."""
    if raw and is_local_target(raw, "/staff/"):
        return raw
    return "/staff/"


@routes.get("/staff")
async def staff_root(_request: web.Request) -> web.Response:
    raise redirect("/staff/")


@routes.get("/staff/login")
async def login_page(request: web.Request) -> web.Response:
    return _login_form(request, errors=[], username="")


async def session_ended_page(request: web.Request, page_of_form: str) -> web.Response:
    """A page's form sent without a live session (WCAG 2.2.1): say in German that the session
    ended and the entry was not saved, and lead back to the form's page after signing in (401)."""
    if request.cookies.get(session_cookie(request.app)):
        minutes = int(getattr(request.app[SETTINGS], "staff_session_idle_minutes", 30))
        reason = f"Ihre Sitzung ist nach {minutes} Minuten ohne Aktivität abgelaufen."
    else:
        reason = "Sie sind nicht (mehr) angemeldet."
    return _login_form(
        request,
        errors=[
            f"{reason} Ihre Eingabe wurde nicht gespeichert. Bitte melden Sie sich an; danach kommen Sie "
            "zurück zur Seite des Formulars und können die Eingabe wiederholen."
        ],
        username="",
        status=401,
        next_page=page_of_form,
    )


def _login_form(
    request: web.Request,
    *,
    errors: list[str],
    username: str,
    status: int = 200,
    next_page: str | None = None,
) -> web.Response:
    # Login CSRF: a double-submit value in a cookie and in the form (there is no session yet).
    token = login_cookie(request)
    if len(token) != 43:
        token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "title": "Anmeldung",
            "errors": errors,
            "username": username,
            "login_token": token,
            "next": _safe_next(next_page if next_page is not None else request.query.get("next")),
        },
        status=status,
    )
    secure = bool(getattr(request.app[SETTINGS], "staff_cookie_secure", True))
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path="/staff/login",
        httponly=True,
        secure=secure,
        samesite="Strict",
        max_age=3600,
    )
    return response


def login_cookie(request: web.Request) -> str:
    """The sign-in page's double-submit token from its cookie, or "" for a value the gateway never set
    (bytes that are not UTF-8 arrive as lone surrogates, and comparing them as bytes raised)."""
    value = request.cookies.get(LOGIN_COOKIE, "")
    return value if value.isascii() else ""


@routes.post("/staff/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await parse_form(request)
    username = str(form.get("username", ""))[:200]
    password = str(form.get("password", ""))[:500]
    token = str(form.get(CSRF_FIELD, ""))
    cookie = login_cookie(request)
    # The double-submit cookie alone does not stop a login CSRF: another host of the registrable domain
    # (the framing homepage) can set `otv_staff_login` for us and post its own account's credentials, and
    # the victim works on in the attacker's session. A browser names the foreign page; as in check_csrf.
    foreign = provenance(request, request.app[ALLOWED_ORIGINS]) is Provenance.FOREIGN
    if foreign or not cookie or not secrets.compare_digest(token.encode(), cookie.encode()):
        return _login_form(
            request, errors=["Die Anmeldeseite war abgelaufen. Bitte noch einmal."], username="", status=403
        )
    if not username or not password:
        return _login_form(
            request, errors=["Bitte Benutzername und Passwort eingeben."], username=username, status=422
        )
    who = Actor("", "user", client_ip(request), current_correlation_id())
    try:
        session = await service.login(request.app[STAFF], username, password, who)
    except LoginThrottled:
        return _login_form(
            request,
            errors=["Zu viele fehlgeschlagene Anmeldungen. Bitte warten Sie einige Minuten."],
            username=username,
            status=429,
        )
    except PasswordChecksBusy as busy:
        # Nothing was checked: no failed sign-in. The form again, with the name kept.
        response = _login_form(
            request,
            errors=[BUSY_DE],
            username=username,
            status=503,
        )
        response.headers["Retry-After"] = str(busy.retry_after)
        return response
    except LoginRefused:
        return _login_form(
            request,
            errors=[
                "Benutzername oder Passwort sind falsch, oder das Konto ist nach mehreren Fehlversuchen "
                "vorübergehend gesperrt. Bitte versuchen Sie es später noch einmal."
            ],
            username=username,
            status=401,
        )
    target = "/staff/password" if session.must_change_password else _safe_next(str(form.get("next", "")))
    response = see_other(target)
    set_session_cookie(request, response, session.token)
    response.del_cookie(LOGIN_COOKIE, path="/staff/login")
    return response


assert LOGIN_REFUSED  # noqa: S101 -- the API's wording; the page says the same in German


@routes.post("/staff/logout")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        await service.logout(request.app[STAFF], session, actor(request))
    response = see_other("/staff/login")
    clear_session_cookie(request, response)
    return response


# --- start page -------------------------------------------------------------------------------------
async def location_names(request: web.Request) -> dict[str, str]:
    """Location ids to names from the catalog's public list; ids alone when the catalog is down."""
    try:
        status, data = await upstream.call(request, "catalog", "GET", "/api/v1/locations", signed=False)
    except OTVError:
        return {}
    if status != 200 or not isinstance(data, list):
        return {}
    return {str(loc.get("id")): str(loc.get("name", loc.get("id"))) for loc in data if isinstance(loc, dict)}


@routes.get("/staff/")
async def start_page(request: web.Request) -> web.Response:
    identity = request[IDENTITY]
    names = await location_names(request)
    everywhere = {
        role: identity.locations_with(role) is None and identity.has(role)
        for role in (Role.ADMIN, Role.LOCATION_ADMIN, Role.GROUP_LEADER, Role.APPOINTMENT_MANAGER)
    }
    # The locations this person works at, with the highest role there.
    mine: list[dict[str, Any]] = []
    ids = (
        sorted(names)
        if everywhere[Role.APPOINTMENT_MANAGER]
        else sorted(identity.locations_with(Role.APPOINTMENT_MANAGER) or set())
    )
    for location in ids:
        role = (
            next(
                r
                for r in (Role.LOCATION_ADMIN, Role.GROUP_LEADER, Role.APPOINTMENT_MANAGER)
                if identity.has(r, location)
            )
            if identity.has(Role.APPOINTMENT_MANAGER, location)
            else None
        )
        if role is None:
            continue
        mine.append({"id": location, "name": names.get(location, location), "role": str(role)})
    return render(
        request,
        "start.html",
        {
            "title": "Start",
            "locations": mine,
            "is_admin": everywhere[Role.ADMIN],
            "is_statistics": identity.has(Role.STATISTICS),
            "today": request.app[CLOCK].now().astimezone(BERLIN).date().isoformat(),
            "is_audit": identity.has(Role.AUDIT) and identity.locations_with(Role.AUDIT) is None,
            "grants": [
                {
                    "role": str(g.role),
                    "locations": ", ".join(names.get(x, x) for x in g.locations),
                    "groups": g.groups,
                }
                for g in identity.grants
            ],
            "notice": _notice(request),
        },
    )


NOTICES = {
    "password_changed": "Ihr Passwort ist geändert.",
    "saved": "Gespeichert.",
    "revoked": "Der API-Schlüssel ist gesperrt.",
    "limit_saved": "Das Anfragelimit des API-Schlüssels ist gespeichert; es gilt ab der nächsten Anfrage.",
    "disabled": "Das Konto ist deaktiviert.",
    "enabled": "Das Konto ist wieder aktiv.",
    # A form sent to an account's old address, with the username (see `_account_ref`).
    "not_done": "Nicht ausgeführt: Die Seite war veraltet. Das Konto ist hier so zu sehen, wie es jetzt ist; "
    "bitte wählen Sie noch einmal.",
    # An old link to the audit log with a name under "Wer" that is no account (see `audit_page`).
    "no_account": "Zu dem Namen im Link gibt es kein Konto: Die Einträge sind nicht nach „Wer“ gefiltert.",
}


def _notice(request: web.Request) -> str:
    return NOTICES.get(request.query.get("notice", ""), "")


# --- one's own password -----------------------------------------------------------------------------
@routes.get("/staff/password")
async def password_page(request: web.Request) -> web.Response:
    session = request.get(SESSION)
    return render(
        request,
        "password.html",
        {
            "title": "Passwort ändern",
            "errors": [],
            "must_change": bool(session and session.must_change_password),
        },
    )


@routes.post("/staff/password")
async def password_submit(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is None:
        raise web.HTTPSeeOther("/staff/login")
    form = await request.post()
    current = str(form.get("current_password", ""))
    new = str(form.get("new_password", ""))
    repeat = str(form.get("new_password_repeat", ""))
    errors: list[str] = []
    status = 422
    if new != repeat:
        errors.append("Die beiden neuen Passwörter stimmen nicht überein.")
    else:
        try:
            await service.change_password(request.app[STAFF], session, current, new, actor(request))
        except ValidationError as exc:
            errors = [_password_error(exc)]
        except PasswordChecksBusy:
            errors, status = [BUSY_DE], 503
        except PasswordGuessStopped as exc:
            # Locked by earlier failed sign-ins (here or elsewhere), no wrong password was typed here.
            ended = _login_form(
                request,
                errors=[
                    "Das aktuelle Passwort war zu oft falsch. Sie wurden abgemeldet, und die Anmeldung "
                    "ist von hier aus für einige Minuten gesperrt."
                    if exc.guessed_here
                    else "Das Konto ist nach mehreren fehlgeschlagenen Anmeldungen vorübergehend gesperrt, "
                    "das Passwort wurde deshalb nicht geändert. Sie wurden abgemeldet. Bitte versuchen Sie "
                    "es später noch einmal."
                ],
                username="",
                status=401,
            )
            clear_session_cookie(request, ended)
            return ended
    if errors:
        return render(
            request,
            "password.html",
            {"title": "Passwort ändern", "errors": errors, "must_change": session.must_change_password},
            status=status,
        )
    raise redirect("/staff/?notice=password_changed")


def _password_error(exc: ValidationError) -> str:
    field = exc.details[0].get("field") if exc.details else ""
    if field == "current_password":
        return "Das aktuelle Passwort stimmt nicht."
    return (
        "Das neue Passwort muss mindestens 12 Zeichen haben, darf den Benutzernamen nicht enthalten, "
        "muss sich vom bisherigen unterscheiden und darf nicht zu einfach sein."
    )


# --- accounts and roles (administrators) ------------------------------------------------------------
def _role_choices() -> list[tuple[str, str]]:
    return [(str(r), ROLE_LABELS_DE[r]) for r in GRANTABLE_ROLES]


def _chosen_location(role: str, location: str) -> str:
    """The location a role is granted for, as the administrator chose it (R28: a forgotten choice must
    not mean every location); only the central roles hold for all locations without one."""
    try:
        central = Role(role) in CENTRAL_ROLES
    except ValueError:
        central = False  # `check_grant` names the role
    if location or central or not role:
        return location or ALL_LOCATIONS
    raise ValidationError(
        "Choose a location for this role.", details=[{"field": "location", "message": "choose a location"}]
    )


ACCOUNTS_PAGE = "/staff/admin/accounts"


@routes.get(ACCOUNTS_PAGE)
async def accounts_page(request: web.Request) -> web.Response:
    return await _accounts(request, errors=[], created=None)


async def _accounts(
    request: web.Request,
    *,
    errors: list[ErrorLine],
    created: dict[str, Any] | None,
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    accounts = await service.list_accounts(request.app[STAFF])
    return render(
        request,
        "accounts.html",
        {
            "title": "Konten und Rollen",
            "accounts": accounts,
            "errors": errors,
            "created": created,
            "roles": _role_choices(),
            "locations": await location_names(request),
            "notice": _notice(request),
            "failed": failed,
        },
        status=status,
    )


ACCOUNT_FIELDS = ("username", "display_name", "role", "location")


@routes.post(ACCOUNTS_PAGE)
async def accounts_create(request: web.Request) -> web.Response:
    form = await request.post()
    username = str(form.get("username", ""))
    role = str(form.get("role", ""))
    try:
        location = _chosen_location(role, str(form.get("location", "")))
        grants = service.parse_grants([{"role": role, "location": location}]) if role else []
        view, password = await service.create_account(
            request.app[STAFF],
            actor(request),
            username=username,
            display_name=str(form.get("display_name", "")),
            grants=grants,
        )
    except OTVError as exc:
        lines, failed = form_refused("account", exc, form, ACCOUNT_FIELDS)
        return await _accounts(request, errors=lines, created=None, status=exc.status, failed=failed)
    return await _accounts(
        request,
        errors=[],
        created={"username": view.username, "start_password": password, "page": account_address(view.id)},
    )


def account_address(account_id: uuid.UUID | str, notice: str = "") -> str:
    """An account's page: by its opaque id, never its username (R34: the username names the employee,
    and an address stays in the browser's history, access logs and Referer headers)."""
    return f"{ACCOUNTS_PAGE}/{account_id}" + (f"?notice={notice}" if notice else "")


async def _account_ref(request: web.Request) -> str:
    """The account id of an account page's address. An old address with the username (a bookmark, a tab
    opened before the pages used ids) is answered with a redirect to the page by id (404 for a name that
    is no account). A form sent to an old address is not carried out: it comes from a page shown before
    the change, and redirecting it with its body (307) would keep a second way to write by username;
    the 303 shows the account as it is now, and the notice says that nothing was done."""
    ref = request.match_info["account_id"]
    if is_account_id(ref):
        return ref
    account_id = await service.account_id_of(request.app[STAFF], ref)
    raise redirect(account_address(account_id, "" if request.method in ("GET", "HEAD") else "not_done"))


@routes.get(ACCOUNTS_PAGE + "/{account_id}")
async def account_page(request: web.Request) -> web.Response:
    return await _account(request, await _account_ref(request), errors=[], secret=None)


async def _account(
    request: web.Request,
    ref: str,
    *,
    errors: list[ErrorLine] | list[str],
    secret: str | None,
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    view = await service.get_account(request.app[STAFF], ref)
    return render(
        request,
        "account.html",
        {
            "title": f"Konto {view.username}",
            "account": view,
            "account_page": account_address(view.id),
            "errors": errors,
            "secret": secret,
            "roles": _role_choices(),
            "locations": await location_names(request),
            "notice": _notice(request),
            "failed": failed,
        },
        status=status,
    )


def _grant_rows(view: service.AccountView) -> list[dict[str, Any]]:
    return [service.grant_json(g) for g in view.grants]


@routes.post(ACCOUNTS_PAGE + "/{account_id}/grants")
async def account_grant_add(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    ref = await _account_ref(request)
    form = await request.post()
    groups = [g.strip() for g in str(form.get("groups", "")).split(",") if g.strip()]
    role = str(form.get("role", ""))
    try:
        view = await service.get_account(staff, ref)
        location = _chosen_location(role, str(form.get("location", "")))
        grants = service.parse_grants(
            [*_grant_rows(view), {"role": role, "location": location, "groups": groups}]
        )
        await service.replace_account_grants(staff, actor(request), ref, grants)
    except OTVError as exc:
        if exc.status == 404:
            raise
        lines, failed = form_refused("grant", exc, form, ("role", "location", "groups"))
        return await _account(request, ref, errors=lines, secret=None, status=exc.status, failed=failed)
    raise redirect(account_address(view.id, "saved"))


@routes.post(ACCOUNTS_PAGE + "/{account_id}/grants/remove")
async def account_grant_remove(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    ref = await _account_ref(request)
    form = await request.post()
    role, location = str(form.get("role", "")), str(form.get("location", ""))
    try:
        view = await service.get_account(staff, ref)
        keep = [g for g in _grant_rows(view) if not (g["role"] == role and g["location"] == location)]
        await service.replace_account_grants(staff, actor(request), ref, service.parse_grants(keep))
    except OTVError as exc:
        if exc.status == 404:
            raise
        return await _account(request, ref, errors=error_messages(exc), secret=None, status=exc.status)
    raise redirect(account_address(view.id, "saved"))


@routes.post(ACCOUNTS_PAGE + "/{account_id}/active")
async def account_active(request: web.Request) -> web.Response:
    ref = await _account_ref(request)
    form = await request.post()
    active = form.get("active") == "true"
    if not active and not confirmed(form):
        view = await service.get_account(request.app[STAFF], ref)
        return ask_first(
            request,
            title="Konto deaktivieren?",
            question=f"Das Konto {view.username} ({view.display_name or view.username}) deaktivieren?",
            consequence="Die Person wird sofort abgemeldet und kann sich nicht mehr anmelden, bis das Konto "
            "wieder aktiviert wird.",
            button=f"Konto {view.username} deaktivieren",
            back=account_address(view.id),
            fields=[("active", "false")],
        )
    try:
        view = await service.set_account_active(request.app[STAFF], actor(request), ref, active)
    except OTVError as exc:
        if exc.status == 404:
            raise
        return await _account(request, ref, errors=error_messages(exc), secret=None, status=exc.status)
    raise redirect(account_address(view.id, "enabled" if active else "disabled"))


@routes.post(ACCOUNTS_PAGE + "/{account_id}/reset-password")
async def account_reset(request: web.Request) -> web.Response:
    ref = await _account_ref(request)
    if not confirmed(await request.post()):
        view = await service.get_account(request.app[STAFF], ref)
        return ask_first(
            request,
            title="Neues Startpasswort vergeben?",
            question=f"Für das Konto {view.username} ({view.display_name or view.username}) ein neues "
            "Startpasswort vergeben?",
            consequence="Das bisherige Passwort gilt sofort nicht mehr, und die Person wird abgemeldet. "
            "Das neue Startpasswort wird nur einmal angezeigt und muss bei der nächsten Anmeldung geändert "
            "werden.",
            button=f"Neues Startpasswort für {view.username} vergeben",
            back=account_address(view.id),
        )
    password = await service.reset_password(request.app[STAFF], actor(request), ref)
    return await _account(request, ref, errors=[], secret=password)


# --- API keys (administrators) ----------------------------------------------------------------------
class KeyLimitForm(pydantic.BaseModel):
    """A key's own request limit as the form sends it (R50): a whole number within the bounds, or empty for
    the default of the settings."""

    model_config = pydantic.ConfigDict(extra="ignore")

    requests_per_minute: (
        Annotated[int, pydantic.Field(ge=KEY_REQUESTS_PER_MINUTE_MIN, le=KEY_REQUESTS_PER_MINUTE_MAX)] | None
    ) = None

    @pydantic.field_validator("requests_per_minute", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def _key_limit(form: Any) -> int | None:
    """The form's limit, or 422 `validation_error` naming `requests_per_minute`."""
    try:
        parsed = KeyLimitForm.model_validate({"requests_per_minute": form.get("requests_per_minute", "")})
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
    return parsed.requests_per_minute


@routes.get("/staff/admin/api-keys")
async def keys_page(request: web.Request) -> web.Response:
    return await _keys(request, errors=[], created=None)


async def _keys(
    request: web.Request,
    *,
    errors: list[ErrorLine],
    created: dict[str, str] | None,
    status: int = 200,
    failed: dict[str, Any] | None = None,
) -> web.Response:
    staff = request.app[STAFF]
    return render(
        request,
        "api_keys.html",
        {
            "title": "API-Schlüssel",
            "keys": [service.key_json(k, staff.key_allowance) for k in await service.list_api_keys(staff)],
            "default_limit": staff.key_allowance,
            "limit_max": KEY_REQUESTS_PER_MINUTE_MAX,
            "operations": OPERATIONS,
            "locations": await location_names(request),
            "errors": errors,
            "created": created,
            "notice": _notice(request),
            "failed": failed,
        },
        status=status,
    )


@routes.post("/staff/admin/api-keys")
async def keys_create(request: web.Request) -> web.Response:
    form = await request.post()
    locations = [str(v) for v in form.getall("locations", [])]
    operations = [str(v) for v in form.getall("operations", [])]
    try:
        created = await service.create_api_key(
            request.app[STAFF],
            actor(request),
            name=str(form.get("name", "")),
            locations=locations,
            operations=operations,
            requests_per_minute=_key_limit(form),
        )
    except OTVError as exc:
        fields = ("name", "locations", "operations", "requests_per_minute")
        lines, failed = form_refused("key", exc, form, fields)
        return await _keys(request, errors=lines, created=None, status=exc.status, failed=failed)
    return await _keys(request, errors=[], created={"name": str(form.get("name", "")), "key": created.plain})


@routes.post("/staff/admin/api-keys/{key_id}/request-limit")
async def keys_limit(request: web.Request) -> web.Response:
    form = await request.post()
    key_id = request.match_info["key_id"]
    try:
        await service.set_api_key_limit(request.app[STAFF], actor(request), key_id, _key_limit(form))
    except OTVError as exc:
        if exc.status == 404:
            raise
        lines, failed = form_refused(f"limit-{key_id}", exc, form, ("requests_per_minute",))
        keys = await service.list_api_keys(request.app[STAFF])
        name = next((k.name for k in keys if str(k.id) == key_id), "")
        lines = [ErrorLine(f"Schlüssel „{name}“: {line.text}", line.target) for line in lines]
        return await _keys(request, errors=lines, created=None, status=exc.status, failed=failed)
    raise redirect(f"/staff/admin/api-keys?notice=limit_saved#apikey-{key_id}")


@routes.post("/staff/admin/api-keys/{key_id}/revoke")
async def keys_revoke(request: web.Request) -> web.Response:
    if not confirmed(await request.post()):
        keys = await service.list_api_keys(request.app[STAFF])
        key = next((k for k in keys if str(k.id) == request.match_info["key_id"]), None)
        if key is None:
            raise NotFoundError("No such API key.")
        return ask_first(
            request,
            title="API-Schlüssel sperren?",
            question=f"Den API-Schlüssel „{key.name}“ (otv_{key.prefix}_…) sperren?",
            consequence="Das System, das ihn verwendet, wird danach bei jeder Anfrage abgewiesen. Das kann "
            "nicht rückgängig gemacht werden: Es braucht dann einen neuen Schlüssel.",
            button=f"Schlüssel „{key.name}“ endgültig sperren",
            back="/staff/admin/api-keys",
        )
    await service.revoke_api_key(request.app[STAFF], actor(request), request.match_info["key_id"])
    raise redirect("/staff/admin/api-keys?notice=revoked")


# --- the audit log (audit review, administrators) ---------------------------------------------------
AUDIT_PAGE = "/staff/admin/audit-log"


@routes.get(AUDIT_PAGE)
async def audit_page(request: web.Request) -> web.Response:
    """The audit log with its filters. "Wer" is chosen by name from a list, and its value in the address is
    the account's opaque id (`who`): a username names the staff member, and the filter's address stays in
    the browser's history, access logs and proxies (R34). An old link with a username under `actor` is
    answered with a redirect to the same filter by id; the page itself never uses `actor`."""
    staff = request.app[STAFF]
    raw = {k: v for k, v in request.query.items() if v and k != "notice"}
    if "actor" in raw:
        raise redirect(await _audit_address_by_id(request, raw))
    actors = await service.audit_actors(staff)
    context: dict[str, Any] = {
        "title": "Audit-Log",
        "entries": [],
        "q": raw,
        "actors": actors,
        # An entry about a staff account names it by its id (R34); the reviewer reads its username beside.
        "account_names": {a.who: a.detail for a in actors.accounts},
        "address_days": staff.address_retention.days,
        "notice": _notice(request),
    }
    try:
        query = AuditQuery.model_validate(raw)
        chosen = await service.audit_filter_by_who(staff, query.filter(), query.who)
    except pydantic.ValidationError as exc:
        return render(
            request, "audit.html", {**context, "errors": error_messages(validation_error(exc))}, status=422
        )
    except ValidationError as exc:
        return render(request, "audit.html", {**context, "errors": error_messages(exc)}, status=422)
    first, last = _day_of(query.from_), _day_of(query.to)
    if first is not None and last is not None and first > last:
        # Otherwise an empty list, as if nothing had happened in the period.
        errors = ["Bis (Datum, einschließlich): darf nicht vor „Von (Datum)“ liegen"]
        return render(request, "audit.html", {**context, "errors": errors}, status=422)
    entries = [audit_json(e) for e in await service.search_audit(staff, chosen)]
    next_before = entries[-1]["id"] if len(entries) == query.limit else None
    next_query = {**raw, "before": str(next_before)} if next_before else None
    return render(
        request, "audit.html", {**context, "entries": entries, "errors": [], "next_query": next_query}
    )


def _day_of(value: datetime | date | None) -> date | None:
    return value.astimezone(BERLIN).date() if isinstance(value, datetime) else value


async def _audit_address_by_id(request: web.Request, raw: dict[str, str]) -> str:
    """The audit page's address for an old link's query: `actor` (a username, as the log names it) becomes
    `who` (the account's id); a name that is no account is dropped, and the page says so."""
    query = {k: v for k, v in raw.items() if k not in ("actor", "who")}
    who = await service.audit_who(request.app[STAFF], raw["actor"])
    if who is None:
        query["notice"] = "no_account"
    else:
        query["who"] = who
    return f"{AUDIT_PAGE}?{urlencode(query)}"


# --- mail and page texts (R10, administrators; kept by the notifier) --------------------------------
@routes.get("/staff/admin/texts")
async def texts_page(request: web.Request) -> web.Response:
    status, data = await upstream.call(request, "notifier", "GET", "/api/v1/admin/mail-templates")
    if status != 200 or not isinstance(data, list):
        raise _upstream_error(status, data)
    return render(
        request,
        "texts.html",
        {
            "title": "Texte der E-Mails",
            "texts": data,
            "notice": _notice(request),
            "kinds": MAIL_KINDS_DE,
            "without_texts": _without_mail_texts(request, data),
        },
    )


def _without_mail_texts(request: web.Request, texts: list[Any]) -> list[tuple[str, str]]:
    """The languages customers book in (R43: those the customer pages offer) that have no mail texts of
    their own, each with the language their mails come in instead (along the tag, else German)."""
    mail_languages = request.app[MAIL_LANGUAGES].learn(texts)
    return [
        (language_de(tag), language_de(pick(tag, mail_languages)))
        for tag in offered_languages(request.app)
        if tag not in mail_languages
    ]


class UpstreamError(OTVError):
    """A service's error answer, passed on to the page with its status and code."""

    def __init__(self, status: int, data: Any) -> None:
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        details = error.get("details")
        super().__init__(
            str(error.get("message") or "The service refused the change."),
            details=details if isinstance(details, list) else None,
        )
        self.status = status if 400 <= status < 500 else 502  # type: ignore[misc]  # per instance
        self.code = str(error.get("code") or "error")  # type: ignore[misc]  # the upstream's code


def _upstream_error(status: int, data: Any) -> OTVError:
    return UpstreamError(status, data)


def _text_path(request: web.Request) -> str:
    return upstream.api_path("/api/v1/admin/mail-templates/{kind}/{language}", request.match_info)


def _text_label(kind: Any, language: Any) -> str:
    return f"{MAIL_KINDS_DE.get(str(kind), kind)} ({language_de(str(language))})"


@routes.get("/staff/admin/texts/{kind}/{language}")
async def text_page(request: web.Request) -> web.Response:
    status, data = await upstream.call(request, "notifier", "GET", _text_path(request))
    if status != 200 or not isinstance(data, dict):
        raise _upstream_error(status, data)
    return render(
        request,
        "text_edit.html",
        {
            "title": f"Text bearbeiten: {_text_label(data.get('kind'), data.get('language'))}",
            "text": data,
            "errors": [],
        },
    )


@routes.post("/staff/admin/texts/{kind}/{language}")
async def text_submit(request: web.Request) -> web.Response:
    form = await request.post()
    body = {k: str(form.get(k, "")) for k in ("subject", "text", "html")}
    path = _text_path(request)
    if form.get("action") == "preview":
        return await _text_preview(request, form, body)
    if form.get("reset") == "true" and not confirmed(form):
        label = _text_label(request.match_info["kind"], request.match_info["language"])
        return ask_first(
            request,
            title="Auf den Standardtext zurücksetzen?",
            question=f"Den Text „{label}“ auf den Standardtext zurücksetzen?",
            consequence="Der hier geänderte Betreff und Text gehen verloren; die E-Mails verwenden danach "
            "wieder den Standardtext.",
            button="Auf den Standardtext zurücksetzen",
            back=f"/staff/admin/texts/{request.match_info['kind']}/{request.match_info['language']}",
            fields=[("reset", "true"), *with_version({}, form).items()],
        )
    if form.get("reset") == "true":
        # A DELETE has no body: the version the page was loaded with goes as a query parameter.
        status, data = await upstream.call(request, "notifier", "DELETE", path, params=with_version({}, form))
        action = "reset"
    else:
        status, data = await upstream.call(request, "notifier", "PUT", path, json=with_version(body, form))
        action = "update"
    if 200 <= status < 300:
        await service.record(
            request.app[STAFF],
            actor(request),
            action=action,
            entity="mail_template",
            entity_id=f"{request.match_info['kind']}/{request.match_info['language']}",
            status=status,
            method="DELETE" if action == "reset" else "PUT",
            route="/api/v1/admin/mail-templates/{kind}/{language}",
            changes={"fields": [] if action == "reset" else sorted(body)},
        )
        raise redirect("/staff/admin/texts?notice=saved")
    error = _upstream_error(status, data)
    label = _text_label(request.match_info["kind"], request.match_info["language"])
    if error.code == "stale" and await _saved_already(request, path, body):
        # The same form sent twice (a double click, a reload of the answer): the first saved it.
        raise redirect("/staff/admin/texts?notice=saved")
    if error.code == "stale":
        # Saved by someone else since the form was loaded: the text as it is now, to check and edit.
        current_status, current = await upstream.call(request, "notifier", "GET", path)
        entity_id = f"{request.match_info['kind']}/{request.match_info['language']}"
        changed = await service.last_change(request.app[STAFF], "mail_template", entity_id, None)
        if current_status == 200 and isinstance(current, dict):
            return render(
                request,
                "text_edit.html",
                {
                    "title": f"Text bearbeiten: {_text_label(current.get('kind'), current.get('language'))}",
                    "text": current,
                    "errors": [stale_text(request, changed)],
                },
                status=409,
            )
    return render(
        request,
        "text_edit.html",
        {
            "title": f"Text bearbeiten: {label}",
            "text": {
                **body,
                "kind": request.match_info["kind"],
                "language": request.match_info["language"],
                "version": str(form.get(VERSION_FIELD, "")),
            },
            **_text_errors(error),
        },
        status=status if status < 500 else 502,
    )


async def _text_preview(request: web.Request, form: Any, body: dict[str, str]) -> web.Response:
    """The form as typed, and the mail it makes of a sample appointment (the notifier renders it and
    checks it as a save would); nothing is saved."""
    status, data = await upstream.call(
        request, "notifier", "POST", _text_path(request) + "/preview", json=body
    )
    label = _text_label(request.match_info["kind"], request.match_info["language"])
    context: dict[str, Any] = {
        "title": f"Text bearbeiten: {label}",
        "text": {
            **body,
            "kind": request.match_info["kind"],
            "language": request.match_info["language"],
            "version": str(form.get(VERSION_FIELD, "")),
        },
    }
    if status == 200 and isinstance(data, dict):
        return render(request, "text_edit.html", {**context, "preview": data, "errors": []})
    error = _upstream_error(status, data)
    return render(request, "text_edit.html", {**context, **_text_errors(error)}, status=error.status)


# The mail text form's fields by their visible labels; their ids are the field names.
TEXT_LABELS_DE = {"subject": "Betreff", "text": "Text (reine Textfassung)", "html": "HTML-Fassung"}


def _text_errors(error: OTVError) -> dict[str, Any]:
    """A refused mail text's summary, each line linked to the field it names, and each field's message
    (to mark the field and describe it, as the other forms do; WCAG 3.3.1)."""
    lines: list[ErrorLine] = []
    fields: dict[str, str] = {}
    for path, line in error_details(error, TEXT_LABELS_DE):
        field = path if path in TEXT_LABELS_DE else ""
        if field:
            fields.setdefault(field, line)
        lines.append(ErrorLine(line, field))
    return {"errors": lines or [ErrorLine(line) for line in error_messages(error)], "field_errors": fields}


async def _saved_already(request: web.Request, path: str, body: dict[str, str]) -> bool:
    """Whether the mail text is now what the refused form says (its first sending saved it)."""
    status, current = await upstream.call(request, "notifier", "GET", path)
    if status != 200 or not isinstance(current, dict):
        return False
    return all(current.get(k) == v for k, v in body.items())


# --- a location's staff (location administrators, R30) ----------------------------------------------
@routes.get("/staff/locations/{location_id}/staff-roles")
async def location_staff_page(request: web.Request) -> web.Response:
    return await _location_staff(request, errors=[])


async def _location_staff(
    request: web.Request, *, errors: list[ErrorLine], status: int = 200, failed: dict[str, Any] | None = None
) -> web.Response:
    location = request.match_info["location_id"]
    rows = await service.staff_at_location(request.app[STAFF], location)
    names = await location_names(request)
    return render(
        request,
        "location_staff.html",
        {
            "title": f"Personal \N{EN DASH} {names.get(location, location)}",
            "location": {"id": location, "name": names.get(location, location)},
            "rows": [{"username": u, **service.grant_json(g)} for u, _, g in rows],
            "roles": [(str(r), ROLE_LABELS_DE[r]) for r in LOCATION_DELEGABLE_ROLES],
            "errors": errors,
            "notice": _notice(request),
            "failed": failed,
        },
        status=status,
    )


@routes.post("/staff/locations/{location_id}/staff-roles")
async def location_staff_submit(request: web.Request) -> web.Response:
    location = request.match_info["location_id"]
    form = await request.post()
    roles = [str(v) for v in form.getall("roles", [])]
    groups = [g.strip() for g in str(form.get("groups", "")).split(",") if g.strip()]
    try:
        await service.set_location_roles(
            request.app[STAFF], actor(request), location, str(form.get("username", "")), roles, groups
        )
    except OTVError as exc:
        lines, failed = form_refused("staff", exc, form, ("username", "roles", "groups"))
        return await _location_staff(request, errors=lines, status=exc.status, failed=failed)
    raise redirect(f"/staff/locations/{location}/staff-roles?notice=saved")


@routes.get("/staff/static/{name}")
async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in {"staff.css", "staff.js"}:
        raise web.HTTPNotFound
    response = web.FileResponse(HERE / "static" / name)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
