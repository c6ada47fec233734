"""The forms of a location page (and of the central administration) after they were sent (WCAG 3.3.1,
3.3.3, 4.1.3).

A refused form comes back as it was filled in, in its own place (a window's or a group's row form among
several), with an error summary whose lines name the fields by their visible labels and link to them,
and each named field marked (`aria-invalid`, its message in `aria-describedby`). A saved form's
confirmation stands at the section or row the page jumps to, not only at the top.

Every form has a key ("closure", "window-17", ...); its inputs' ids are `<key>-<field name>`, so that a
line of the summary finds the field the service named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.gateway.staff.authz import CSRF_FIELD
from services.gateway.staff.pages import ErrorLine, error_details
from shared.errors import OTVError

# The fields a form sends once per ticked box; every other field is sent once.
MULTIPLE = frozenset({"modes", "locations", "operations", "roles", "group_kinds"})
# Not what the user typed: the form's token and the confirmation of affected appointments (R20).
NOT_TYPED = frozenset({CSRF_FIELD, "confirm_affected"})
SAVED_DE = "Gespeichert."
# The visible labels of a form's fields where they differ from the staff pages' usual ones, by the
# form's key or the start of it (`window-17`); the summary names a field as the form shows it.
FORM_LABELS_DE: dict[str, dict[str, str]] = {
    "approval": {"valid_from": "Gültig von", "note": "Notiz (intern)"},
    "group": {"name": "Name der Gruppe", "active": "Aktiv", "service_points": "Serviceplätze der Gruppe"},
    "window": {"weekday": "Tag", "evening": "Abend (nur Berufstätige)"},
    "closure": {"group_id": "Für", "reason": "Grund (intern)"},
    "offer": {
        "concern_id": "Anliegen aus dem zentralen Katalog",
        "duration_minutes": "Dauer in Minuten",
        "modes": "Form des Termins",
    },
}
# The sections of the page a change may jump back to (`#anchor`); rows are added per location.
SECTIONS = ("policy", "groups", "closures")
ADMIN_SECTIONS = ("concerns", "lead-time", "block", "details")


def typed(form: Any) -> dict[str, str | list[str]]:
    """What was typed into a form, to show it again in the same form."""
    return {
        str(k): [str(v) for v in form.getall(k)] if k in MULTIPLE else str(form.get(k))
        for k in dict.fromkeys(form.keys())
        if k not in NOT_TYPED
    }


def refused(
    key: str, exc: OTVError, values: dict[str, str | list[str]], sent: Iterable[str]
) -> tuple[list[ErrorLine], dict[str, Any]]:
    """The summary's lines of a refused form, and what the page needs to show the form again: the key,
    what was typed, and a message per field the service named (a nested path such as `name.de` or
    `modes.0` belongs to the form's field `name` or `modes`). `sent` names the fields of the request
    body, which include the boxes left unticked."""
    names = set(values) | set(sent)
    lines: list[ErrorLine] = []
    by_field: dict[str, str] = {}
    for path, line in error_details(exc, _labels(key)):
        field = next((part for part in reversed(path.split(".")) if part in names), "")
        if field:
            by_field.setdefault(field, line)
        lines.append(ErrorLine(line, f"{key}-{field}" if field else ""))
    return lines, {"key": key, "typed": values, "fields": by_field}


def as_typed(exc: OTVError, taken_from: Mapping[str, str]) -> OTVError:
    """The refusal with each field that was left empty, and sent with another field's value, named as that
    field (a closure's empty "Letzter Tag" is its "Erster Tag"): the user reads the message at the date
    they typed, not at an empty field."""
    exc.details = [
        {**detail, "field": ".".join(taken_from.get(part, part) for part in str(detail["field"]).split("."))}
        if isinstance(detail, dict) and detail.get("field")
        else detail
        for detail in exc.details
    ]
    return exc


def _labels(key: str) -> dict[str, str]:
    return next((v for k, v in FORM_LABELS_DE.items() if key == k or key.startswith(f"{k}-")), {})


def name_the_row(lines: list[ErrorLine], key: str, context: dict[str, Any]) -> list[ErrorLine]:
    """A form of one of several rows (a window, a group) puts the row's name before its lines
    ("Zeitfenster Dienstag 08:00: Bis: bitte eine Uhrzeit"), so that the reader knows which row it is."""
    label = _row_label(key, context)
    return [ErrorLine(f"{label}: {line.text}", line.target) for line in lines] if label else lines


def _row_label(key: str, context: dict[str, Any]) -> str:
    kind, _, row = key.partition("-")
    names: dict[str, str] = context["group_names"]
    if kind == "window":
        windows = [w for rows in context["windows_of"].values() for w in rows if str(w.get("id")) == row]
        weekdays: tuple[str, ...] = context["weekdays"]
        return f"Zeitfenster {weekdays[windows[0]['weekday']]} {windows[0]['start']}" if windows else ""
    if kind == "group":
        return f"Gruppe {names.get(row, row)}"
    if key.startswith("new-window-"):
        group = key.removeprefix("new-window-")
        return f"Neues Zeitfenster für {names.get(group, group)}"
    return ""


def saved_at(query: Any, context: dict[str, Any]) -> str:
    """The section or row a saved change jumped back to (`?saved=`), when the page shows it; ""
    otherwise (the page then confirms at the top)."""
    anchor = str(query.get("saved", ""))
    shown = {*SECTIONS, *(f"group-{g['id']}" for g in context["groups"])}
    if context["is_location_admin"]:
        shown.update(ADMIN_SECTIONS)
    editable = [g for g, may in context["may_edit_group"].items() if may]
    shown.update(f"window-{w['id']}" for g in editable for w in context["windows_of"][g])
    return anchor if anchor in shown else ""
