"""Rules of integrations as plain Python (R50): which events a subscription or key sees, how much
personal data leave with them, the Standard Webhooks signature, the back-off, and which target
addresses are refused (against server-side request forgery).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shared.errors import ValidationError

ALL_LOCATIONS = "*"
SECRET_PREFIX = "whsec_"  # noqa: S105 -- the prefix of the format, not a secret
# After a rotation the previous secret signs as well for this long: the receiving system switches to the
# new one when it is ready (docs/webhooks.md, "Rotating the secret").
ROTATION_OVERLAP = timedelta(hours=24)
# The event families an integration may receive (ARCHITECTURE.md: appointment changes and callbacks).
FAMILIES = ("appointment.", "callback.")
_PATTERN = re.compile(r"^(appointment|callback)\.(\*|[a-z_]{1,60})$")
_LOCATION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


# --- scope ------------------------------------------------------------------------------------------
def check_patterns(patterns: list[str]) -> list[str]:
    found = sorted(set(patterns))
    bad = [p for p in found if not _PATTERN.fullmatch(p)]
    if not found or bad:
        raise ValidationError(
            "Event types are patterns such as appointment.* or callback.created.",
            details=[{"field": "event_types", "message": "invalid pattern"}],
        )
    return found


def check_locations(locations: list[str]) -> list[str]:
    found = sorted(set(locations))
    if not found or any(loc != ALL_LOCATIONS and not _LOCATION.fullmatch(loc) for loc in found):
        raise ValidationError(
            "Locations are location ids, or '*' for all.",
            details=[{"field": "locations", "message": "invalid location id"}],
        )
    return [ALL_LOCATIONS] if ALL_LOCATIONS in found else found


def type_matches(event_type: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def location_in_scope(location: str | None, scope: list[str] | set[str] | None) -> bool:
    """`scope` None or holding '*' is every location; an event without a location only for those."""
    if scope is None or ALL_LOCATIONS in scope:
        return True
    return location is not None and location in scope


@dataclass(frozen=True)
class Placement:
    """Where an event belongs: its location, and the aggregate whose order matters, with a sequence."""

    location_id: str | None
    order_key: str
    # The appointment's revision; None for an event of the appointment without one (a callback ticket's):
    # it goes after the events of that appointment known when it arrives.
    order_seq: int | None


def place(event_id: uuid.UUID, data: dict[str, Any]) -> Placement:
    """From the event's data: appointment.* carry the snapshot; callback.* name their appointment."""
    appointment = data.get("appointment")
    if isinstance(appointment, dict):
        return Placement(
            _str(appointment.get("location_id")),
            f"appointment:{appointment.get('id')}",
            int(appointment.get("revision") or 0),
        )
    location = _str(data.get("location_id")) or _str(data.get("location"))
    callback = data.get("callback")
    if isinstance(callback, dict):
        location = location or _str(callback.get("location_id")) or _str(callback.get("location"))
        appointment_id = callback.get("appointment_id") or data.get("appointment_id")
    else:
        appointment_id = data.get("appointment_id")
    if appointment_id:
        # After the appointment's own events known when it arrives (their revisions), in arrival order.
        return Placement(location, f"appointment:{appointment_id}", None)
    return Placement(location, f"event:{event_id}", 0)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- personal data (R34, invariant I6) --------------------------------------------------------------
# Fields that name or reach a person; stripped unless the scope includes personal data. Free texts
# (a cancellation reason, an outcome note) may hold anything a person typed, so they go as well.
PERSONAL_FIELDS = frozenset(
    {
        "customer",
        "first_name",
        "last_name",
        "email",
        "phone",
        "customer_number",
        "household_number",
        "client_network",
        "note",
        "reason",
        "interpreter_language",
        # A language the pages offer as content (R43: `tr`, `ar`) says as much about a person as the
        # interpreter's; `language`, the nearest built-in one, stays.
        "language_tag",
    }
)


# Codes under a name that elsewhere is a free text: (the object's field in its parent, the field). A callback
# ticket's `reason` is a `CallbackReason` (`outcome`, `missed_call`, ...), never typed by a person.
CODE_FIELDS = frozenset({("callback", "reason")})


