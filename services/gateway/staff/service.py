"""Use cases of staff access, one transaction each; every change by staff writes its audit entry in the
same transaction (invariant I5)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from prometheus_client import Counter

from services.gateway.proxy import client_network, lockout_network
from services.gateway.rate_limit import RateLimiter
from services.gateway.staff import db
from services.gateway.staff.domain import (
    CENTRAL_ROLES,
    LOCATION_DELEGABLE_ROLES,
    USERNAME,
    FailureThrottle,
    GrantRow,
    KeyAllowance,
    LockoutPolicy,
    LoginOutcome,
    LoginRefused,
    LoginThrottled,
    PasswordChecksBusy,
    PasswordGuessStopped,
    SessionPolicy,
    check_grant,
    check_key_scope,
    check_new_password,
    check_username,
    is_account_id,
    new_api_key,
    new_token,
    parse_api_key,
    start_password,
    to_grants,
    token_hash,
)
from shared.background import with_job_lock
from shared.clock import Clock
from shared.errors import ConflictError, NotFoundError, UnauthenticatedError, ValidationError
from shared.identity import Grant, IdentityKind, Role, StaffIdentity
from shared.metrics import RETENTION_LAST_RUN, count_from_zero

log = structlog.get_logger(__name__)
# The `service` label of otv_retention_last_run_timestamp_seconds for the audit addresses' retention run
# (deploy/alerts.yaml, OTVRetentionNotReported).
AUDIT_RETENTION_LABEL = "gateway-audit"

LOGIN_LOCKOUTS = Counter(
    "otv_staff_login_lockouts_total",
    "Staff accounts locked after failed sign-ins: for one client network, or for every network the "
    "account does not know (the ceiling over all networks: a distributed guess)",
    ["scope"],
)

LOGINS_REFUSED = Counter(
    "otv_staff_logins_refused_total",
    "Refused staff sign-ins by reason (as the audit log names it; never the name or the address), for the "
    "alert on password guessing below the lock-outs",
    ["reason"],
)
# At 0 from the start: the one lock an alert reports is usually the only one (shared/metrics.py says why).
count_from_zero(LOGIN_LOCKOUTS, ["network", "account"])
count_from_zero(LOGINS_REFUSED, LoginOutcome)


class Passwords:
    """argon2id through argon2-cffi, off the event loop (a hash takes tens of milliseconds), and at most
    `concurrent` at once in this process: each takes the hasher's memory cost (64 MiB by default), and a
    handful at once (a service centre signing in at 08:00, or anyone posting made-up names in parallel)
    pushed the gateway past its memory limit. Whoever waits longer than `wait_seconds` for a turn gets
    `PasswordChecksBusy` (503)."""

    def __init__(
        self, hasher: PasswordHasher | None = None, *, concurrent: int = 2, wait_seconds: float = 10.0
    ) -> None:
        # Which argon2 parameters: the library's defaults (RFC 9106, low memory); tests set cheap ones.
        self.hasher = hasher or PasswordHasher()
        self.concurrent = concurrent
        self.wait_seconds = wait_seconds
        self._turns = asyncio.Semaphore(concurrent)
        # A hash of a random password, made at the first `burn`, to check the names that do not exist.
        self.dummy: str | None = None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[PasswordWork]:
        """A turn for password work, with what may be done in it. Taken before the caller's database
        connection and row locks, so that those waiting hold neither."""
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._turns.acquire()
        except TimeoutError:
            log.warning("staff_password_checks_busy", concurrent=self.concurrent)
            raise PasswordChecksBusy(max(1, math.ceil(self.wait_seconds))) from None
        try:
            yield PasswordWork(self)
        finally:
            self._turns.release()

    async def hash(self, password: str) -> str:
        async with self.turn() as work:
            return await work.hash(password)

    async def verify(self, encoded: str, password: str) -> bool:
        async with self.turn() as work:
            return await work.verify(encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return False


@dataclass(frozen=True)
class PasswordWork:
    """What a turn of `Passwords.turn` allows: hashes and checks, one after another."""

    passwords: Passwords

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.passwords.hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        hasher = self.passwords.hasher

        def check() -> bool:
            try:
                return hasher.verify(encoded, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def burn(self, password: str) -> None:
        """As much work as a real check, for a name that does not exist: no enumeration by timing."""
        if self.passwords.dummy is None:
            self.passwords.dummy = await self.hash(new_token())
        await self.verify(self.passwords.dummy, password)


@dataclass
class Staff:
    """What the use cases need: the pool, the clock, the policies, the password hasher."""

    pool: asyncpg.Pool
    clock: Clock
    sessions: SessionPolicy
    lockout: LockoutPolicy
    passwords: Passwords = field(default_factory=Passwords)
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    key_throttle: FailureThrottle = field(
        default_factory=lambda: FailureThrottle(limit=10, window=timedelta(minutes=1))
    )
    # Refused (403) requests per staff account or API key, for the audit log's sake (authz._refuse).
    refusal_throttle: FailureThrottle = field(
        default_factory=lambda: FailureThrottle(limit=20, window=timedelta(minutes=1))
    )
    # Requests of each valid API key (authz._limit_key): a key's own limit or the default of the settings
    # (OTV_API_KEY_REQUESTS_PER_MINUTE, OTV_API_KEY_BURST), which `key_allowance` holds.
    key_requests: RateLimiter = field(default_factory=lambda: RateLimiter(rate=10.0, burst=120))
    key_allowance: KeyAllowance = field(default_factory=KeyAllowance)
    # How long an audit entry's client address is kept (personal data; OTV_AUDIT_ADDRESS_RETENTION_DAYS).
    address_retention: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log: a username or an API key id, never a customer's data."""

    subject: str
    kind: str
    ip: str | None = None
    correlation_id: str | None = None

    @classmethod
    def of(cls, identity: StaffIdentity, ip: str | None, correlation_id: str | None) -> Actor:
        return cls(identity.subject, str(identity.kind), ip, correlation_id)


