"""R34: a staff account's username names an employee (erika.muster). An administrator who creates an
account under a username that exists already is told so, and the database server writes no ERROR for it:
its log, outside OTV's retention, would keep the unique index's DETAIL, "Key (username)=(...)"."""

from __future__ import annotations

import uuid

import pytest

from shared.identity import Role
from tests.server_log import server_log_during
from tests.staff.conftest import Gateway
from tests.staff.test_staff_pages import post_form


@pytest.mark.req("R34")
async def test_a_username_that_exists_already_is_refused_without_naming_it_in_the_database_server_log(
    gateway: Gateway,
) -> None:
    gateway.upstreams["catalog"].answers["/api/v1/locations"] = [{"id": "mitte", "name": "Bremen-Mitte"}]
    admin = await gateway.signed_in("log-form-admin", (Role.ADMIN, "*"))
    username = f"erika.muster-{uuid.uuid4().hex[:8]}"
    await gateway.account(username)
    form = {
        "username": username,
        "display_name": "Erika Muster",
        "role": "appointment_manager",
        "location": "mitte",
    }
    answers: list[tuple[int, str]] = []

    async def create_again() -> None:
        status, _, html = await post_form(admin, "/staff/admin/accounts", form)
        answers.append((status, html))

    logged = await server_log_during(gateway.staff.pool, create_again)
    [(status, html)] = answers
    assert status == 409 and "gibt es schon" in html
    assert username not in logged
    async with gateway.staff.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM staff_accounts WHERE username = $1", username) == 1
