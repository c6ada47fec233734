"""Contact data of a booking as plain Python: validation, lenient normalisation, and the keys of the
one-appointment rule (R5: the e-mail address; R47: the customer number and the household number) and of
the allow-list (R6). No I/O; the pydantic request models call these.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_PHONE = re.compile(r"^\+?[0-9 ()/.\-]{5,30}$")
# Kundennummer of the Bundesagentur für Arbeit: three digits, a letter, six digits (123D456789).
CUSTOMER_NUMBER = re.compile(r"^[0-9]{3}[A-Z][0-9]{6}$")
# BG-Nummer (Bedarfsgemeinschaft): five digits (the Träger's number), "BG", seven digits (12345BG1234567).
HOUSEHOLD_NUMBER = re.compile(r"^[0-9]{5}BG[0-9]{7}$")
_SEPARATORS = re.compile(r"[\s\-/.]+")


def normalise_email(raw: str) -> str:
    """The address as a customer means it: trimmed, the domain lower case (and IDNA-encoded).

    Raises ValueError with a reason a person understands.
    """
    value = raw.strip()
    if not value or len(value) > 254:
        raise ValueError("an e-mail address has at most 254 characters")
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise ValueError("an e-mail address looks like name@example.org")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise ValueError("the part before @ is not a valid e-mail name")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError("the part after @ is not a valid domain") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError("the part after @ is not a valid domain")
    if not _TLD.fullmatch(labels[-1]):
        raise ValueError("the part after @ is not a valid domain")
    return f"{local}@{ascii_domain}"


def email_key(email: str) -> str:
    """The key of R5: the whole address case-insensitively (customers do not tell Max@ from max@)."""
    return email.strip().lower()


def is_allow_listed(email: str, entries: Iterable[str]) -> bool:
    """R6: an internal address (or its whole domain, an entry starting with "@") books any number of times."""
    key = email_key(email)
    domain = "@" + key.rpartition("@")[2]
    allowed = {entry.strip().lower() for entry in entries}
    return key in allowed or domain in allowed


def normalise_phone(raw: str) -> str:
    value = " ".join(raw.split())
    if not _PHONE.fullmatch(value) or sum(ch.isdigit() for ch in value) < 5:
        raise ValueError("a phone number has digits and may start with +, e.g. 0421 123456")
    return value


def normalise_customer_number(raw: str) -> str:
    """Lenient: spaces, dashes, slashes and dots are dropped, letters upper-cased (123 d 456789)."""
    value = _SEPARATORS.sub("", raw).upper()
    if not CUSTOMER_NUMBER.fullmatch(value):
        raise ValueError("a customer number (Kundennummer) looks like 123D456789")
    return value


def normalise_household_number(raw: str) -> str:
    value = _SEPARATORS.sub("", raw).upper()
    if not HOUSEHOLD_NUMBER.fullmatch(value):
        raise ValueError("a household number (BG-Nummer) looks like 12345BG1234567")
    return value


def network_of(address: str | None) -> str | None:
    """R48: the network of a client address, an IPv4 /24 or IPv6 /48 prefix (never the address itself)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def normalise_text(raw: str) -> str:
    """A free text (a cancellation reason): trimmed, no control characters but line breaks and tabs."""
    value = raw.strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


# The zero-width (non-)joiner belongs to the spelling of Persian, Kurdish and Indic names; every other
# control or format character (bidi overrides among them) has no place in a name.
_NAME_JOINERS = frozenset("\u200c\u200d")


def normalise_name(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise ValueError("must not be empty")
    if any(unicodedata.category(ch).startswith("C") and ch not in _NAME_JOINERS for ch in value):
        raise ValueError("must not contain control characters")
    if not any(ch.isalpha() for ch in value):
        raise ValueError("must contain letters")
    return value