async def audit(
    conn: asyncpg.Connection,
    actor: Actor,
    now: datetime,
    *,
    action: str,
    entity: str,
    entity_id: str | None = None,
    location: str | None = None,
    outcome: str = "ok",
    changes: dict[str, Any] | None = None,
    status: int | None = None,
    method: str | None = None,
    route: str | None = None,
) -> None:
    await db.insert_audit(
        conn,
        db.AuditEntry(
            occurred_at=now,
            actor=actor.subject,
            actor_kind=actor.kind,
            action=action,
            entity=entity,
            entity_id=entity_id,
            location=location,
            outcome=outcome,
            status=status,
            ip=actor.ip,
            method=method,
            route=route,
            changes=changes,
            correlation_id=actor.correlation_id,
        ),
    )


# --- sign-in ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    username: str
    must_change_password: bool
    # The account's opaque id: what log lines name (never the username).
    account_id: uuid.UUID


async def login(staff: Staff, username: str, password: str, actor: Actor) -> NewSession:
    """A new session, or `LoginRefused` with the same answer for a wrong name, a wrong password, a
    locked and a disabled account (no user enumeration). The failure counts commit before the refusal.

    Wrong passwords lock the account for the client network they came from only, so that nobody can lock
    out a caseworker from elsewhere; the ceiling over all networks locks it for every network the account
    has not signed in from lately (`LockoutPolicy`). The account's row is locked while its failures are
    counted: every replica counts the same."""
    name = username.strip().lower()
    now = staff.clock.now()
    address = actor.ip or "unknown"
    # The throttle counts per /64 (an IPv6 client has a /64 of addresses to try from), the lock-out per
    # line (an IPv6 /56: a line has 256 /64s to switch between).
    throttled = client_network(address)[:64]
    network = lockout_network(address)[:64]
    wait = staff.throttle.retry_after(throttled, now)
    if wait:
        log.warning("staff_login_throttled")
        raise LoginThrottled(wait)
    since = staff.lockout.counts_since(now)
    session: NewSession | None = None
    # Every way through checks one password (a name that does not exist pays for one as well): the turn
    # is taken before the connection, so that those waiting for one hold no connection and no row lock.
    async with (
        staff.passwords.turn() as passwords,
        staff.pool.acquire() as conn,
        conn.transaction(),
    ):
        account = await db.find_account(conn, name, lock=True) if USERNAME.fullmatch(name) else None
        reason: LoginOutcome | None = None
        account_locked = account is not None and staff.lockout.is_locked(account.locked_until, now)
        if account is None:
            await passwords.burn(password)
            reason = LoginOutcome.UNKNOWN_USER
        elif account_locked and not await db.is_known_network(
            conn, account.id, network, staff.lockout.known_since(now)
        ):
            await passwords.burn(password)
            reason = LoginOutcome.ACCOUNT_LOCKED
        elif staff.lockout.network_locked(
            (await db.count_login_failures(conn, account.id, network, since)).network
        ):
            await passwords.burn(password)
            reason = LoginOutcome.LOCKED
        elif not await passwords.verify(account.password_hash, password):
            await db.record_login_failure(conn, account.id, network, now, since)
            recent = await db.count_login_failures(conn, account.id, network, since)
            reason, locked_until = staff.lockout.after_failure(
                recent.network, recent.account, now, account_locked=account_locked
            )
            if locked_until is not None:
                await _lock_for_unknown_networks(
                    conn, account, locked_until, recent, actor.correlation_id, now
                )
        elif not account.active:
            reason = LoginOutcome.DISABLED
        if account is None or reason:
            # The typed name is stored only when it names an account: a mistyped password in the name
            # field must not end up in the log.
            who = Actor(account.username if account else "unknown", "user", actor.ip, actor.correlation_id)
            await audit(
                conn,
                who,
                now,
                action="login",
                entity="session",
                outcome="refused",
                changes={"reason": str(reason)},
            )
        else:
            new_hash = (
                await passwords.hash(password)
                if staff.passwords.needs_rehash(account.password_hash)
                else None
            )
            await db.record_login_success(conn, account.id, network, now, new_hash)
            token, csrf = new_token(), new_token()
            await db.insert_session(
                conn, token_hash(token), account.id, csrf, now, staff.sessions.expires_at(now)
            )
            who = Actor(account.username, "user", actor.ip, actor.correlation_id)
            await audit(conn, who, now, action="login", entity="session")
            session = NewSession(token, csrf, account.username, account.must_change_password, account.id)
    if session is None:
        staff.throttle.failed(throttled, now)
        LOGINS_REFUSED.labels(reason=str(reason or LoginOutcome.UNKNOWN_USER)).inc()
        if reason is LoginOutcome.LOCKED_NOW:
            LOGIN_LOCKOUTS.labels(scope="network").inc()
        elif reason is LoginOutcome.ACCOUNT_LOCKED_NOW:
            LOGIN_LOCKOUTS.labels(scope="account").inc()
            # The account's opaque id, never its username (a person's name, R34); a refused name that is
            # no account is not logged at all.
            log.warning("staff_account_locked", account_id=str(account.id) if account else None)
        log.info(
            "staff_login_refused",
            reason=str(reason or LoginOutcome.UNKNOWN_USER),
            account_id=str(account.id) if account else None,
        )
        raise LoginRefused
    log.info("staff_login", account_id=str(session.account_id))
    return session


