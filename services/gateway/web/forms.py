"""The contact form of the booking dialogue: checks with messages a person understands, tied to fields.

The booking service checks the same again (it is the authority); its 422 details are mapped back to the
form's fields by `field_of`, so that an error it finds is shown at the right field too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.gateway.web.i18n import _

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ()/.\-]{5,30}$")
_SEPARATORS = re.compile(r"[\s\-/.]+")
_CUSTOMER_NUMBER = re.compile(r"^[0-9]{3}[A-Z][0-9]{6}$")
_HOUSEHOLD_NUMBER = re.compile(r"^[0-9]{5}BG[0-9]{7}$")

CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "customer_number", "household_number")
MAX_LENGTH = {"first_name": 100, "last_name": 100, "email": 254, "phone": 30}


@dataclass
class FormErrors:
    """Field -> message, in the order of the form (the error summary lists them in that order)."""

    messages: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.messages or self.general)


def clean(values: dict[str, str]) -> dict[str, str]:
    return {name: " ".join(values.get(name, "").split()) for name in CONTACT_FIELDS}


def check_contact(values: dict[str, str], *, phone_required: bool) -> FormErrors:
    errors = FormErrors()
    for name, missing in (
        ("first_name", _("Enter your first name.")),
        ("last_name", _("Enter your last name.")),
    ):
        if not values[name]:
            errors.add(name, missing)
        elif len(values[name]) > MAX_LENGTH[name] or not any(ch.isalpha() for ch in values[name]):
            errors.add(name, generic_message(name))
    if not values["email"]:
        errors.add("email", _("Enter your e-mail address. We send the confirmation there."))
    elif not valid_email(values["email"]):
        errors.add("email", generic_message("email"))
    if not values["phone"]:
        if phone_required:
            errors.add("phone", _("Enter your phone number. We call you at this number."))
    elif not _PHONE.fullmatch(values["phone"]) or sum(ch.isdigit() for ch in values["phone"]) < 5:
        errors.add("phone", _("Enter the phone number with digits only, like 0421 123456."))
    customer = _SEPARATORS.sub("", values["customer_number"]).upper()
    household = _SEPARATORS.sub("", values["household_number"]).upper()
    if not customer and not household:
        errors.add(
            "customer_number",
            _("Enter your customer number or your household number (one of them is enough)."),
        )
    if customer and not _CUSTOMER_NUMBER.fullmatch(customer):
        errors.add("customer_number", _("A customer number looks like 123D456789."))
    if household and not _HOUSEHOLD_NUMBER.fullmatch(household):
        errors.add("household_number", _("A household number looks like 12345BG1234567."))
    return errors


def valid_email(address: str) -> bool:
    return len(address) <= MAX_LENGTH["email"] and bool(_EMAIL.fullmatch(address))


def check_email(address: str) -> FormErrors:
    """The one field of the form that asks for the manage link again."""
    errors = FormErrors()
    if not address:
        errors.add("email", _("Enter the e-mail address you booked with."))
    elif not valid_email(address):
        errors.add("email", generic_message("email"))
    return errors


def field_of(api_field: str) -> str | None:
    """`customer.email` (the booking API's name) -> `email` (the form's name)."""
    name = api_field.rsplit(".", 1)[-1]
    return name if name in CONTACT_FIELDS else None


def generic_message(name: str) -> str:
    return {
        # Each name its own sentence: the error summary lists both, and a listener must know which is meant.
        "first_name": _("Enter your first name in letters (at most 100 characters)."),
        "last_name": _("Enter your last name in letters (at most 100 characters)."),
        "email": _("Enter the e-mail address in the right form, like name@example.org."),
        "phone": _("Enter the phone number with digits only, like 0421 123456."),
        "customer_number": _("A customer number looks like 123D456789."),
        "household_number": _("A household number looks like 12345BG1234567."),
    }[name]