def reduce_data(data: Any, *, include_personal_data: bool, within: str | None = None) -> Any:
    """The event's data as an integration may see it. The manage link's token never leaves (it would let
    the receiver act as the customer); without personal data, the fields above are removed (`within`: the
    field that holds `data`, for the codes above)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if not include_personal_data and key in PERSONAL_FIELDS and (within, key) not in CODE_FIELDS:
                continue
            if key == "manage_url" and isinstance(value, str):
                out[key] = value.split("?", 1)[0]
                continue
            out[key] = reduce_data(value, include_personal_data=include_personal_data, within=key)
        return out
    if isinstance(data, list):
        return [reduce_data(v, include_personal_data=include_personal_data, within=within) for v in data]
    return data


def reduce_envelope(envelope: dict[str, Any], *, include_personal_data: bool) -> dict[str, Any]:
    return {
        **envelope,
        "data": reduce_data(envelope.get("data", {}), include_personal_data=include_personal_data),
    }


# --- Standard Webhooks signatures -------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def message_id(subscription_id: uuid.UUID, event_id: uuid.UUID) -> str:
    """`webhook-id`: the same for every attempt of one event to one subscription (receivers dedupe)."""
    return f"msg_{uuid.uuid5(subscription_id, str(event_id)).hex}"


def sign(signing_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")) for each secret
    (the current one first; after a rotation the previous one too), separated by spaces."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_bytes(s), signed, hashlib.sha256).digest()).decode()
        for s in signing_secrets
    )


# --- sending ------------------------------------------------------------------------------------------
# Requests to one target (scheme, host and port) in parallel: the client's connections per host, and what
# the sender claims for one target in a round. Never more: a request waiting for a free connection would
# spend the receiver's timeout waiting, and be recorded as its timeout without having been sent.
PARALLEL_PER_TARGET = 5


# --- retries and pausing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=2)
    # A delivery is given up (status failed, can be re-sent) after this long.
    give_up_after: timedelta = timedelta(hours=24)
    # A subscription failing for this long (or, where set, this many attempts in a row) is paused.
    pause_after: timedelta = timedelta(hours=24)
    pause_after_failures: int | None = None

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """After the `attempts`-th failed attempt: exponential, capped."""
        delay: timedelta = self.first_delay * (2 ** max(attempts - 1, 0))
        return now + min(delay, self.max_delay)

    def gives_up(self, created_at: datetime, now: datetime) -> bool:
        return now - created_at >= self.give_up_after

    def pause_reason(self, failures: int, failing_since: datetime | None, now: datetime) -> str | None:
        if self.pause_after_failures is not None and failures >= self.pause_after_failures:
            return f"{failures} failed deliveries in a row"
        if failing_since is not None and now - failing_since >= self.pause_after:
            hours = int((now - failing_since).total_seconds() // 3600)
            return f"every delivery failed for {hours} hours (since {failing_since.isoformat()})"
        return None


# --- target addresses (SSRF) ------------------------------------------------------------------------
LOOPBACK_DEV = ipaddress.ip_address("127.0.0.1")
# NAT64 (RFC 6052 well-known prefix, RFC 8215 local-use prefix): where the cluster runs DNS64/NAT64 such an
# address reaches the IPv4 address in its last 32 bits, any internal one included. The standard library
# calls 64:ff9b::/96 global (only its place in ::/8 made it "reserved", and not the local-use prefix in
# every Python version): refused by name, whatever IPv4 address it stands for.
NAT64_NETWORKS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# 6to4 (RFC 3056): wherever a 6to4 relay or router is reachable, 2002:WWXX:YYZZ::/48 reaches the IPv4
# address WW.XX.YY.ZZ, an internal one too; the standard library calls the prefix global. Refused outright,
# like NAT64 (6to4 is deprecated, RFC 7526: no receiver needs it). Teredo (2001::/32), the other prefix
# that embeds an IPv4 address, the standard library already counts as private; the IPv4-compatible and
# -translated forms (::a.b.c.d, ::ffff:0:a.b.c.d) lie in ::/8, which it counts as reserved.
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def check_url_shape(url: str, *, allow_loopback: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL: https, or http only to 127.0.0.1 in development."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url("The URL cannot be read.") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise _bad_url("The URL must be https://...")
    if parts.username or parts.password:
        raise _bad_url("The URL must not carry credentials.")
    if parts.scheme == "http" and not (allow_loopback and host == str(LOOPBACK_DEV)):
        raise _bad_url("The URL must be https (plain http only to 127.0.0.1 in development).")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why a resolved address may not be called (None: it may): only public unicast addresses, and
    127.0.0.1 itself where development allows it."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_loopback and ip == LOOPBACK_DEV:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in network for network in NAT64_NETWORKS):
        return "nat64"
    if isinstance(ip, ipaddress.IPv6Address) and ip in SIX_TO_FOUR:
        return "6to4"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        # fec0::/10, deprecated (RFC 3879) but still routed inside some networks; "global" to Python.
        return "site-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "reserved"
    return None


def _bad_url(message: str) -> ValidationError:
    return ValidationError(message, details=[{"field": "url", "message": message}])


def refused_url(reason: str) -> ValidationError:
    return _bad_url(f"The URL's address is not allowed ({reason}).")