async def _lock_for_unknown_networks(
    conn: asyncpg.Connection,
    account: db.Account,
    locked_until: datetime,
    recent: db.RecentFailures,
    correlation_id: str | None,
    now: datetime,
) -> None:
    """The ceiling over all networks is reached: a distributed guess. The account is locked for every
    network it does not know until `locked_until` (or an administrator's new start password); the audit
    log says so under the account, with how many failures and networks (never which); the caller counts
    it in the metric."""
    await db.lock_account(conn, account.id, locked_until)
    await audit(
        conn,
        Actor("system", "system", None, correlation_id),
        now,
        action="lock",
        entity="staff_account",
        entity_id=str(account.id),
        changes={
            "reason": "failed_logins",
            "failures": recent.account,
            "networks": recent.networks,
            "locked_until": locked_until.isoformat(),
        },
    )


@dataclass(frozen=True)
class SessionInfo:
    id_hash: bytes
    account_id: uuid.UUID
    username: str
    display_name: str
    csrf_token: str
    must_change_password: bool
    grants: tuple[GrantRow, ...]
    expires_at: datetime

    def identity(self, now: datetime) -> StaffIdentity:
        return StaffIdentity(
            subject=self.username,
            kind=IdentityKind.USER,
            grants=to_grants(list(self.grants)),
            issued_at=now,
            display_name=self.display_name,
        )


async def find_session(staff: Staff, token: str) -> SessionInfo | None:
    """The live session of a cookie's token, or None (unknown, expired, idle too long, account disabled).
    Grants are read afresh on every request, so that a revoked role stops at once."""
    if not token or len(token) > 128 or not token.isascii():  # bytes not UTF-8 arrive as lone surrogates
        return None
    id_hash = token_hash(token)
    now = staff.clock.now()
    async with staff.pool.acquire() as conn:
        row = await db.find_session(conn, id_hash)
        if row is None:
            return None
        if not staff.sessions.is_valid(row.last_seen_at, row.expires_at, now):
            await db.delete_session(conn, id_hash)
            return None
        account = await db.find_account_by_id(conn, row.account_id)
        if account is None or not account.active:
            await db.delete_session(conn, id_hash)
            return None
        grants = await db.grants_of(conn, account.id)
        if staff.sessions.needs_touch(row.last_seen_at, now):
            await db.touch_session(conn, id_hash, now)
    return SessionInfo(
        id_hash=id_hash,
        account_id=account.id,
        username=account.username,
        display_name=account.display_name,
        csrf_token=row.csrf_token,
        must_change_password=account.must_change_password,
        grants=tuple(grants),
        expires_at=row.expires_at,
    )


async def logout(staff: Staff, session: SessionInfo, actor: Actor) -> None:
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        await db.delete_session(conn, session.id_hash)
        await audit(conn, actor, now, action="logout", entity="session")


