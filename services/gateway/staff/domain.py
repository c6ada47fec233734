"""Rules of staff access as plain Python (no aiohttp, no database): names and passwords, sessions and
their timeouts, the lock-out after failed logins, API key format and scopes, and what an audit entry may
say about a change (never a customer's personal data).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.errors import UnauthenticatedError, UnavailableError, ValidationError
from shared.identity import ALL_LOCATIONS, Grant, Role

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
# A staff account's opaque id as addresses carry it (R34: a username names the employee and stays in the
# browser's history, access logs and Referer headers). No username has this shape (`check_username`, and
# the table's CHECK of gateway migration 015), so an address segment of this shape is always an id.
ACCOUNT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
LOCATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
GROUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256

# Roles an administrator grants to people; the service centre is a role of API keys only.
GRANTABLE_ROLES = (
    Role.APPOINTMENT_MANAGER,
    Role.GROUP_LEADER,
    Role.LOCATION_ADMIN,
    Role.ADMIN,
    Role.STATISTICS,
    Role.AUDIT,
)
# Roles that hold for every location at once (R31, R32, R46): granted with location "*".
CENTRAL_ROLES = frozenset({Role.ADMIN, Role.STATISTICS, Role.AUDIT})
# Roles a location administrator hands out at their own location (R30: "their groups and group leaders").
LOCATION_DELEGABLE_ROLES = (Role.APPOINTMENT_MANAGER, Role.GROUP_LEADER)

ROLE_LABELS_DE: dict[Role, str] = {
    Role.APPOINTMENT_MANAGER: "Termin-Manager:in",
    Role.GROUP_LEADER: "Serviceplatzgruppen-Leiter:in",
    Role.LOCATION_ADMIN: "Standort-Administrator:in",
    Role.ADMIN: "Administrator:in",
    Role.STATISTICS: "Statistik",
    Role.AUDIT: "Revision (Audit-Log)",
    Role.SERVICE_CENTRE: "Service-Center (API-Schlüssel)",
}

# Operations an API key may be scoped to (R37, R50).
OPERATIONS: dict[str, str] = {
    "appointments:read": "Termine eines Standorts lesen",
    "appointments:write": "Termine buchen, verschieben und absagen (Service-Center)",
    "events:read": "Ereignis-Feed der Terminänderungen lesen",
    "events:personal": "Im Ereignis-Feed auch die Daten der Kundinnen und Kunden (mit events:read)",
}


class LoginRefused(Exception):
    """Wrong name or password, or a locked or disabled account: one answer for all (no enumeration)."""


class LoginThrottled(Exception):
    """Too many failed sign-ins from one address; `retry_after` seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class PasswordChecksBusy(UnavailableError):
    """No turn for a password check came in time (every turn of this gateway process was taken for
    longer than OTV_STAFF_PASSWORD_WAIT_SECONDS): come back in `retry_after` seconds. Not a failed
    sign-in: no password was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many sign-ins at this moment. Please try again in a minute.", retry_after=retry_after
        )


class PasswordGuessStopped(UnauthenticatedError):
    """Wrong current passwords on a password change count like failed sign-ins; once they lock the
    account for the caller's network, the session that tried them is ended (401): a live session is no
    way around the lock-out of the sign-in. `guessed_here`: this try's wrong password locked it; else it
    was locked already (failed sign-ins from this network or, over the ceiling, from others) and the
    password was not checked."""

    def __init__(self, message: str, *, guessed_here: bool) -> None:
        super().__init__(message)
        self.guessed_here = guessed_here


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise ValidationError(
            "The username needs 2 to 63 lowercase letters, digits, '.', '_' or '-'.",
            details=[{"field": "username", "message": "invalid username"}],
        )
    if ACCOUNT_ID.fullmatch(name):
        raise ValidationError(
            "A username must not have the shape of an account id.",
            details=[{"field": "username", "message": "looks like an account id"}],
        )
    return name


def is_account_id(ref: str) -> bool:
    """Whether an address segment names an account by its id (else, in the deprecated API form, by its
    username): the two never overlap (`ACCOUNT_ID`)."""
    return ACCOUNT_ID.fullmatch(ref) is not None


def check_new_password(password: str, *, username: str, field: str = "new_password") -> None:
    """A password a person chose: long enough, not the username, not one character repeated."""
    problem = None
    if len(password) < PASSWORD_MIN_LENGTH:
        problem = f"at least {PASSWORD_MIN_LENGTH} characters"
    elif len(password) > PASSWORD_MAX_LENGTH:
        problem = f"at most {PASSWORD_MAX_LENGTH} characters"
    elif username and username.lower() in password.lower():
        problem = "must not contain the username"
    elif len(set(password)) < 5:
        problem = "too simple"
    if problem:
        raise ValidationError(
            f"The new password is not acceptable: {problem}.",
            details=[{"field": field, "message": problem}],
        )


def start_password() -> str:
    """A one-time start password an administrator hands over; the first login must change it."""
    alphabet = string.ascii_letters + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def new_token() -> str:
    """A random secret of 256 bits, URL-safe (session ids, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# --- lock-out ---------------------------------------------------------------------------------------
class LoginOutcome(StrEnum):
    """Why a sign-in was refused, as the audit log names it (the caller always gets the same answer)."""

    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 -- a reason's name, not a password
    LOCKED_NOW = "locked_now"  # this failure used up the network's allowance for the account
    LOCKED = "locked"  # the account is locked for this network
    ACCOUNT_LOCKED_NOW = "account_locked_now"  # this failure reached the ceiling over all networks
    ACCOUNT_LOCKED = "account_locked"  # the account is locked for every network it does not know
    DISABLED = "disabled"


@dataclass(frozen=True)
class LockoutPolicy:
    """Wrong passwords lock an account only for the client network they came from (`proxy.lockout_network`:
    an IPv4 address, an IPv6 /56): `max_failures` within `lockout` from one network, and that network
    must wait until the oldest of them is `lockout` old. Anyone elsewhere still signs in.

    Guessing stays bounded all the same: beyond `max_account_failures` within `lockout` over all networks
    (a distributed guess) the account is locked for `lockout` for every network it does not know. A
    network is known when the account signed in from it within `known_for`: the caseworker at the
    jobcenter or at home keeps signing in with the right password, so a stranger cannot lock out a
    caseworker who signs in from a network they used before; only their own network's lock holds there."""

    max_failures: int
    lockout: timedelta
    max_account_failures: int = 20
    known_for: timedelta = timedelta(days=30)

    def counts_since(self, now: datetime) -> datetime:
        """Failures before this moment count for nothing (and may be deleted)."""
        return now - self.lockout

    def known_since(self, now: datetime) -> datetime:
        """A network the account last signed in from before this moment is no longer known (and its row
        may be deleted: it is personal data of the staff member)."""
        return now - self.known_for

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        """Locked for every unknown network (the account-wide ceiling)."""
        return locked_until is not None and locked_until > now

    def network_locked(self, network_failures: int) -> bool:
        """Locked for this network: its recent failures have reached the limit."""
        return network_failures >= self.max_failures

    def after_failure(
        self, network_failures: int, account_failures: int, now: datetime, *, account_locked: bool = False
    ) -> tuple[LoginOutcome, datetime | None]:
        """What one more wrong password means, given the recent failures counting it (of its network, of
        all networks); with the end of the account-wide lock once the ceiling is reached. A failure from a
        known network while that lock holds already does not lock (nor audit the lock) again."""
        if account_failures >= self.max_account_failures and not account_locked:
            return LoginOutcome.ACCOUNT_LOCKED_NOW, now + self.lockout
        if network_failures >= self.max_failures:
            return LoginOutcome.LOCKED_NOW, None
        return LoginOutcome.WRONG_PASSWORD, None


class FailureThrottle:
    """Failures per client network (an IPv4 address, an IPv6 /64; in memory, per replica): beyond `limit`
    failures within `window` the network must wait. Failed sign-ins, whichever accounts they try (against
    password spraying, which the lock-out per account and network does not stop); refused API keys (each
    refusal is an audit row, and the audit log cannot be emptied)."""

    def __init__(self, limit: int = 30, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, ip: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(ip)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[ip]
        return times

    def retry_after(self, ip: str, now: datetime) -> int:
        """Seconds until the address may try again; 0 when it may now."""
        times = self._recent(ip, now)
        if len(times) < self.limit:
            return 0
        return max(1, int((times[0] + self.window - now).total_seconds()) + 1)

    def failed(self, ip: str, now: datetime) -> None:
        if len(self._failures) > 100_000:  # bounded memory under a flood of addresses
            self._failures.clear()
        self._failures.setdefault(ip, deque()).append(now)


# --- sessions ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    touch_every: timedelta = timedelta(seconds=60)

    def expires_at(self, created_at: datetime) -> datetime:
        return created_at + self.absolute

    def is_valid(self, last_seen_at: datetime, expires_at: datetime, now: datetime) -> bool:
        return now < expires_at and now < last_seen_at + self.idle

    def needs_touch(self, last_seen_at: datetime, now: datetime) -> bool:
        return now - last_seen_at >= self.touch_every


# --- grants -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GrantRow:
    role: Role
    location: str
    groups: tuple[str, ...] = ()


def check_grant(role: str, location: str, groups: list[str] | tuple[str, ...] = ()) -> GrantRow:
    try:
        parsed = Role(role)
    except ValueError:
        parsed = None
    if parsed is None or parsed not in GRANTABLE_ROLES:
        raise ValidationError(
            f"Unknown role {role!r}.", details=[{"field": "role", "message": "unknown role"}]
        )
    if parsed in CENTRAL_ROLES:
        location = ALL_LOCATIONS
    elif location != ALL_LOCATIONS and not LOCATION_ID.fullmatch(location):
        raise ValidationError(
            "A location id is a slug such as 'mitte'.",
            details=[{"field": "location", "message": "invalid location id"}],
        )
    if groups and parsed is not Role.GROUP_LEADER:
        raise ValidationError(
            "Only a group leader's grant names groups.",
            details=[{"field": "groups", "message": "only for group_leader"}],
        )
    for group in groups:
        if not GROUP_ID.fullmatch(group):
            raise ValidationError(
                "Invalid group id.", details=[{"field": "groups", "message": "invalid group id"}]
            )
    return GrantRow(parsed, location, tuple(sorted(set(groups))))


def to_grants(rows: list[GrantRow]) -> tuple[Grant, ...]:
    return tuple(Grant(role=r.role, locations=(r.location,), groups=r.groups) for r in rows)


# --- API keys ---------------------------------------------------------------------------------------
KEY_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_SHAPE = re.compile(r"^otv_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret: str

    @property
    def plain(self) -> str:
        return f"otv_{self.prefix}_{self.secret}"

    @property
    def secret_hash(self) -> bytes:
        return token_hash(self.secret)


def new_api_key() -> NewKey:
    prefix = "".join(secrets.choice(KEY_PREFIX_ALPHABET) for _ in range(10))
    return NewKey(prefix=prefix, secret=secrets.token_urlsafe(32))  # 256 random bits


def parse_api_key(raw: str) -> tuple[str, str] | None:
    """(prefix, secret) of a key in our format, else None."""
    match = KEY_SHAPE.fullmatch(raw.strip())
    return (match.group(1), match.group(2)) if match else None


def check_key_scope(locations: list[str], operations: list[str]) -> tuple[list[str], list[str]]:
    locs = sorted(set(locations))
    ops = sorted(set(operations))
    if not locs:
        raise ValidationError(
            "An API key needs at least one location ('*' for all).",
            details=[{"field": "locations", "message": "empty"}],
        )
    for loc in locs:
        if loc != ALL_LOCATIONS and not LOCATION_ID.fullmatch(loc):
            raise ValidationError(
                "Invalid location id.", details=[{"field": "locations", "message": "invalid location id"}]
            )
    if ALL_LOCATIONS in locs:
        locs = [ALL_LOCATIONS]
    if not ops:
        raise ValidationError(
            "An API key needs at least one operation.",
            details=[{"field": "operations", "message": "empty"}],
        )
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise ValidationError(
            f"Unknown operation(s): {', '.join(unknown)}.",
            details=[{"field": "operations", "message": "unknown operation"}],
        )
    return locs, ops


# An API key's own request limit (R50), requests a minute per gateway replica: at least one, at most 1000 a
# second (beyond what one gateway serves: a higher value would mean no limit, which no key has). The
# database's CHECK on api_keys.requests_per_minute holds the same bounds (migration 014).
KEY_REQUESTS_PER_MINUTE_MIN = 1
KEY_REQUESTS_PER_MINUTE_MAX = 60_000


@dataclass(frozen=True)
class KeyAllowance:
    """The request limit of API keys without one of their own (OTV_API_KEY_REQUESTS_PER_MINUTE,
    OTV_API_KEY_BURST), and from it a key's allowance as a token bucket's rate and size."""

    per_minute: int = 600
    burst: int = 120

    def of(self, own_per_minute: int | None) -> tuple[float, int]:
        """(tokens a second, bucket size) of a key. A key's own limit has a burst of the same share of a
        minute as the default's (600 and 120: twelve seconds' worth), at least 1: a key with a tenth of the
        default rate gets a tenth of its burst, one with twice the rate twice the burst. So an
        administrator sets one number, and a throttled partner cannot still send the full default burst at
        once."""
        if own_per_minute is None:
            return self.per_minute / 60, self.burst
        burst = max(1, round(own_per_minute * self.burst / self.per_minute))
        return own_per_minute / 60, burst


# --- audit ------------------------------------------------------------------------------------------
def changed_fields(body: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """The names of the fields a request sets, nested as dotted paths: what changed, never the values
    (they may hold a customer's name, e-mail or number)."""
    if not isinstance(body, dict) or depth > 3:
        return []
    names: list[str] = []
    for key in sorted(body):
        # A name no text column can store (a NUL, a lone surrogate) is no field of any form: "?".
        name = f"{prefix}{key}" if isinstance(key, str) and key.isprintable() else f"{prefix}?"
        if len(name) > 80:
            continue
        names.append(name)
        names.extend(changed_fields(body[key], name + ".", depth + 1))
    return names[:100]
