"""The lock-out after failed sign-ins: per client network (an IPv4 address, an IPv6 /56: one provider's
line), and bounded over all networks, so that a distributed guess is stopped all the same; that bound
spares the networks the account signed in from within 30 days, so that a stranger cannot lock out a
caseworker who signs in from a network they used before."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from prometheus_client import REGISTRY

from services.gateway.staff.service import purge_sessions
from shared.identity import Role
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory, StaffClient, account_id, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

AT_HOME = "2001:db8:66:1::17"  # the attacker's network (an IPv6 line)
AT_HOME_TOO = "2001:db8:66:1::ffff"  # another address of the same /64
JOBCENTER = "198.51.100.20"  # where the caseworker signs in
ELSEWHERE = "192.0.2.44"  # a network the caseworker never signed in from (a first day in home office)
CEILING = 20  # OTV_STAFF_LOGIN_ACCOUNT_MAX_FAILURES's default


@pytest.fixture
async def behind_ingress(make_gateway: GatewayFactory) -> Gateway:
    """A gateway behind a trusted proxy: the client's address comes from X-Forwarded-For."""
    return await make_gateway(trusted_proxies="127.0.0.1/32")


async def login_from(
    gateway: Gateway, address: str, username: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    return await gateway.client.post(
        "/api/v1/staff/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def fail_five_times(gateway: Gateway, address: str, username: str) -> None:
    for _ in range(5):
        assert (await login_from(gateway, address, username, "Sommer2026!")).status == 401


async def locked_for_unknown_networks(admin: StaffClient, username: str) -> bool:
    account = await admin.get(f"/api/v1/admin/accounts/{username}")
    assert account.status == 200
    locked: bool = (await account.json())["locked"]
    return locked


def refused_count(reason: str) -> float:
    return REGISTRY.get_sample_value("otv_staff_logins_refused_total", {"reason": reason}) or 0.0


def lockouts(scope: str) -> float:
    return REGISTRY.get_sample_value("otv_staff_login_lockouts_total", {"scope": scope}) or 0.0


async def test_five_wrong_passwords_from_another_network_do_not_lock_out_the_caseworker(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    await fail_five_times(gateway, AT_HOME, "carla")
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200


async def test_five_wrong_passwords_lock_the_account_for_their_own_network_with_the_same_answer(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    before = lockouts("network")
    refused_before = {reason: refused_count(reason) for reason in ("wrong_password", "locked_now", "locked")}
    await fail_five_times(gateway, AT_HOME, "carla")
    wrong = await login_from(gateway, JOBCENTER, "carla", "Sommer2026!")
    # Even the right password, from any address of that line, gets the answer of a wrong one.
    for address in (AT_HOME, AT_HOME_TOO):
        refused = await login_from(gateway, address, "carla")
        assert refused.status == 401
        assert await refused.json() == await wrong.json()
        assert "Set-Cookie" not in refused.headers
    assert lockouts("network") == before + 1
    # Every refusal is counted by its reason, for the alert on guessing below the lock-outs.
    assert {reason: refused_count(reason) - count for reason, count in refused_before.items()} == {
        "wrong_password": 5,
        "locked_now": 1,
        "locked": 2,
    }
    # The admin view's "locked" is the account-wide lock, which this is not.
    assert not await locked_for_unknown_networks(admin, "carla")
    gateway.clock.advance(timedelta(minutes=14))
    assert (await login_from(gateway, AT_HOME, "carla")).status == 401
    gateway.clock.advance(timedelta(minutes=2))
    assert (await login_from(gateway, AT_HOME, "carla")).status == 200
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    reasons = [r["changes"]["reason"] for r in refusals]
    assert reasons == ["wrong_password"] * 4 + ["locked_now", "wrong_password"] + ["locked"] * 3


async def test_a_successful_sign_in_clears_the_failures_of_its_own_network_only(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    for _ in range(4):  # the caseworker mistypes, then gets it right: a fresh start
        assert (await login_from(gateway, JOBCENTER, "carla", "Sommer2026!")).status == 401
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    for _ in range(4):
        assert (await login_from(gateway, JOBCENTER, "carla", "Sommer2026!")).status == 401
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    # Her sign-in does not give a guesser elsewhere a fresh allowance.
    for _ in range(4):
        assert (await login_from(gateway, AT_HOME, "carla", "Sommer2026!")).status == 401
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    assert (await login_from(gateway, AT_HOME, "carla", "Sommer2026!")).status == 401
    assert (await login_from(gateway, AT_HOME, "carla")).status == 401


async def test_ten_64s_of_one_ipv6_line_count_as_one_network(behind_ingress: Gateway) -> None:
    """A German provider hands each line a /56 (256 /64s) or more: switching /64s gives no fresh allowance
    and does not reach the account-wide ceiling."""
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    for n in range(10):  # five tries from each of ten /64s of one /56
        await fail_five_times(gateway, f"2001:db8:0:{n}::1", "carla")
    # The line is locked after its first five failures, from any of its /64s ...
    assert (await login_from(gateway, "2001:db8:0:ff::1", "carla")).status == 401
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    reasons = [r["changes"]["reason"] for r in refusals]
    assert reasons == ["wrong_password"] * 4 + ["locked_now"] + ["locked"] * 46
    # ... and for nobody else: not the next line, not a network the caseworker never used before.
    assert not await locked_for_unknown_networks(admin, "carla")
    assert (await login_from(gateway, "2001:db8:0:100::1", "carla")).status == 200
    assert (await login_from(gateway, ELSEWHERE, "carla")).status == 200


async def test_twenty_failures_from_many_networks_lock_the_account_for_networks_it_does_not_know(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    before = lockouts("account")
    for n in range(3):  # a distributed guess: five tries from each of four networks
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    for _ in range(4):
        assert (await login_from(gateway, "203.0.113.4", "carla", "Sommer2026!")).status == 401
    assert not await locked_for_unknown_networks(admin, "carla")  # 19 failures: not yet
    assert (await login_from(gateway, "203.0.113.4", "carla", "Sommer2026!")).status == 401
    refused = await login_from(gateway, ELSEWHERE, "carla")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthenticated"
    assert await locked_for_unknown_networks(admin, "carla")
    page = await admin.get(f"/staff/admin/accounts/{await account_id(gateway, 'carla')}")
    assert "vorübergehend für unbekannte Netze gesperrt" in await page.text()
    assert lockouts("account") == before + 1
    # The audit log says so under the account: how many failures and networks, never which.
    [lock] = await audit_rows(gateway, action="lock", entity="staff_account")
    assert (lock["actor"], lock["entity_id"], lock["ip"]) == (
        "system",
        await account_id(gateway, "carla"),
        None,
    )
    assert lock["changes"]["failures"] == CEILING and lock["changes"]["networks"] == 4
    assert "203.0.113" not in str(lock["changes"])
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    assert [r["changes"]["reason"] for r in refusals][-2:] == ["account_locked_now", "account_locked"]
    # It ends after the lock-out, like the lock of one network.
    gateway.clock.advance(timedelta(minutes=15, seconds=1))
    assert not await locked_for_unknown_networks(admin, "carla")
    assert (await login_from(gateway, ELSEWHERE, "carla")).status == 200


async def test_a_network_the_caseworker_signed_in_from_lately_still_gets_in_during_the_lock(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    gateway.clock.advance(timedelta(days=29))
    for n in range(4):  # the ceiling: five tries from each of four networks
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    assert (await login_from(gateway, ELSEWHERE, "carla")).status == 401  # an unknown network
    # At the jobcenter, where she signed in 29 days ago, the right password still works ...
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    # ... and only that network's own five failures lock it there, without a second account-wide lock.
    await fail_five_times(gateway, JOBCENTER, "carla")
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 401
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    assert [r["changes"]["reason"] for r in refusals][-6:] == ["wrong_password"] * 4 + [
        "locked_now",
        "locked",
    ]
    assert len(await audit_rows(gateway, action="lock", entity="staff_account")) == 1


async def test_a_network_is_known_for_thirty_days_after_the_last_sign_in_then_forgotten(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200

    async def kept() -> int:
        count: int = await gateway.staff.pool.fetchval("SELECT count(*) FROM staff_known_networks")
        return count

    gateway.clock.advance(timedelta(days=29, hours=23))
    await purge_sessions(gateway.staff)
    assert await kept() == 1
    gateway.clock.advance(timedelta(hours=1, seconds=1))
    for n in range(4):
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    # Thirty days without a sign-in from there: the jobcenter is a network like any other.
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 401
    # Where a staff member works from is personal data: the periodic purge deletes it.
    await purge_sessions(gateway.staff)
    assert await kept() == 0


async def test_how_long_a_network_stays_known_is_a_setting(make_gateway: GatewayFactory) -> None:
    """An operator whose caseworkers are away longer (a course, parental leave) keeps networks longer;
    one who wants less kept about where staff work from shortens it."""
    gateway = await make_gateway(trusted_proxies="127.0.0.1/32", staff_login_known_network_days=7)
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200
    gateway.clock.advance(timedelta(days=7, seconds=1))
    for n in range(4):
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 401
    await purge_sessions(gateway.staff)
    assert await gateway.staff.pool.fetchval("SELECT count(*) FROM staff_known_networks") == 0


async def test_an_administrators_new_start_password_lifts_every_lock(behind_ingress: Gateway) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    assert (await login_from(gateway, ELSEWHERE, "carla")).status == 200  # e.g. where her password leaked
    for n in range(4):
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    assert await locked_for_unknown_networks(admin, "carla")
    reset = await admin.post("/api/v1/admin/accounts/carla/reset-password")
    assert reset.status == 200
    start_password = (await reset.json())["start_password"]
    assert not await locked_for_unknown_networks(admin, "carla")
    # Also from a network that had used up its own allowance.
    assert (await login_from(gateway, "203.0.113.1", "carla", start_password)).status == 200
    # A reset is for a forgotten or leaked password: the networks known before it are known no longer,
    # so a later lock spares only where she signs in with the new password.
    known = await gateway.staff.pool.fetch(
        "SELECT network FROM staff_known_networks JOIN staff_accounts a ON a.id = account_id"
        " WHERE a.username = 'carla'"
    )
    assert [r["network"] for r in known] == ["203.0.113.1"]


async def test_failed_sign_ins_and_their_networks_are_not_kept_beyond_the_lock_out(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    await fail_five_times(gateway, AT_HOME, "carla")
    await fail_five_times(gateway, "203.0.113.1", "carla")

    async def kept() -> int:
        count: int = await gateway.staff.pool.fetchval("SELECT count(*) FROM staff_login_failures")
        return count

    assert await kept() == 10
    gateway.clock.advance(timedelta(minutes=10))
    await purge_sessions(gateway.staff)
    assert await kept() == 10  # still counting
    gateway.clock.advance(timedelta(minutes=5, seconds=1))
    await purge_sessions(gateway.staff)  # the periodic job of every replica
    assert await kept() == 0