async def change_password(staff: Staff, session: SessionInfo, current: str, new: str, actor: Actor) -> None:
    """The signed-in person changes their own password; their other sessions end.

    A wrong current password is a failed sign-in of the account from the caller's network (the same
    record, the same lock-out): whoever holds a session (a stolen cookie, an unlocked workstation) gets no
    more guesses than the sign-in gives. When the guesses lock the account for that network (or it is
    locked there already) the password is not even checked, and this session ends: `PasswordGuessStopped`."""
    check_new_password(new, username=session.username)
    if hmac.compare_digest(current.encode(), new.encode()):
        raise ValidationError(
            "The new password must differ from the current one.",
            details=[{"field": "new_password", "message": "unchanged"}],
        )
    now = staff.clock.now()
    network = lockout_network(actor.ip or "unknown")[:64]
    since = staff.lockout.counts_since(now)
    reason: LoginOutcome | None = None
    # The turn for the check (and the new hash) before the connection, as in `login`.
    async with (
        staff.passwords.turn() as passwords,
        staff.pool.acquire() as conn,
        conn.transaction(),
    ):
        account = await db.find_account_by_id(conn, session.account_id, lock=True)
        if account is None:
            reason = LoginOutcome.UNKNOWN_USER
        elif staff.lockout.is_locked(account.locked_until, now) and not await db.is_known_network(
            conn, account.id, network, staff.lockout.known_since(now)
        ):
            reason = LoginOutcome.ACCOUNT_LOCKED
        elif staff.lockout.network_locked(
            (await db.count_login_failures(conn, account.id, network, since)).network
        ):
            reason = LoginOutcome.LOCKED
        elif not await passwords.verify(account.password_hash, current):
            await db.record_login_failure(conn, account.id, network, now, since)
            recent = await db.count_login_failures(conn, account.id, network, since)
            reason, locked_until = staff.lockout.after_failure(
                recent.network,
                recent.account,
                now,
                account_locked=staff.lockout.is_locked(account.locked_until, now),
            )
            if locked_until is not None:
                await _lock_for_unknown_networks(
                    conn, account, locked_until, recent, actor.correlation_id, now
                )
        if reason is not None:
            await audit(
                conn,
                actor,
                now,
                action="change_password",
                entity="staff_account",
                entity_id=str(session.account_id),
                outcome="refused",
                changes={"reason": str(reason)},
            )
            if reason is not LoginOutcome.WRONG_PASSWORD:
                await db.delete_session(conn, session.id_hash)
        else:
            assert account is not None  # noqa: S101 -- no reason means the account was found
            await db.set_password(conn, account.id, await passwords.hash(new), must_change=False, now=now)
            await db.delete_sessions_of(conn, account.id, keep=session.id_hash)
            await audit(
                conn,
                actor,
                now,
                action="change_password",
                entity="staff_account",
                entity_id=str(session.account_id),
            )
    if reason is LoginOutcome.WRONG_PASSWORD:
        raise ValidationError(
            "The current password is not right.",
            details=[{"field": "current_password", "message": "wrong password"}],
        )
    if reason is not None:
        if reason is LoginOutcome.LOCKED_NOW:
            LOGIN_LOCKOUTS.labels(scope="network").inc()
        elif reason is LoginOutcome.ACCOUNT_LOCKED_NOW:
            LOGIN_LOCKOUTS.labels(scope="account").inc()
        log.warning("staff_password_guess_stopped", account_id=str(session.account_id), reason=str(reason))
        if reason in (LoginOutcome.LOCKED_NOW, LoginOutcome.ACCOUNT_LOCKED_NOW):
            raise PasswordGuessStopped("Too many wrong passwords: the session has ended.", guessed_here=True)
        raise PasswordGuessStopped(
            "The account is locked after failed sign-ins (the password was not checked): the session has "
            "ended.",
            guessed_here=False,
        )


async def purge_sessions(staff: Staff) -> int:
    """Ended sessions, failed sign-ins too old to count (with the client network they name), and the
    networks an account has not signed in from for `LockoutPolicy.known_for` (personal data: where a
    staff member works from)."""
    now = staff.clock.now()
    async with staff.pool.acquire() as conn:
        await db.delete_old_login_failures(conn, staff.lockout.counts_since(now))
        await db.delete_old_known_networks(conn, staff.lockout.known_since(now))
        return await db.delete_expired_sessions(conn, now, now - staff.sessions.idle)


# --- accounts and roles -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountView:
    id: uuid.UUID
    username: str
    display_name: str
    active: bool
    locked: bool
    must_change_password: bool
    last_login_at: datetime | None
    created_at: datetime
    demo: bool
    grants: tuple[GrantRow, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "display_name": self.display_name,
            "active": self.active,
            "locked": self.locked,
            "must_change_password": self.must_change_password,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "created_at": self.created_at.isoformat(),
            "demo": self.demo,
            "grants": [grant_json(g) for g in self.grants],
        }


def grant_json(g: GrantRow) -> dict[str, Any]:
    return {"role": str(g.role), "location": g.location, "groups": list(g.groups)}


async def _view(conn: asyncpg.Connection, account: db.Account, now: datetime) -> AccountView:
    return AccountView(
        id=account.id,
        username=account.username,
        display_name=account.display_name,
        active=account.active,
        locked=account.locked_until is not None and account.locked_until > now,
        must_change_password=account.must_change_password,
        last_login_at=account.last_login_at,
        created_at=account.created_at,
        demo=account.demo,
        grants=tuple(await db.grants_of(conn, account.id)),
    )


async def list_accounts(staff: Staff) -> list[AccountView]:
    now = staff.clock.now()
    async with staff.pool.acquire() as conn:
        return [await _view(conn, a, now) for a in await db.list_accounts(conn)]


async def get_account(staff: Staff, ref: str) -> AccountView:
    """The account `ref` names: its id, or (the admin API's deprecated form) its username."""
    async with staff.pool.acquire() as conn:
        account = await _get(conn, ref, lock=False)
        return await _view(conn, account, staff.clock.now())


