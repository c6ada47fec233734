"""The staff pages' main navigation, one list for one identity, the same on the gateway's pages and on
reporting's (which the gateway forwards under /staff/), and the header by which the gateway hands a
forwarded page the session's form token, so that its header offers the logout like every staff page."""

from __future__ import annotations

from shared.identity import Role, StaffIdentity

FORM_TOKEN_HEADER = "X-OTV-Staff-Form-Token"  # noqa: S105 -- a header name, not a secret
FORM_TOKEN_FIELD = "csrf_token"  # noqa: S105 -- a form field name, not a secret


def main_nav(identity: StaffIdentity | None) -> list[tuple[str, str]]:
    """(path, label) of the pages the member may open; the administrators' pages need every location.

    Each label is the name of its page: its <title> and <h1> contain the label word for word (WCAG 2.4.2,
    3.2.4; tests/staff/test_staff_page_names.py walks the links)."""
    if identity is None:
        return []
    items = [("/staff/", "Start")]
    if identity.has(Role.APPOINTMENT_MANAGER):  # and every role that includes it, at some location
        items += [("/staff/work", "Terminarbeit"), ("/staff/search", "Termin suchen")]
    if identity.locations_with(Role.ADMIN) is None and identity.has(Role.ADMIN):
        items += [
            ("/staff/admin/locations", "Standorte"),
            ("/staff/admin/concerns", "Leistungskatalog"),
            ("/staff/admin/texts", "Texte der E-Mails"),
            ("/staff/admin/accounts", "Konten und Rollen"),
            ("/staff/admin/api-keys", "API-Schlüssel"),
            ("/staff/admin/dead-letters", "Nicht zustellbare Nachrichten"),
        ]
    if identity.has(Role.AUDIT) and identity.locations_with(Role.AUDIT) is None:
        items.append(("/staff/admin/audit-log", "Audit-Log"))
    if identity.has(Role.STATISTICS):
        items.append(("/staff/statistics", "Statistik"))
    items.append(("/staff/password", "Passwort ändern"))
    return items
