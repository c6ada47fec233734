"""Password checks are bounded per gateway process: an argon2 check takes 64 MiB, and a handful of them at
once (30 caseworkers signing in at 08:00, or anyone posting made-up names in parallel) pushed a pod past
its memory limit, and the kernel killed it with every customer request on it. At most
OTV_STAFF_PASSWORD_CHECKS run at once; the others wait their turn, up to
OTV_STAFF_PASSWORD_WAIT_SECONDS, and are then told to come back (503 `unavailable`), without counting as a
failed sign-in."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Literal

import aiohttp
from argon2 import PasswordHasher

from services.gateway.staff.service import Passwords
from tests.staff.conftest import PASSWORD, Gateway, GatewayFactory, audit_rows


class RecordingHasher(PasswordHasher):
    """argon2 with cheap parameters, each hash and check held for `hold` seconds (as a real one of 64 MiB
    takes a while), counting how many run at the same moment."""

    def __init__(self, hold: float) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.hold = hold
        self.running = 0
        self.most = 0
        self.done = 0
        self._lock = threading.Lock()

    def _begin(self) -> None:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def _end(self) -> None:
        with self._lock:
            self.running -= 1
            self.done += 1

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._begin()
        try:
            time.sleep(self.hold)
            return super().hash(password, salt=salt)
        finally:
            self._end()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self._begin()
        try:
            time.sleep(self.hold)
            return super().verify(hash, password)
        finally:
            self._end()


def recording(gateway: Gateway, hold: float) -> RecordingHasher:
    hasher = RecordingHasher(hold)
    passwords: Passwords = gateway.staff.passwords
    passwords.hasher = hasher
    return hasher


async def sign_in(gateway: Gateway, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
    return await gateway.client.post("/api/v1/staff/login", json={"username": username, "password": password})


async def test_twenty_sign_ins_at_once_run_no_more_password_checks_at_once_than_configured(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(staff_password_checks=2)
    await gateway.account("kim")
    hasher = recording(gateway, hold=0.05)

    # Half of them the caseworker, half made-up names (which pay for a check as well: no enumeration).
    answers = await asyncio.gather(
        *(sign_in(gateway, "kim") for _ in range(10)),
        *(sign_in(gateway, f"niemand-{n}", "geraten") for n in range(10)),
    )

    assert sorted(a.status for a in answers) == [200] * 10 + [401] * 10
    assert hasher.done >= 20  # the twenty checks (and the hash the made-up names are checked against)
    assert hasher.most == 2  # in parallel, but never more than the two configured


async def test_a_sign_in_that_waits_too_long_for_its_turn_is_told_to_come_back_and_is_no_failure(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(
        staff_password_checks=1, staff_password_wait_seconds=0.3, staff_login_ip_max_failures=1
    )
    await gateway.account("kim")
    hasher = recording(gateway, hold=1.0)

    answers = await asyncio.gather(*(sign_in(gateway, "kim") for _ in range(3)))

    assert sorted(a.status for a in answers) == [200, 503, 503]
    for busy in (a for a in answers if a.status == 503):
        assert (await busy.json())["error"]["code"] == "unavailable"
        assert int(busy.headers["Retry-After"]) >= 1
    assert hasher.most == 1
    # Nothing counted against the caseworker or the address: no refusal in the audit log, and the next
    # sign-in goes through although one failure from this address would throttle it.
    assert await audit_rows(gateway, action="login", outcome="refused") == []
    hasher.hold = 0.0
    assert (await sign_in(gateway, "kim")).status == 200


async def test_the_sign_in_page_says_to_try_again_in_a_moment_when_it_waited_too_long(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(staff_password_checks=1, staff_password_wait_seconds=0.3)
    await gateway.account("kim")
    recording(gateway, hold=1.0)
    page = await gateway.client.get("/staff/login")
    login_cookie = page.cookies["otv_staff_login"].value

    async def submit() -> tuple[int, str]:
        response = await gateway.client.post(
            "/staff/login",
            data={"username": "kim", "password": PASSWORD, "csrf_token": login_cookie},
            headers={"Cookie": f"otv_staff_login={login_cookie}"},
            allow_redirects=False,
        )
        return response.status, await response.text()

    answers = sorted(await asyncio.gather(submit(), submit()))
    assert [status for status, _ in answers] == [303, 503]
    assert "Bitte versuchen Sie es in einer Minute noch einmal." in answers[1][1]
    assert 'action="/staff/login"' in answers[1][1]  # the form again, with the name kept


async def test_a_password_change_that_waits_too_long_is_told_to_come_back_and_changes_nothing(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(staff_password_checks=1, staff_password_wait_seconds=0.3)
    kim = await gateway.signed_in("kim")
    hasher = recording(gateway, hold=1.0)
    new = "ein ganz neues Passwort 2027"

    async def change_a_moment_later() -> aiohttp.ClientResponse:
        await asyncio.sleep(0.1)  # the sign-in has the only turn by then
        body = {"current_password": PASSWORD, "new_password": new}
        return await kim.post("/api/v1/staff/password", json=body)

    signing_in, changing = await asyncio.gather(sign_in(gateway, "kim"), change_a_moment_later())

    assert signing_in.status == 200
    assert changing.status == 503 and (await changing.json())["error"]["code"] == "unavailable"
    assert int(changing.headers["Retry-After"]) >= 1
    hasher.hold = 0.0
    assert (await sign_in(gateway, "kim", new)).status == 401
    assert (await sign_in(gateway, "kim")).status == 200  # still the old password