async def account_id_of(staff: Staff, username: str) -> uuid.UUID:
    """The id of the account with this username (an old page address, R34); `NotFoundError` if none."""
    if is_account_id(username):
        raise NotFoundError("No such account.")
    async with staff.pool.acquire() as conn:
        return (await _get(conn, username, lock=False)).id


async def _get(conn: asyncpg.Connection, ref: str, *, lock: bool = True) -> db.Account:
    """The account of an address segment: a segment in the shape of an id is the id (no username has that
    shape: `domain.ACCOUNT_ID`), anything else a username."""
    if is_account_id(ref):
        account = await db.find_account_by_id(conn, uuid.UUID(ref), lock=lock)
    elif USERNAME.fullmatch(ref.lower()):  # else no account has such a name (nor a NUL in it)
        account = await db.find_account(conn, ref.lower(), lock=lock)
    else:
        account = None
    if account is None:
        raise NotFoundError("No such account.")
    return account


def parse_grants(raw: list[dict[str, Any]]) -> list[GrantRow]:
    rows: dict[tuple[Role, str], GrantRow] = {}
    for item in raw:
        grant = check_grant(
            str(item.get("role", "")), str(item.get("location", "*")), list(item.get("groups") or [])
        )
        rows[(grant.role, grant.location)] = grant
    return list(rows.values())


async def create_account(
    staff: Staff,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    grants: list[GrantRow],
    password: str | None = None,
    demo: bool = False,
    password_hash: str | None = None,
) -> tuple[AccountView, str | None]:
    """A new account. Without a password it gets a one-time start password (returned once) that must be
    changed at the first login."""
    name = check_username(username)
    given = password is not None
    if password is None:
        password = start_password()
    elif not demo:
        check_new_password(password, username=name, field="password")
    now = staff.clock.now()
    password_hash = password_hash or await staff.passwords.hash(password)
    async with staff.pool.acquire() as conn, conn.transaction():
        account_id = await db.insert_account(
            conn,
            username=name,
            display_name=display_name.strip()[:120],
            password_hash=password_hash,
            must_change_password=not given,
            now=now,
            demo=demo,
        )
        await db.replace_grants(conn, account_id, grants, by=actor.subject, now=now)
        await audit(
            conn,
            actor,
            now,
            action="create",
            entity="staff_account",
            entity_id=str(account_id),
            changes={"grants": [grant_json(g) for g in grants], "fields": ["display_name", "password"]},
        )
        account = await db.find_account_by_id(conn, account_id)
        assert account is not None  # noqa: S101 -- inserted in this transaction
        view = await _view(conn, account, now)
    return view, (None if given else password)


async def set_account_active(staff: Staff, actor: Actor, ref: str, active: bool) -> AccountView:
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        account = await _get(conn, ref)
        if not active and account.username == actor.subject and actor.kind == IdentityKind.USER:
            raise ConflictError("You cannot disable your own account.")
        await db.set_active(conn, account.id, active, now)
        if not active:
            await db.delete_sessions_of(conn, account.id)
        await audit(
            conn,
            actor,
            now,
            action="enable" if active else "disable",
            entity="staff_account",
            entity_id=str(account.id),
            changes={"fields": ["active"]},
        )
        return await _view(conn, await _get(conn, str(account.id), lock=False), now)


async def replace_account_grants(staff: Staff, actor: Actor, ref: str, grants: list[GrantRow]) -> AccountView:
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        account = await _get(conn, ref)
        before = await db.grants_of(conn, account.id)
        if account.username == actor.subject and not any(g.role is Role.ADMIN for g in grants):
            raise ConflictError("You cannot take the administrator role from yourself.")
        await db.replace_grants(conn, account.id, grants, by=actor.subject, now=now)
        await audit(
            conn,
            actor,
            now,
            action="grant",
            entity="staff_account",
            entity_id=str(account.id),
            changes={
                "before": [grant_json(g) for g in before],
                "after": [grant_json(g) for g in grants],
            },
        )
        return await _view(conn, account, now)


async def reset_password(staff: Staff, actor: Actor, ref: str) -> str:
    """A new one-time start password (shown once); unlocks the account and ends its sessions."""
    password = start_password()
    now = staff.clock.now()
    password_hash = await staff.passwords.hash(password)
    async with staff.pool.acquire() as conn, conn.transaction():
        account = await _get(conn, ref)
        await db.set_password(conn, account.id, password_hash, must_change=True, now=now)
        await db.delete_sessions_of(conn, account.id)
        # For a forgotten or leaked password: where the old one was used is no longer a sign of her.
        await db.forget_known_networks(conn, account.id)
        await audit(
            conn,
            actor,
            now,
            action="reset_password",
            entity="staff_account",
            entity_id=str(account.id),
            changes={"fields": ["password"]},
        )
    return password


async def staff_at_location(staff: Staff, location: str) -> list[tuple[str, uuid.UUID, GrantRow]]:
    async with staff.pool.acquire() as conn:
        return await db.grants_at_location(conn, location)


