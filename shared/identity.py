"""The verified staff identity that the gateway passes to the services (invariant I5).

The gateway authenticates a staff member (session) or an integration (API key), checks the route's
rule, and forwards the identity in the header `X-OTV-Identity`, signed with HMAC-SHA256 under the
internal secret and valid for a short time. A service trusts only a header that verifies, so a customer
cannot forge one; a service may check the identity's locations again (defence in depth).

The gateway binds each header to the one request it sends (`target`: the service, the method and the
path), so that a header seen on the pod network cannot be replayed within its minute against another
route or service (an administrator's statistics call against the catalog's policy approvals, say). A
header without a target (a gateway of the previous release during a rolling update) is still accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from shared.errors import ForbiddenError, UnauthenticatedError

HEADER = "X-OTV-Identity"
MAX_AGE = timedelta(seconds=60)
ALL_LOCATIONS = "*"


class Role(StrEnum):
    """Roles of directive 3.6 and section 5, in the order in which they include each other (R28 to R31);
    statistics (R32) and audit review (R46) stand apart."""

    APPOINTMENT_MANAGER = "appointment_manager"
    GROUP_LEADER = "group_leader"
    LOCATION_ADMIN = "location_admin"
    ADMIN = "admin"
    STATISTICS = "statistics"
    AUDIT = "audit"
    SERVICE_CENTRE = "service_centre"


# Which roles include which (a location administrator may do what a group leader may, ...).
INCLUDES: dict[Role, frozenset[Role]] = {
    Role.APPOINTMENT_MANAGER: frozenset({Role.APPOINTMENT_MANAGER}),
    Role.GROUP_LEADER: frozenset({Role.GROUP_LEADER, Role.APPOINTMENT_MANAGER}),
    Role.LOCATION_ADMIN: frozenset({Role.LOCATION_ADMIN, Role.GROUP_LEADER, Role.APPOINTMENT_MANAGER}),
    Role.ADMIN: frozenset(
        {Role.ADMIN, Role.LOCATION_ADMIN, Role.GROUP_LEADER, Role.APPOINTMENT_MANAGER, Role.AUDIT}
    ),
    Role.STATISTICS: frozenset({Role.STATISTICS}),
    Role.AUDIT: frozenset({Role.AUDIT}),
    Role.SERVICE_CENTRE: frozenset({Role.SERVICE_CENTRE}),
}


class Grant(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    # Location ids, or ["*"] for all; group ids narrow a group leader's grant (empty: all groups).
    locations: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class IdentityKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"


class StaffIdentity(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str  # the account's username or the API key's id: never a customer's data
    kind: IdentityKind
    grants: tuple[Grant, ...]
    issued_at: AwareDatetime
    # An API key's scope of operations (e.g. "appointments:write"); empty for staff accounts, whose
    # roles decide. The gateway has checked it against the route; a service may check it again.
    operations: tuple[str, ...] = ()
    # The API key's name or the account's display name, for lists and mails ("booked by ..."); no
    # customer's data.
    display_name: str = ""
    # The request the gateway signed this for (`request_target`); empty: not bound (see above).
    target: str = ""

    @property
    def channel(self) -> str:
        """How a booking by this identity came in: `service_centre` for an API key (R37), else `staff`."""
        return "service_centre" if self.kind is IdentityKind.API_KEY else "staff"

    def may(self, operation: str) -> bool:
        """Whether an API key's scope holds `operation`; staff accounts are governed by their roles."""
        return self.kind is IdentityKind.USER or operation in self.operations

    def has(self, role: Role, location: str | None = None, group: str | None = None) -> bool:
        """Whether some grant includes `role` (at `location`, and `group` where given)."""
        for grant in self.grants:
            if role not in INCLUDES[grant.role]:
                continue
            if grant.role is Role.ADMIN or location is None:
                return True
            at_location = ALL_LOCATIONS in grant.locations or location in grant.locations
            if at_location and (group is None or not grant.groups or group in grant.groups):
                return True
        return False

    def require(self, role: Role, location: str | None = None, group: str | None = None) -> None:
        if not self.has(role, location, group):
            raise ForbiddenError("This needs a role or location you do not have.")

    def locations_with(self, role: Role) -> set[str] | None:
        """Locations where `role` is granted; None means all."""
        found: set[str] = set()
        for grant in self.grants:
            if role in INCLUDES[grant.role]:
                if grant.role is Role.ADMIN or ALL_LOCATIONS in grant.locations:
                    return None
                found.update(grant.locations)
        return found


def _mac(secret: str, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def request_target(service: str, method: str, path: str) -> str:
    """What a header is bound to: the receiving service, the method and the (decoded) path, no query."""
    return f"{service} {method.upper()} {path}"


def sign(identity: StaffIdentity, secret: str, *, target: str = "") -> str:
    bound = identity.model_copy(update={"target": target}) if target else identity
    payload = base64.urlsafe_b64encode(bound.model_dump_json().encode()).decode().rstrip("=")
    return f"{payload}.{_mac(secret, payload.encode())}"


def verify(
    header: str | None, secret: str, now: datetime, *, target: str | None, accepted: str | None = None
) -> StaffIdentity:
    """The identity in a header value; `UnauthenticatedError` when missing, forged, expired, or bound to
    another request than `target` (`request_target` of the request at hand; None only where there is no
    request to compare with). A header signed with `accepted` (a second secret during a rotation of the
    internal secret) verifies too."""
    if not header or "." not in header:
        raise UnauthenticatedError("Staff authentication required.")
    payload, mac = header.rsplit(".", 1)
    keys = [secret] if accepted is None else [secret, accepted]
    # Every key is compared (no early exit), so the time taken says nothing about which one matched.
    matched = [hmac.compare_digest(mac.encode(), _mac(key, payload.encode()).encode()) for key in keys]
    if not any(matched):
        raise UnauthenticatedError("Staff authentication required.")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        identity = StaffIdentity.model_validate_json(raw)
    except (ValueError, ValidationError):
        raise UnauthenticatedError("Staff authentication required.") from None
    if not (now - MAX_AGE <= identity.issued_at <= now + MAX_AGE):
        raise UnauthenticatedError("Staff authentication expired.")
    if (
        identity.target
        and target is not None
        and not hmac.compare_digest(identity.target.encode(), target.encode())
    ):
        raise UnauthenticatedError("Staff authentication was signed for another request.")
    return identity
