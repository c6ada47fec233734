"""The first administrator from a command (never a default password), and the demo logins that only the
demo data creates (`python -m services.gateway create-admin` / `load-demo`)."""

from __future__ import annotations

import asyncio
import io
import os
import sys

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.gateway.config import Settings as GatewaySettings
from services.gateway.staff import commands
from services.gateway.staff.demo import DEMO_LOCATIONS, demo_accounts
from tests.conftest import svc_settings
from tests.staff.conftest import Gateway

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to staff access.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def _run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        *args,
        cwd=ROOT,
        env={**os.environ, "OTV_LOG_JSON": "false", **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def _login(client: TestClient, username: str, password: str) -> int:  # type: ignore[type-arg]
    response = await client.post("/api/v1/staff/login", json={"username": username, "password": password})
    return response.status


async def _create_admin(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    """The command in-process, with a piped (not a terminal) standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    settings = svc_settings(GatewaySettings)
    return await commands.create_admin(settings, list(args))


@pytest.mark.req("R31")
async def test_create_admin_takes_the_password_from_stdin_and_never_has_a_default(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OTV_ADMIN_PASSWORD", raising=False)
    assert await _create_admin(monkeypatch, "chefin") == 2
    assert "No password" in capsys.readouterr().err
    assert await _create_admin(monkeypatch, "chefin", stdin="kurz\n") == 2
    assert "12 characters" in capsys.readouterr().err
    assert await _create_admin(monkeypatch, "Not A Name!", stdin="ein langes geheimes Wort\n") == 2
    # The real command line, as an operator runs it.
    code, out = await _run("create-admin", "chefin", "--password-stdin", stdin="ein langes geheimes Wort\n")
    assert code == 0, out
    response = await gateway.client.post(
        "/api/v1/staff/login", json={"username": "chefin", "password": "ein langes geheimes Wort"}
    )
    assert response.status == 200
    assert (await response.json())["must_change_password"] is False
    me = gateway.browser()
    await me.login("chefin", "ein langes geheimes Wort")
    assert (await (await me.get("/api/v1/staff/me")).json())["grants"][0]["role"] == "admin"
    # An existing account is never overwritten.
    assert await _create_admin(monkeypatch, "chefin", stdin="ein anderes langes Wort\n") == 1
    assert "exists already" in capsys.readouterr().err
    assert await _login(gateway.client, "chefin", "ein langes geheimes Wort") == 200


async def test_there_are_no_staff_logins_until_the_demo_data_is_loaded(
    gateway: Gateway, staff_db: asyncpg.Pool
) -> None:
    assert await staff_db.fetchval("SELECT count(*) FROM staff_accounts") == 0
    assert await _login(gateway.client, "demo-admin", "otv-demo") == 401


@pytest.mark.req("R28")
@pytest.mark.req("R31")
async def test_load_demo_creates_the_demo_logins_of_every_role_with_the_demo_password(
    gateway: Gateway, staff_db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await _run("load-demo", env={"OTV_DEMO_PASSWORD": "demo-pass-for-the-test"})
    assert code == 0, out
    expected = {name for name, _ in demo_accounts(list(DEMO_LOCATIONS))}
    assert {
        "demo-admin",
        "demo-statistics",
        "demo-audit",
        "mitte-manager",
        "nord-leader",
        "jba-admin",
    } <= expected
    rows = await staff_db.fetch("SELECT username, demo FROM staff_accounts")
    assert {r["username"] for r in rows} == expected
    assert all(r["demo"] for r in rows)
    assert await _login(gateway.client, "mitte-admin", "demo-pass-for-the-test") == 200
    me = gateway.browser()
    await me.login("nord-leader", "demo-pass-for-the-test")
    grants = (await (await me.get("/api/v1/staff/me")).json())["grants"]
    assert grants == [{"role": "group_leader", "locations": ["nord"], "groups": []}]
    # Idempotent: a second run (in-process here) creates nothing new.
    settings = svc_settings(GatewaySettings, demo_password="demo-pass-for-the-test")
    assert await commands.load_demo(settings, []) == 0
    assert "(0 new)" in capsys.readouterr().out
    assert await staff_db.fetchval("SELECT count(*) FROM staff_accounts") == len(expected)


def test_the_demo_locations_match_the_catalogs_demo_data() -> None:
    from services.catalog.demo_data import LOCATIONS

    assert [loc["id"] for loc in LOCATIONS] == list(DEMO_LOCATIONS)