async def set_location_roles(
    staff: Staff,
    actor: Actor,
    location: str,
    username: str,
    roles: list[str],
    groups: list[str],
) -> AccountView:
    """R30: a location administrator decides who is appointment manager or group leader (of which groups)
    at their location; other roles and other locations of the account stay as they are."""
    if not username.strip():  # a form sent without the name says so, not that no such account exists
        raise ValidationError(
            "The username is required.",
            details=[{"field": "username", "message": "missing", "type": "missing"}],
        )
    grants: list[GrantRow] = []
    for role in roles:
        grant = check_grant(role, location, groups if role == Role.GROUP_LEADER else [])
        if grant.role not in LOCATION_DELEGABLE_ROLES:
            raise ValidationError(
                "At a location, only appointment managers and group leaders are granted here.",
                details=[{"field": "roles", "message": "not delegable"}],
            )
        grants.append(grant)
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        account = await _get(conn, username)
        before = [g for g in await db.grants_of(conn, account.id) if g.location == location]
        await db.replace_grants(
            conn,
            account.id,
            grants,
            by=actor.subject,
            now=now,
            only_location=location,
            only_roles=LOCATION_DELEGABLE_ROLES,
        )
        await audit(
            conn,
            actor,
            now,
            action="grant",
            entity="staff_account",
            entity_id=str(account.id),
            location=location,
            changes={
                "before": [grant_json(g) for g in before if g.role in LOCATION_DELEGABLE_ROLES],
                "after": [grant_json(g) for g in grants],
            },
        )
        return await _view(conn, account, now)


# --- API keys ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    prefix: str
    plain: str  # shown once, never stored


def key_json(key: db.ApiKey, allowance: KeyAllowance) -> dict[str, Any]:
    """A key as the admin API lists it; `allowance` is what the limiter applies to it (its own limit, or
    the settings' default when `requests_per_minute` is null)."""
    _, burst = allowance.of(key.requests_per_minute)
    return {
        "id": str(key.id),
        "prefix": key.prefix,
        "name": key.name,
        "locations": key.locations,
        "operations": key.operations,
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "requests_per_minute": key.requests_per_minute,
        "allowance": {"requests_per_minute": key.requests_per_minute or allowance.per_minute, "burst": burst},
    }


async def create_api_key(
    staff: Staff,
    actor: Actor,
    *,
    name: str,
    locations: list[str],
    operations: list[str],
    expires_at: datetime | None = None,
    requests_per_minute: int | None = None,
) -> CreatedKey:
    name = name.strip()
    if not 1 <= len(name) <= 120:
        raise ValidationError(
            "A key needs a name (1 to 120 characters).", details=[{"field": "name", "message": "length"}]
        )
    locs, ops = check_key_scope(locations, operations)
    now = staff.clock.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError(
            "The expiry lies in the past.", details=[{"field": "expires_at", "message": "in the past"}]
        )
    key = new_api_key()
    async with staff.pool.acquire() as conn, conn.transaction():
        key_id = await db.insert_api_key(
            conn,
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            name=name,
            locations=locs,
            operations=ops,
            created_by=actor.subject,
            now=now,
            expires_at=expires_at,
            requests_per_minute=requests_per_minute,
        )
        await audit(
            conn,
            actor,
            now,
            action="create",
            entity="api_key",
            entity_id=str(key_id),
            changes={
                "name": name,
                "locations": locs,
                "operations": ops,
                "requests_per_minute": requests_per_minute,
            },
        )
    return CreatedKey(key_id, key.prefix, key.plain)


async def list_api_keys(staff: Staff) -> list[db.ApiKey]:
    async with staff.pool.acquire() as conn:
        return await db.list_api_keys(conn)


def _api_key_id(key_id: str) -> uuid.UUID:
    """The id of a key named in a path; a 404 for one that cannot be an id."""
    try:
        return uuid.UUID(key_id)
    except ValueError:
        raise NotFoundError("No such API key.") from None


async def set_api_key_limit(
    staff: Staff, actor: Actor, key_id: str, requests_per_minute: int | None
) -> db.ApiKey:
    """A key's own request limit a minute, None for the settings' default (R50). Every replica applies it
    from the key's next request on: `authenticate_key` reads the key's row on every request."""
    parsed = _api_key_id(key_id)
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        key = await db.find_api_key(conn, parsed, lock=True)
        if key is None:
            raise NotFoundError("No such API key.")
        if key.revoked_at is not None:
            raise ConflictError("The API key is revoked: its limit no longer matters.")
        if key.requests_per_minute == requests_per_minute:
            return key  # nothing changed, nothing to audit
        await db.set_api_key_limit(conn, parsed, requests_per_minute)
        await audit(
            conn,
            actor,
            now,
            action="set_limit",
            entity="api_key",
            entity_id=key_id,
            changes={
                "before": {"requests_per_minute": key.requests_per_minute},
                "after": {"requests_per_minute": requests_per_minute},
            },
        )
        changed = await db.find_api_key(conn, parsed)
        assert changed is not None  # noqa: S101 -- locked above
        return changed


