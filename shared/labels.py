"""German labels of the staff side (staff pages, Excel day lists, statistics), in one place so that a staff
member reads the same word on the day list page and in the Excel list; the wording follows the directive
(`../shared/seed/`: "persönlich oder telefonisch", "Anliegens-Klärung", "M&I-Bereich", "Rückruf-Ticket").
The customer pages have their own texts in the message catalogues."""

from __future__ import annotations

OUTCOMES_DE = {
    "resolved": "Anliegen geklärt",
    "placement": "An M&I übergeben",
    "callback": "Rückruf-Ticket an das zuständige Team",
    "no_show": "Nicht erschienen",
}
MODES_DE = {"in_person": "persönlich", "phone": "telefonisch"}
LANGUAGES_DE = {"de": "Deutsch", "de-x-ls": "Leichte Sprache", "en": "Englisch"}  # of the customer pages
CHANNELS_DE = {"online": "online", "staff": "Mitarbeitende", "service_centre": "Service-Center"}
