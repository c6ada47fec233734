"""The teams a callback ticket of the day list can go to (R23, R24; directive 3.4): the entrance zone
hands what it cannot finish to the responsible team, so its outcome form offers the location's groups and
preselects that team where there is only one to choose (one benefits team). The groups come from the
catalog's public concern list (each with its group's id, kind and German name), and every appointment's
own group is offered too, also when the catalog does not answer."""

from __future__ import annotations

from typing import Any

ENTRANCE_KINDS = frozenset({"entrance_zone", "jba_entrance_zone"})
BENEFITS_KIND = "benefits_team"


def team_choices(concerns: list[dict[str, Any]], appointments: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The location's groups, `{id, name, kind}`, by name: those the catalog lists with their concerns,
    then the appointments' own groups it does not list (their kind unknown)."""
    teams: dict[str, dict[str, str]] = {}
    for concern in concerns:
        group = concern.get("group_id")
        if isinstance(group, str) and group not in teams:
            teams[group] = {
                "id": group,
                "name": str(concern.get("group_name") or group),
                "kind": str(concern.get("group") or ""),
            }
    for appointment in appointments:
        group = appointment.get("group")
        if isinstance(group, str) and group not in teams:
            teams[group] = {"id": group, "name": str(appointment.get("group_name") or group), "kind": ""}
    return sorted(teams.values(), key=lambda t: (t["name"], t["id"]))


def default_team(appointment: dict[str, Any], teams: list[dict[str, str]]) -> str:
    """The team preselected for the appointment's callback ticket: from the entrance zone the location's
    one benefits team (with several, which one is responsible is the staff member's choice, and the
    appointment's own group stays preselected); otherwise the appointment's own group."""
    own = str(appointment.get("group") or "")
    kinds = {t["id"]: t["kind"] for t in teams}
    if kinds.get(own) in ENTRANCE_KINDS:
        benefits = [t["id"] for t in teams if t["kind"] == BENEFITS_KIND]
        if len(benefits) == 1:
            return benefits[0]
    return own
