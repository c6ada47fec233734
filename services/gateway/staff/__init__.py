"""Staff access of the gateway (issue 7): accounts and roles per location, sessions, API keys, the audit
log, the authorisation of every staff and admin route (`rules.py`, applied by `authz.py`), and the
server-rendered admin pages.

`setup_staff(app)` is the one entry point the composition root calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import asyncpg
from aiohttp import web

from services.gateway.config import Settings
from services.gateway.cookies import cookie_name
from services.gateway.origins import origin_of
from services.gateway.rate_limit import RateLimiter
from services.gateway.staff import api, authz, day_capacity, deprecation, keys, pages
from services.gateway.staff.catalog_index import CATALOG_INDEX, CatalogIndex
from services.gateway.staff.domain import FailureThrottle, KeyAllowance, LockoutPolicy, SessionPolicy
from services.gateway.staff.forwarding import make_forwarder
from services.gateway.staff.mail_languages import MAIL_LANGUAGES, MailLanguages
from services.gateway.staff.readiness import AuditLogReadiness
from services.gateway.staff.rules import FORWARDED, is_staff_path, rule_table
from services.gateway.staff.service import Passwords, Staff, erase_audit_addresses, purge_sessions
from shared.background import periodic_context
from shared.clock import Clock
from shared.web import CLOCK, POOL, READY_CHECKS, SETTINGS


def setup_staff(app: web.Application) -> None:
    settings = app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    table = rule_table()
    app[keys.RULES] = table
    app[CATALOG_INDEX] = CatalogIndex()
    app[MAIL_LANGUAGES] = MailLanguages()
    app[keys.ALLOWED_ORIGINS] = frozenset({origin_of(settings.public_base_url)})
    app[keys.SESSION_COOKIE] = cookie_name(
        authz.COOKIE, settings.public_base_url, secure=settings.staff_cookie_secure
    )
    app.middlewares.append(authz.staff_middleware)
    deprecation.setup_deprecation(app)  # the admin API's username form says it is deprecated

    app.router.add_routes(api.routes)
    pages.setup_pages(app)
    for route in FORWARDED:
        make = day_capacity.make_apply_handler if route.saves_day_capacity else make_forwarder
        app.router.add_route(route.method, route.path, make(route))
    _check_every_own_route_has_a_rule(app, table)

    audit_log_ready = AuditLogReadiness()
    app[READY_CHECKS].append(audit_log_ready)

    async def start(app: web.Application) -> None:
        app[keys.STAFF] = build_staff(settings, app[POOL], app[CLOCK])
        await audit_log_ready(app)  # logs a missed bootstrap at once, not only at the first probe

    # After the cleanup contexts (the database pool) have started: aiohttp runs them first.
    app.on_startup.append(start)
    app.cleanup_ctx.append(periodic_context("staff-session-purge", 600, _purge, first_delay=60))
    app.cleanup_ctx.append(
        periodic_context(
            "audit-address-retention", settings.retention_interval_seconds, _erase_addresses, first_delay=30
        )
    )


def build_staff(settings: Settings, pool: asyncpg.Pool, clock: Clock) -> Staff:
    return Staff(
        pool=pool,
        clock=clock,
        sessions=SessionPolicy(
            idle=timedelta(minutes=settings.staff_session_idle_minutes),
            absolute=timedelta(hours=settings.staff_session_absolute_hours),
        ),
        lockout=LockoutPolicy(
            max_failures=settings.staff_login_max_failures,
            lockout=timedelta(minutes=settings.staff_login_lockout_minutes),
            max_account_failures=settings.staff_login_account_max_failures,
            known_for=timedelta(days=settings.staff_login_known_network_days),
        ),
        throttle=FailureThrottle(limit=settings.staff_login_ip_max_failures),
        key_throttle=FailureThrottle(
            limit=settings.staff_key_refusals_per_minute, window=timedelta(minutes=1)
        ),
        refusal_throttle=FailureThrottle(
            limit=settings.staff_refusals_per_minute, window=timedelta(minutes=1)
        ),
        key_requests=RateLimiter(
            rate=settings.api_key_requests_per_minute / 60,
            burst=settings.api_key_burst,
            enabled=settings.bot_defence,  # OTV_BOT_DEFENCE=off: no rate limits (tests, load tests)
        ),
        key_allowance=KeyAllowance(
            per_minute=settings.api_key_requests_per_minute, burst=settings.api_key_burst
        ),
        address_retention=timedelta(days=settings.audit_address_retention_days),
        passwords=Passwords(
            concurrent=settings.staff_password_checks, wait_seconds=settings.staff_password_wait_seconds
        ),
    )


async def _purge(app: web.Application) -> None:
    await purge_sessions(app[keys.STAFF])


async def _erase_addresses(app: web.Application) -> None:
    await erase_audit_addresses(app[keys.STAFF])


def _check_every_own_route_has_a_rule(app: web.Application, table: Mapping[tuple[str, str], object]) -> None:
    """A staff route registered without a rule would be refused at run time; better to fail at start."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        path = resource.canonical
        if is_staff_path(path) and (route.method, path) not in table:
            raise RuntimeError(f"staff route without an authorisation rule: {route.method} {path}")
