"""Dead letters end to end (invariant I4): an event the notifier cannot apply, whatever it retries, ends in
its dead letters; an administrator sees it through the gateway (without the customer's data), fixes the
cause and replays it, and the customer gets the confirmation once."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid

import aiohttp
import pytest

from tests.conftest import wait_for
from tests.faults.system import ROOT, System, book, mails_to

PASSWORD = "a long and careful password for the fault tests"
COOKIE = "otv_staff_session"


async def _admin_session(http: aiohttp.ClientSession, system: System) -> dict[str, str]:
    """An administrator created with the gateway's own command, signed in like a browser."""
    username = f"faults-admin-{uuid.uuid4().hex[:6]}"
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.gateway", "create-admin", username, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=system.services["gateway"].env,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    async with http.post(
        f"{system.gateway}/api/v1/staff/login", json={"username": username, "password": PASSWORD}
    ) as response:
        assert response.status == 200, await response.text()
        cookie = response.cookies[COOKIE].value
    # A cookie-authenticated write carries its own origin (the CSRF check of the staff API).
    return {"Cookie": f"{COOKIE}={cookie}", "Origin": system.gateway}


@pytest.mark.req("R51")
async def test_an_event_that_keeps_failing_is_a_dead_letter_an_administrator_sees_and_replays(
    system: System,
) -> None:
    await system.wait_ready()
    notifier = system.pools["notifier"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        admin = await _admin_session(http, system)
        # The cause: the notifier's copy of the appointments is out of reach (as after a bad migration).
        await notifier.execute("ALTER TABLE appointments RENAME TO appointments_out_of_reach")
        try:
            attempt = await book(http, system, "dead", 1)
            assert attempt.status == 201

            async def dead_letter() -> int | None:
                found: int | None = await notifier.fetchval(
                    "SELECT id FROM dead_letters WHERE event_type = 'appointment.booked'"
                    " AND replayed_at IS NULL ORDER BY id DESC LIMIT 1"
                )
                return found

            dead_id = await wait_for(dead_letter, timeout=30, what="the event among the dead letters")
        finally:
            await notifier.execute("ALTER TABLE appointments_out_of_reach RENAME TO appointments")
        assert not mails_to(system.sink, "dead")

        listed_url = f"{system.gateway}/api/v1/admin/notifier/dead-letters"
        async with http.get(listed_url, headers=admin) as response:
            assert response.status == 200, await response.text()
            text = await response.text()
        listed = {row["id"]: row for row in json.loads(text)}
        assert listed[dead_id]["consumer"] == "notifier.appointments"
        assert listed[dead_id]["event_type"] == "appointment.booked"
        assert "UndefinedTable" in listed[dead_id]["reason"]
        assert attempt.email not in text  # the list shows no personal data

        # Nobody else may see or replay them.
        async with http.get(listed_url) as response:
            assert response.status == 401

        async with http.post(f"{listed_url}/{dead_id}/replay", headers=admin) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["status"] == "replayed"
        async with http.post(f"{listed_url}/{dead_id}/replay", headers=admin) as response:
            assert response.status == 404  # replayed once, not twice

        await wait_for(lambda: mails_to(system.sink, "dead"), timeout=30, what="the mail after the replay")
        async with http.get(listed_url, headers=admin) as response:
            assert dead_id not in {row["id"] for row in await response.json()}
    await asyncio.sleep(1.0)
    assert len(mails_to(system.sink, "dead")[attempt.email]) == 1


@pytest.mark.req("R51")
@pytest.mark.parametrize(
    ("service", "table", "applied"),
    [
        ("reporting", "appointments", "SELECT count(*) FROM appointments WHERE id = $1::uuid"),
        (
            "gateway",
            "event_feed",
            "SELECT count(*) FROM event_feed"
            " WHERE order_key = 'appointment:' || $1 AND type = 'appointment.booked'",
        ),
    ],
)
async def test_the_dead_letters_of_reporting_and_the_gateway_are_listed_and_replayed_too(
    system: System, service: str, table: str, applied: str
) -> None:
    """Every consumer's dead letters reach the administrators, not only the notifier's: reporting's read
    model and the gateway's event feed (integrations) each keep theirs and replay them on request."""
    await system.wait_ready()
    pool = system.pools[service]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        admin = await _admin_session(http, system)
        listed_url = f"{system.gateway}/api/v1/admin/{service}/dead-letters"
        async with http.get(listed_url, headers=admin) as response:
            assert response.status == 200, await response.text()
            before = {row["id"] for row in await response.json()}
        await pool.execute(f"ALTER TABLE {table} RENAME TO {table}_out_of_reach")
        try:
            attempt = await book(http, system, f"dead-{service}", 1)
            assert attempt.status == 201
            appointment_id = attempt.appointment_id

            async def dead_letter() -> int | None:
                async with http.get(listed_url, headers=admin) as response:
                    rows = [r for r in await response.json() if r["id"] not in before]
                booked = [r["id"] for r in rows if r["event_type"] == "appointment.booked"]
                return booked[-1] if booked else None

            dead_id = await wait_for(
                dead_letter, timeout=30, what=f"the event among {service}'s dead letters"
            )
        finally:
            await pool.execute(f"ALTER TABLE {table}_out_of_reach RENAME TO {table}")
        assert await pool.fetchval(applied, appointment_id) == 0

        # The administrators' page lists it (what and why, no customer data) with its replay button.
        async with http.get(f"{system.gateway}/staff/admin/dead-letters", headers=admin) as response:
            assert response.status == 200, await response.text()
            page = await response.text()
        replay_path = f"/staff/admin/dead-letters/{service}/{dead_id}/replay"
        assert f'action="{replay_path}"' in page and "UndefinedTable" in page
        assert attempt.email not in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = {"csrf_token": token.group(1)}
        if service == "gateway":  # replayed from the page, the reporting one through the API
            async with http.post(
                f"{system.gateway}{replay_path}", data=form, headers=admin, allow_redirects=False
            ) as response:
                assert response.status == 303, await response.text()
        else:
            async with http.post(f"{listed_url}/{dead_id}/replay", headers=admin) as response:
                assert response.status == 200, await response.text()
        async with http.post(f"{listed_url}/{dead_id}/replay", headers=admin) as response:
            assert response.status == 404  # replayed once, not twice
        async with http.post(f"{system.gateway}{replay_path}", data=form, headers=admin) as response:
            assert response.status == 404 and "<html" in await response.text()  # the page says so

        async def applied_once() -> bool:
            return bool(await pool.fetchval(applied, appointment_id) == 1)

        await wait_for(applied_once, timeout=30, what=f"{service} applying the replayed event")
    # booking's list answers too (its consumer takes the catalog's events).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        admin = await _admin_session(http, system)
        async with http.get(f"{system.gateway}/api/v1/admin/booking/dead-letters", headers=admin) as response:
            assert response.status == 200, await response.text()
            assert isinstance(await response.json(), list)
