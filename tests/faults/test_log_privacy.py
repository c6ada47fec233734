"""No personal data and no secrets in any log line or metric label (R34, R51, R52): the whole of OTV runs
as real processes (tests/faults/system.py), a customer, the service centre and an administrator go
through their flows, with mistakes and errors on the way, and every byte each process writes (our
structlog lines, aiohttp's and the other libraries' stdlib loggers, warnings, anything on stderr) and
every service's /metrics is searched for the customer's name, e-mail address, phone, customer and BG
numbers, street, a staff username, manage and wish tokens, session cookies, API keys and passwords."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from yarl import URL

from shared.clock import BERLIN
from tests.conftest import wait_for
from tests.faults.system import CONCERN, LOCATION, ROOT, System

PASSWORD = "ein sehr geheimes Passwort 42"


async def _create_admin(system: System, username: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        "create-admin",
        username,
        "--password-stdin",
        cwd=ROOT,
        env=system.services["gateway"].env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(f"{PASSWORD}\n".encode())
    assert process.returncode == 0, out.decode()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str | URL, **kwargs: Any
) -> tuple[int, dict[str, Any] | str]:
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        text = await response.text()
        try:
            return response.status, await response.json(content_type=None)
        except ValueError:
            return response.status, text


def _log_text(system: System) -> dict[str, str]:
    return {name: s.log.read_text(encoding="utf-8", errors="replace") for name, s in system.services.items()}


@pytest.mark.req("R34")
@pytest.mark.req("R51")
async def test_no_log_line_or_metric_label_of_any_service_holds_personal_data_or_a_secret(
    system: System,
) -> None:
    await system.wait_ready()
    tag = uuid.uuid4().hex[:8]
    gw = system.gateway
    origin = {"Origin": gw}
    customer = {
        "first_name": f"Zoraida{tag}",
        "last_name": f"Quastenberg{tag}",
        "email": f"zoraida.{tag}@privacy.invalid",
        "phone": "0421 3344556",
        "customer_number": "777X123456",
        "household_number": "77712BG3456789",
    }
    admin = f"adm.privacy{tag}"
    employee = f"erika.musterfrau{tag}"
    street, postcode = f"Geheimweg{tag}", "28757"
    secrets: dict[str, str] = {
        "first name": customer["first_name"],
        "last name": customer["last_name"],
        "e-mail": customer["email"],
        "e-mail local part": customer["email"].split("@")[0],
        "phone": "3344556",
        "customer number": customer["customer_number"],
        "household number": customer["household_number"],
        "street": street,
        "admin username": admin,
        "staff username": employee,
        "password": PASSWORD,
    }
    await _create_admin(system, admin)

    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        # The finder, by API and page, with a street, house number and postcode in the query.
        address = {"street": street, "house_number": "7", "postcode": postcode}
        status, _ = await _call(http, "GET", f"{gw}/api/v1/finder", params=address)
        assert status == 200
        await _call(http, "GET", f"{gw}/finder", params=address)

        # A booking with name, e-mail and phone; a mistake first (422 naming the e-mail field).
        body = {
            "location_id": LOCATION,
            "concern_id": CONCERN,
            "start": system.next_slot(),
            "mode": "in_person",
            "customer": {**customer, "email": customer["email"].replace("@", " at ")},
        }
        status, _ = await _call(http, "POST", f"{gw}/api/v1/appointments", json=body)
        assert status == 422
        body["customer"] = customer
        status, booked = await _call(http, "POST", f"{gw}/api/v1/appointments", json=body)
        assert status == 201, booked
        assert isinstance(booked, dict)
        appointment, manage_url = booked["id"], booked["manage_url"]
        token = manage_url.split("token=", 1)[1]
        secrets["manage token"] = token
        await wait_for(
            lambda: any(customer["email"] in m.envelope_to for m in system.sink.messages),
            timeout=30,
            what="the confirmation mail",
        )

        # The manage link, its pages and the API with the token in the query and in the header.
        for page in ("", "/cancel", "/reschedule"):
            await _call(http, "GET", f"{gw}/manage/{appointment}{page}", params={"token": token})
        status, _ = await _call(
            http, "GET", f"{gw}/api/v1/appointments/{appointment}", params={"token": token}
        )
        assert status == 200
        # A wrong token, and a token for an appointment that does not exist.
        wrong = f"wrong{tag}token"
        secrets["wrong token"] = wrong
        status, _ = await _call(
            http, "GET", f"{gw}/api/v1/appointments/{appointment}", params={"token": wrong}
        )
        assert status in (403, 404)
        await _call(http, "GET", f"{gw}/manage/{uuid.uuid4()}", params={"token": wrong})
        await _call(http, "GET", f"{gw}/manage/not-an-id", params={"token": token})
        status, moved = await _call(
            http,
            "POST",
            f"{gw}/api/v1/appointments/{appointment}/reschedule",
            json={"start": system.next_slot()},
            headers={"X-Manage-Token": token},
        )
        assert status == 200, moved
        status, _ = await _call(
            http, "POST", f"{gw}/api/v1/appointments/{appointment}/cancel", params={"token": token}
        )
        assert status == 200

        # The waiting list, with the same person's data; then the wish's own link.
        today = datetime.now(BERLIN).date()
        wish = {
            "location_id": LOCATION,
            "concern_id": CONCERN,
            "mode": "in_person",
            "weekdays": [0, 1, 2, 3, 4],
            "latest_date": (today + timedelta(days=30)).isoformat(),
            "customer": customer,
        }
        status, wished = await _call(http, "POST", f"{gw}/api/v1/waiting-list", json=wish)
        assert status in (201, 202, 409), (
            wished
        )  # 409: slots are free (the request went through all the same)
        # Queries and paths that carry personal data by mistake: a 404 and a 422 with them.
        await _call(
            http, "GET", f"{gw}/api/v1/nowhere/{customer['email']}", params={"email": customer["email"]}
        )
        await _call(
            http,
            "GET",
            f"{gw}/api/v1/locations/{LOCATION}/availability",
            params={"concern": customer["last_name"], "from": date.max.isoformat(), "to": customer["email"]},
        )

    # Staff: a wrong password, a sign-in, account administration by the deprecated username addresses,
    # an API key and a booking by the service centre with the customer and household numbers.
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as staff:
        status, _ = await _call(
            staff, "POST", f"{gw}/api/v1/staff/login", json={"username": employee, "password": PASSWORD + "x"}
        )
        assert status == 401
        async with staff.post(
            f"{gw}/api/v1/staff/login", json={"username": admin, "password": PASSWORD}
        ) as response:
            assert response.status == 200
            # The session cookie is `Secure`: aiohttp's jar keeps it from http://, so it is sent by hand.
            session = {name: morsel.value for name, morsel in response.cookies.items()}
        secrets.update({f"cookie {name}": value for name, value in session.items()})
        origin["Cookie"] = "; ".join(f"{name}={value}" for name, value in session.items())
        staff.headers.update({"Cookie": origin["Cookie"]})
        status, created = await _call(
            staff,
            "POST",
            f"{gw}/api/v1/admin/accounts",
            json={"username": employee, "display_name": "Erika Musterfrau", "grants": []},
            headers=origin,
        )
        assert status == 201, created
        for path in (
            f"/api/v1/admin/accounts/{employee}",
            f"/staff/admin/accounts/{employee}",
            f"/api/v1/admin/accounts/{employee}/grants",
            f"/staff/admin/accounts/{employee}/edit",
        ):
            await _call(staff, "GET", f"{gw}{path}")
        # A password reset by the deprecated username address: the one-time start password is a secret too.
        status, reset = await _call(
            staff, "POST", f"{gw}/api/v1/admin/accounts/{employee}/reset-password", headers=origin
        )
        assert status == 200, reset
        assert isinstance(reset, dict)
        secrets["start password"] = reset["start_password"]
        # The deprecated addresses by username still work: the account by API, a redirect to its page.
        status, _ = await _call(staff, "GET", f"{gw}/api/v1/admin/accounts/{employee}")
        assert status == 200
        status, _ = await _call(staff, "GET", f"{gw}/staff/admin/accounts/{employee}")
        assert status == 303
        # Forms without their CSRF token, one that cannot be read, a repeated query parameter.
        account_page = f"{gw}/staff/admin/accounts/{employee}"
        await _call(staff, "POST", f"{account_page}/active", data={"active": "false"})
        await _call(
            staff,
            "POST",
            f"{account_page}/grants",
            data=b"role=admin",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=no-such-charset"},
        )
        await _call(staff, "GET", f"{account_page}?page=1&page=2")
        # Values the database cannot take (a NUL, an over-long number) in the deprecated username addresses.
        for path in (
            f"/api/v1/admin/accounts/{employee}%00",
            f"/staff/admin/accounts/{employee}%00",
            f"/api/v1/admin/accounts/{employee}%00/disable",
            f"/api/v1/staff/appointments/{appointment}%00/cancel",
        ):
            method = "POST" if path.endswith("cancel") or path.endswith("disable") else "GET"
            await _call(staff, method, URL(f"{gw}{path}", encoded=True), json={}, headers=origin)
        await _call(staff, "GET", f"{gw}/api/v1/admin/audit", params={"actor": employee})
        status, key = await _call(
            staff,
            "POST",
            f"{gw}/api/v1/admin/api-keys",
            json={"name": "Service-Center", "locations": [LOCATION], "operations": ["appointments:write"]},
            headers=origin,
        )
        assert status == 201, key
        assert isinstance(key, dict)
        secrets["api key"] = key["key"]
        await _call(staff, "POST", f"{gw}/api/v1/staff/logout", headers=origin)

    # Requests aiohttp itself refuses before any handler (a control character in a header, a bad length,
    # an over-long header): its own logger reports them.
    host, port = "127.0.0.1", system.services["gateway"].port
    target = f"/manage/{appointment}?token={token}&email={customer['email']}&street={street}"
    for raw in (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {employee}\r\n\r\n",
        f"GET /staff/admin/accounts/{employee} HTTP/1.1\r\nHost: x\r\nX-Long: {'a' * 9000}\r\n\r\n",
        f"GET {target}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(raw.encode())
        await writer.drain()
        await reader.read(1000)
        writer.close()
        await writer.wait_closed()
    # And the same addresses sent well-formed but with repeated parameters and forms without a token.
    async with aiohttp.ClientSession(timeout=timeout) as again:
        manage = f"{gw}/manage/{appointment}"
        await _call(again, "GET", f"{manage}?token={token}&token={token}")
        await _call(again, "POST", f"{manage}/cancel?token={token}", data={"token": token})

    async with aiohttp.ClientSession(timeout=timeout) as centre:
        bearer = {"Authorization": f"Bearer {key['key']}"}
        body = {
            "location_id": LOCATION,
            "concern_id": CONCERN,
            "start": system.next_slot(),
            "mode": "phone",
            "customer": customer,
        }
        status, answer = await _call(
            centre, "POST", f"{gw}/api/v1/staff/appointments", json=body, headers=bearer
        )
        assert status == 201, answer
        # A wrong key, and a key in the query where it does not belong.
        await _call(
            centre, "GET", f"{gw}/api/v1/staff/callbacks", headers={"Authorization": "Bearer otv_wrong"}
        )
        await _call(centre, "GET", f"{gw}/api/v1/staff/callbacks", params={"api_key": key["key"]})

        metrics = {}
        for name in system.services:
            async with centre.get(f"{system.url(name)}/metrics") as response:
                metrics[name] = await response.text()

    await asyncio.sleep(1.0)  # the last lines written
    leaks = [
        f"{what} in the {where} of {name}: " + next(line for line in text.splitlines() if value in line)[:400]
        for where, texts in (("log", _log_text(system)), ("metrics", metrics))
        for name, text in texts.items()
        for what, value in secrets.items()
        if value in text
    ]
    assert not leaks, "\n".join(leaks)
