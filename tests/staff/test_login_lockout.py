"""The lock-out after failed sign-ins: per client network, so that nobody on the internet can lock out a
caseworker, and bounded over all networks, so that a distributed guess is stopped all the same."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest
from prometheus_client import REGISTRY

from services.gateway.staff.service import purge_sessions
from shared.identity import Role
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory, StaffClient, audit_rows

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

AT_HOME = "2001:db8:66:1::17"  # the attacker's network (an IPv6 /64)
AT_HOME_TOO = "2001:db8:66:1::ffff"  # another address of the same /64
JOBCENTER = "198.51.100.20"  # where the caseworker signs in


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


async def locked_for_everyone(admin: StaffClient, username: str) -> bool:
    account = await admin.get(f"/api/v1/admin/accounts/{username}")
    assert account.status == 200
    locked: bool = (await account.json())["locked"]
    return locked


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
    await fail_five_times(gateway, AT_HOME, "carla")
    wrong = await login_from(gateway, JOBCENTER, "carla", "Sommer2026!")
    # Even the right password, from any address of that /64, gets the answer of a wrong one.
    for address in (AT_HOME, AT_HOME_TOO):
        refused = await login_from(gateway, address, "carla")
        assert refused.status == 401
        assert await refused.json() == await wrong.json()
        assert "Set-Cookie" not in refused.headers
    assert lockouts("network") == before + 1
    # The admin view's "locked" is the lock for everyone, which this is not.
    assert not await locked_for_everyone(admin, "carla")
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


async def test_fifty_failures_from_many_networks_lock_the_account_for_everyone(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    before = lockouts("account")
    for n in range(10):  # a distributed guess: five tries from each of ten networks
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    refused = await login_from(gateway, JOBCENTER, "carla")
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthenticated"
    assert await locked_for_everyone(admin, "carla")
    page = await admin.get("/staff/admin/accounts/carla")
    assert "vorübergehend für alle gesperrt" in await page.text()
    assert lockouts("account") == before + 1
    # The audit log says so under the account: how many failures and networks, never which.
    [lock] = await audit_rows(gateway, action="lock", entity="staff_account")
    assert (lock["actor"], lock["entity_id"], lock["ip"]) == ("system", "carla", None)
    assert lock["changes"]["failures"] == 50 and lock["changes"]["networks"] == 10
    assert "203.0.113" not in str(lock["changes"])
    refusals = await audit_rows(gateway, actor="carla", action="login", outcome="refused")
    assert [r["changes"]["reason"] for r in refusals][-2:] == ["account_locked_now", "account_locked"]
    # It ends after the lock-out, like the lock of one network.
    gateway.clock.advance(timedelta(minutes=15, seconds=1))
    assert not await locked_for_everyone(admin, "carla")
    assert (await login_from(gateway, JOBCENTER, "carla")).status == 200


async def test_an_administrators_new_start_password_lifts_every_lock(behind_ingress: Gateway) -> None:
    gateway = behind_ingress
    await gateway.account("carla", (Role.APPOINTMENT_MANAGER, "mitte"))
    admin = await gateway.signed_in("the-admin", (Role.ADMIN, "*"))
    for n in range(10):
        await fail_five_times(gateway, f"203.0.113.{n + 1}", "carla")
    assert await locked_for_everyone(admin, "carla")
    reset = await admin.post("/api/v1/admin/accounts/carla/reset-password")
    assert reset.status == 200
    start_password = (await reset.json())["start_password"]
    assert not await locked_for_everyone(admin, "carla")
    # Also from a network that had used up its own allowance.
    assert (await login_from(gateway, "203.0.113.1", "carla", start_password)).status == 200


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
