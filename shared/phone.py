"""A configured phone number as a `tel:` link (RFC 3966), for the mails and the customer pages.

A link dials only when it names a global number: `tel:04215660` is a local number without the
`phone-context` RFC 3966 requires, which phones treat differently or refuse. The jobcenter's numbers
are German, so a national number (leading 0) becomes `+49` without the 0; an international one (`+…`,
`00…`) stays as it is (without a national 0 written in parentheses). The spaces, slashes, dashes, dots
and parentheses people write are left out of the URI; the number as configured stays the link's text.
A number that cannot be made global (a short number, one without an area code, letters) gets no link:
it is shown as text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_SEPARATORS = re.compile(r"[\s/\-.()]")
# E.164: at most 15 digits with the country code; fewer than 6 is no dialable number of a jobcenter.
_GLOBAL = re.compile(r"\+[1-9][0-9]{5,14}")
_COUNTRY = "+49"


def tel_uri(number: str) -> str | None:
    """`tel:+49421…` for a configured number, or None when it cannot be made a global number."""
    digits = _SEPARATORS.sub("", number)
    if digits.startswith(("+", "00")):
        # "+49 (0)421 …": the national 0 in parentheses is not dialled from abroad.
        digits = _SEPARATORS.sub("", number.replace("(0)", ""))
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = _COUNTRY + digits[1:]
    return f"tel:{digits}" if _GLOBAL.fullmatch(digits) else None


def phone_link(number: str) -> Markup:
    """The number as an HTML link that dials it, or as (escaped) text when it has no global form."""
    uri = tel_uri(number)
    return Markup('<a href="{}">{}</a>').format(uri, number) if uri else escape(number)


def with_phone_links(text: str, **numbers: str) -> Markup:
    """A text with `%(name)s` for phone numbers (a translated notice built in code), escaped, each number as
    `phone_link` makes it: the same as a template's `_("… %(hotline)s", hotline=phone_link(…))`."""
    return escape(text) % {name: phone_link(number) for name, number in numbers.items()}


def link_phone_in(text: str, number: str) -> Markup:
    """A text that already names `number` (another service's message, such as the finder's), escaped, with
    the number as `phone_link` makes it wherever it stands."""
    escaped = escape(text)
    if not number.strip():
        return escaped
    return escaped.replace(escape(number), phone_link(number))