async def revoke_api_key(staff: Staff, actor: Actor, key_id: str) -> db.ApiKey:
    parsed = _api_key_id(key_id)
    now = staff.clock.now()
    async with staff.pool.acquire() as conn, conn.transaction():
        if not await db.revoke_api_key(conn, parsed, actor.subject, now):
            if await db.find_api_key(conn, parsed) is None:
                raise NotFoundError("No such API key.")
        else:
            await audit(conn, actor, now, action="revoke", entity="api_key", entity_id=key_id)
        key = await db.find_api_key(conn, parsed)
        assert key is not None  # noqa: S101 -- found above
        return key


class KeyRefused(UnauthenticatedError):
    """An API key that is unknown, wrong, revoked or expired; `key_id` where the prefix matched."""

    def __init__(self, reason: str, key_id: str | None) -> None:
        super().__init__("The API key is not valid.")
        self.reason = reason
        self.key_id = key_id


@dataclass(frozen=True)
class KeyCaller:
    """A valid API key's identity and its own request limit a minute (None: the default)."""

    identity: StaffIdentity
    requests_per_minute: int | None


async def authenticate_key(staff: Staff, raw: str) -> KeyCaller:
    """The identity of a valid API key: the service-centre role at the key's locations, and its
    operations (R37, R50), with the key's request limit as it is stored now (read on every request, no
    cache: a changed limit holds on every replica from the next request on). `KeyRefused` otherwise."""
    parsed = parse_api_key(raw)
    if parsed is None:
        raise KeyRefused("malformed", None)
    prefix, secret = parsed
    now = staff.clock.now()
    async with staff.pool.acquire() as conn:
        key = await db.find_api_key_by_prefix(conn, prefix)
        if key is None:
            raise KeyRefused("unknown", None)
        if not hmac.compare_digest(key.secret_hash, token_hash(secret)):
            raise KeyRefused("wrong_secret", str(key.id))
        if key.revoked_at is not None:
            raise KeyRefused("revoked", str(key.id))
        if key.expires_at is not None and key.expires_at <= now:
            raise KeyRefused("expired", str(key.id))
        await db.mark_key_used(conn, key.id, now)
    identity = StaffIdentity(
        subject=f"api-key:{key.id}",
        kind=IdentityKind.API_KEY,
        grants=(Grant(role=Role.SERVICE_CENTRE, locations=tuple(key.locations)),),
        issued_at=now,
        operations=tuple(key.operations),
        display_name=key.name,
    )
    return KeyCaller(identity, key.requests_per_minute)


# --- the audit log ----------------------------------------------------------------------------------
async def record(staff: Staff, actor: Actor, **entry: Any) -> None:
    """An audit entry in a transaction of its own (refusals; changes made by another service)."""
    async with staff.pool.acquire() as conn:
        await audit(conn, actor, staff.clock.now(), **entry)


@dataclass(frozen=True)
class LastChange:
    """Who changed a thing last and when, as the audit log has it (staff, never customers' data)."""

    actor: str  # a username or an API key's id
    kind: str  # IdentityKind
    name: str  # the account's display name or the API key's name ("" when gone)
    at: datetime


async def last_change(
    staff: Staff, entity: str, entity_id: str | None, location: str | None
) -> LastChange | None:
    async with staff.pool.acquire() as conn:
        row = await db.find_last_change(conn, entity, entity_id, location)
    if row is None:
        return None
    return LastChange(row["actor"], row["actor_kind"], row["name"], row["occurred_at"])


async def search_audit(staff: Staff, f: db.AuditFilter) -> list[dict[str, Any]]:
    async with staff.pool.acquire() as conn:
        return await db.search_audit(conn, f)


# --- who, in the audit log's filter, without a person's name ------------------------------------------
# A filter travels in an address (the page's GET form, a bookmark, the next page's link): the browser's
# history, access logs and proxies keep it. A username names the staff member (erika.muster), so the
# filter's `who` names a staff account by its opaque id, an API key as the log names it
# (`api-key:<id>`), or one of the actors that are nobody's name (R34).
AUDIT_NOBODY: dict[str, tuple[str | None, str]] = {
    # Every automatic step: `system`, `system:webhooks`, `system:create-admin`, ...
    "system": (None, "system"),
    # Refused sign-ins with a name that is no account (the name itself is never stored).
    "unknown": ("unknown", str(IdentityKind.USER)),
    # Refused API keys that named no key.
    "unknown-key": ("unknown-key", str(IdentityKind.API_KEY)),
}
API_KEY_ACTOR = "api-key:"


@dataclass(frozen=True)
class AuditActor:
    """One choice of the audit page's "who": the filter's value, and what the reviewer reads: the name
    (a display name, a key's name), the username or key prefix beside it, and whether it is out of use."""

    who: str
    name: str
    detail: str
    inactive: bool


@dataclass(frozen=True)
class AuditActors:
    accounts: tuple[AuditActor, ...]
    api_keys: tuple[AuditActor, ...]


