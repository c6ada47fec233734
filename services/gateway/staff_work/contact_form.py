"""The contact-correction form of the appointment file against lost updates (R41).

The form carries what it showed (`orig_contact_<field>`) and the appointment's revision
(`contact_revision`). Only the fields staff changed are sent, so a colleague's correction of another
field stands; and booking refuses the change when the appointment changed since (409 `stale`), so that a
form loaded before a correction of the same field does not undo it unseen (nor send a new manage link to
the mistyped address). When only something else changed (a new link, the start has come), the fields the
form showed are still as they are stored, and the change goes on against the current revision.

A form without these hidden fields (a page rendered before them) sends every field it has, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.gateway.staff.pages import ErrorLine
from services.gateway.staff_work.common import text

# The form's fields: booking's names and the labels (the inputs' ids are `contact-<name>`).
CONTACT_FIELDS = {
    "first_name": "Vorname",
    "last_name": "Nachname",
    "email": "E-Mail-Adresse",
    "phone": "Telefonnummer",
}
CHANGED_MEANWHILE_DE = "inzwischen geändert \N{EN DASH} bitte prüfen"
STALE_DE = (
    f"Die Kontaktdaten wurden {CHANGED_MEANWHILE_DE}. Die Felder zeigen den jetzt gespeicherten Stand mit "
    "Ihren Änderungen; gespeichert ist davon noch nichts. Bitte danach erneut speichern."
)


@dataclass(frozen=True)
class ContactForm:
    """A sent contact form: what was typed, what the form had shown, and the revision it was shown at."""

    entered: dict[str, str]
    shown: dict[str, str]
    revision: int | None

    @classmethod
    def read(cls, form: Any) -> ContactForm:
        raw = str(form.get("contact_revision", "")).strip()
        return cls(
            entered={n: text(form, f"contact_{n}", 254) for n in CONTACT_FIELDS if f"contact_{n}" in form},
            shown={
                n: text(form, f"orig_contact_{n}", 254) for n in CONTACT_FIELDS if f"orig_contact_{n}" in form
            },
            revision=int(raw) if raw.isdigit() and len(raw) < 18 else None,
        )

    def changes(self) -> dict[str, str]:
        """The fields to send: those typed differently from what the form showed (every typed one when the
        form did not say what it showed). An empty name or address is not a change (booking keeps it); an
        emptied phone field removes the number."""
        return {
            name: value
            for name, value in self.entered.items()
            if (value or name == "phone") and self.shown.get(name) != value
        }

    def moved(self, current: dict[str, Any]) -> dict[str, str]:
        """The fields the form showed whose stored value is another now: {name: the stored value}."""
        customer = current.get("customer") if isinstance(current.get("customer"), dict) else {}
        now = {name: str((customer or {}).get(name) or "").strip() for name in CONTACT_FIELDS}
        return {name: now[name] for name, shown in self.shown.items() if now[name] != shown}

    def values(self) -> dict[str, str]:
        """The form after a refusal that was not `stale`: what was typed, and still what it had shown at
        its revision (a change made meanwhile must not slip in with the next save)."""
        values = {f"contact_{name}": value for name, value in self.entered.items()}
        values.update({f"orig_contact_{name}": value for name, value in self.shown.items()})
        if self.revision is not None:
            values["contact_revision"] = str(self.revision)
        return values

    def stale(self, current: dict[str, Any]) -> tuple[list[ErrorLine], dict[str, str], dict[str, str]]:
        """After a `stale` refusal: the summary's lines, a message per field that changed meanwhile, and the
        form's values: the stored data with what staff changed typed into them (the originals and the
        revision are the current ones, so that the next save is made against what the page shows)."""
        moved = self.moved(current)
        lines = [ErrorLine(STALE_DE)]
        by_field: dict[str, str] = {}
        for name, value in moved.items():
            label = CONTACT_FIELDS[name]
            lines.append(ErrorLine(f"{label}: {CHANGED_MEANWHILE_DE}", f"contact-{name}"))
            now = f"jetzt gespeichert ist „{value}“" if value else "jetzt ist keine gespeichert"
            mine = "; im Feld steht Ihre Eingabe" if name in self.changes() else ""
            by_field[f"contact-{name}"] = f"{label}: inzwischen geändert, {now}{mine}."
        return lines, by_field, {f"contact_{name}": value for name, value in self.changes().items()}
