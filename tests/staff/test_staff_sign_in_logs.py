"""R34: a staff account's username names an employee (erika.muster). The gateway's log lines about
sign-ins, lock-outs and password changes name the account by its opaque id, never by its username; a
sign-in with a name that is no account names nothing at all (the typed name may be anybody's, or a
password typed into the wrong field)."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from shared.identity import Role
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory
from tests.staff.test_login_lockout import fail_five_times, login_from

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.fixture
async def behind_ingress(make_gateway: GatewayFactory) -> Gateway:
    """A gateway behind a trusted proxy: the client's address comes from X-Forwarded-For."""
    return await make_gateway(trusted_proxies="127.0.0.1/32")


async def account_id(gateway: Gateway, username: str) -> str:
    found = await gateway.staff.pool.fetchval("SELECT id FROM staff_accounts WHERE username = $1", username)
    assert found is not None
    return str(found)


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


@pytest.mark.req("R34")
async def test_sign_ins_and_a_lock_out_are_logged_with_the_accounts_id_not_its_username(
    behind_ingress: Gateway,
) -> None:
    gateway = behind_ingress
    username = f"erika.muster-{uuid.uuid4().hex[:6]}"
    stranger = f"max.mustermann-{uuid.uuid4().hex[:6]}"
    await gateway.account(username, (Role.APPOINTMENT_MANAGER, "mitte"))
    opaque = await account_id(gateway, username)
    with structlog.testing.capture_logs() as logs:
        assert (await login_from(gateway, "198.51.100.20", username)).status == 200
        # A distributed guess: five wrong passwords from each of four networks lock the account.
        for n in range(4):
            await fail_five_times(gateway, f"203.0.113.{n + 1}", username)
        assert (await login_from(gateway, "192.0.2.44", stranger)).status == 401
    [signed_in] = events(logs, "staff_login")
    assert signed_in["account_id"] == opaque
    [locked] = events(logs, "staff_account_locked")
    assert locked["account_id"] == opaque
    # Each refusal names the account it counts against; the name that is no account, nothing.
    refused = events(logs, "staff_login_refused")
    assert [r["account_id"] for r in refused] == [opaque] * 20 + [None]
    assert refused[-1]["reason"] == "unknown_user"
    assert logs and all(username not in str(entry) for entry in logs)
    assert all(stranger not in str(entry) for entry in logs)


@pytest.mark.req("R34")
async def test_a_password_guess_stopped_on_a_password_change_is_logged_with_the_accounts_id(
    gateway: Gateway,
) -> None:
    username = f"erika.muster-{uuid.uuid4().hex[:6]}"
    thief = await gateway.signed_in(username, (Role.APPOINTMENT_MANAGER, "mitte"))
    opaque = await account_id(gateway, username)
    with structlog.testing.capture_logs() as logs:
        answers = [
            (
                await thief.post(
                    "/api/v1/staff/password",
                    json={"current_password": f"guess {n}", "new_password": "a much better secret"},
                )
            ).status
            for n in range(5)
        ]
        assert (await gateway.browser().login(username, PASSWORD)).status == 401
    assert answers == [422] * 4 + [401]
    [stopped] = events(logs, "staff_password_guess_stopped")
    assert stopped["account_id"] == opaque and stopped["reason"] == "locked_now"
    assert logs and all(username not in str(entry) for entry in logs)
