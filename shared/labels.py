"""German labels of the staff side (staff pages, Excel day lists, statistics), in one place so that a staff
member reads the same word on the day list page and in the Excel list; the wording follows the directive
(`../shared/seed/`: "persönlich oder telefonisch", "Anliegens-Klärung", "M&I-Bereich", "Rückruf-Ticket").
The customer pages have their own texts in the message catalogues."""

from __future__ import annotations

from collections.abc import Iterable

from babel import Locale, UnknownLocaleError

OUTCOMES_DE = {
    "resolved": "Anliegen geklärt",
    "placement": "An M&I übergeben",
    "callback": "Rückruf-Ticket an das zuständige Team",
    "no_show": "Nicht erschienen",
    "follow_up": "Folgetermin im zuständigen Team",
}
# What staff choose on the day list; "follow_up" is recorded by booking the follow-up from the file (R24).
OUTCOME_CHOICES_DE = {k: v for k, v in OUTCOMES_DE.items() if k != "follow_up"}
MODES_DE = {"in_person": "persönlich", "phone": "telefonisch"}
LANGUAGES_DE = {"de": "Deutsch", "de-x-ls": "Leichte Sprache", "en": "Englisch"}  # of the customer pages


def language_de(tag: str) -> str:
    """A customer's language in German: a built-in one by its label, a further one (R43: content of the
    pages, such as `tr`) by its German name ("Türkisch"), else the tag itself."""
    if tag in LANGUAGES_DE:
        return LANGUAGES_DE[tag]
    try:
        return str(Locale.parse(tag, sep="-").get_display_name("de") or tag)
    except (ValueError, UnknownLocaleError):
        return tag


def languages_de(tags: Iterable[str]) -> dict[str, str]:
    """The languages `tags`, in their order, by their German names (for a choice of languages)."""
    return {tag: language_de(tag) for tag in tags}


MAIL_KINDS_DE = {
    "confirmation": "Bestätigung",
    "reminder": "Erinnerung",
    "reschedule": "Terminverlegung",
    "cancellation": "Absage",
    "transferred": "Übernahme durch anderen Standort",
    "manage_link": "Neuer Link zum Termin",
    "waiting_opt_in": "Warteliste: Adresse bestätigen",
    "waiting_confirmed": "Warteliste: eingetragen",
    "waiting_offer": "Warteliste: Terminangebot",
    "waiting_offer_expired": "Warteliste: Angebot abgelaufen",
    "waiting_expired": "Warteliste: Eintrag abgelaufen",
    "waiting_withdrawn": "Warteliste: Eintrag zurückgezogen",
}
CHANNELS_DE = {"online": "online", "staff": "Mitarbeitende", "service_centre": "Service-Center"}