async def audit_filter_by_who(staff: Staff, f: db.AuditFilter, who: str | None) -> db.AuditFilter:
    """`f` narrowed to the entries of `who` (see `AUDIT_NOBODY`); `ValidationError` (field `who`) for an
    account or key that does not exist or anything else."""
    if who is None:
        return f
    if who in AUDIT_NOBODY:
        actor, kind = AUDIT_NOBODY[who]
        return replace(f, actor=actor, actor_kind=kind)
    key = who.removeprefix(API_KEY_ACTOR)
    try:
        parsed = uuid.UUID(key)
    except ValueError:
        raise _no_such_actor() from None
    if key != who:
        return replace(f, actor=f"{API_KEY_ACTOR}{parsed}", actor_kind=str(IdentityKind.API_KEY))
    async with staff.pool.acquire() as conn:
        account = await db.find_account_by_id(conn, parsed)
    if account is None:
        raise _no_such_actor()
    return replace(f, actor=account.username, actor_kind=str(IdentityKind.USER))


def _no_such_actor() -> ValidationError:
    return ValidationError(
        "`who` is a staff account's id, api-key:<id>, system, unknown or unknown-key.",
        details=[{"field": "who", "message": "unknown actor"}],
    )


async def audit_who(staff: Staff, actor: str) -> str | None:
    """The `who` of an actor as the audit log names it (an old link's `actor`, a username): the account's
    id, an API key or one of `AUDIT_NOBODY` as they are; None for a name that is no account."""
    name = actor.strip().lower()
    if USERNAME.fullmatch(name):
        async with staff.pool.acquire() as conn:
            account = await db.find_account(conn, name)
        if account is not None:
            return str(account.id)
    if name in AUDIT_NOBODY:
        return name
    if name.startswith("system:"):
        return "system"
    if name.startswith(API_KEY_ACTOR):
        with contextlib.suppress(ValueError):
            return f"{API_KEY_ACTOR}{uuid.UUID(name.removeprefix(API_KEY_ACTOR))}"
    return None


async def audit_actors(staff: Staff) -> AuditActors:
    """The staff accounts and API keys the audit page offers to filter by, by name."""
    async with staff.pool.acquire() as conn:
        accounts = await db.list_accounts(conn)
        keys = await db.list_api_keys(conn)
    return AuditActors(
        accounts=tuple(
            AuditActor(str(a.id), a.display_name or a.username, a.username, not a.active) for a in accounts
        ),
        api_keys=tuple(
            AuditActor(f"{API_KEY_ACTOR}{k.id}", k.name, f"otv_{k.prefix}_…", k.revoked_at is not None)
            for k in keys
        ),
    )


async def erase_audit_addresses(staff: Staff) -> int | None:
    """Delete the client addresses older than the retention period (DSGVO: not kept longer than needed);
    the entries stay complete and unchanged (I5). The database's own function deletes them, by its own
    clock: the gateway cannot delete an address itself. None when another replica is running it now."""
    erased = 0

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal erased
        erased = await db.erase_client_addresses(conn, staff.address_retention)

    if not await with_job_lock(staff.pool, "otv.gateway.audit_address_retention", work):
        return None
    # A label of its own: the event feed's purge reports as "gateway", and must not hide a failing run here.
    RETENTION_LAST_RUN.labels(AUDIT_RETENTION_LABEL).set(staff.clock.now().timestamp())  # the alert's clock
    log.info("audit_addresses_erased", count=erased)
    return erased


# --- administrators from the command line -----------------------------------------------------------
async def ensure_account(
    staff: Staff,
    *,
    username: str,
    password: str,
    grants: list[GrantRow],
    display_name: str = "",
    demo: bool = False,
    by: str = "system",
    password_hash: str | None = None,
) -> bool:
    """Create the account, or (demo data only) set its password and grants again; True when created.
    `password_hash` (of `password`) saves the demo data one argon2 run per account."""
    name = check_username(username)
    now = staff.clock.now()
    actor = Actor(by, "system")
    async with staff.pool.acquire() as conn:
        existing = await db.find_account(conn, name)
    if existing is None:
        await create_account(
            staff,
            actor,
            username=name,
            display_name=display_name,
            grants=grants,
            password=password,
            demo=demo,
            password_hash=password_hash,
        )
        return True
    if not existing.demo:
        raise ConflictError(f"The account {name!r} exists already and is not a demo account.")
    password_hash = password_hash or await staff.passwords.hash(password)
    async with staff.pool.acquire() as conn, conn.transaction():
        await db.set_password(conn, existing.id, password_hash, must_change=False, now=now)
        await db.set_active(conn, existing.id, True, now)
        await db.replace_grants(conn, existing.id, grants, by=by, now=now)
    return False


def central_grant(role: Role) -> GrantRow:
    assert role in CENTRAL_ROLES  # noqa: S101 -- a programming error, not input
    return GrantRow(role, "*")


SESSION_PURGE_EVERY = timedelta(minutes=10)
