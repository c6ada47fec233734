"""R20, R44: a mass change of 50 appointments counted in REAL mails: booking and the real notifier
in-process on PostgreSQL and RabbitMQ, the notifier sending through SMTP to the local mail sink. Each
customer gets exactly one mail about the change (moved, with the new time and the updated calendar
invitation, or cancelled), and applying the same preview a second time sends nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.identity import Role
from tests.booking import factory
from tests.staff_work.conftest import HERE, Staff
from tests.waiting_list.conftest import Waiting, sink, start_waiting  # noqa: F401 -- `sink` is a fixture
from tools.mailsink import MailSink, StoredMessage

TUESDAY = "2026-03-03"
CONFIRMATION, MOVED, CANCELLED = "Terminbestätigung", "Neue Zeit", "Absage"


@pytest.fixture
async def services(
    pools: dict[str, asyncpg.Pool],
    amqp: Any,
    sink: MailSink,  # noqa: F811 -- the session's mail sink, imported above
) -> AsyncIterator[Waiting]:
    """Booking and the notifier in-process (the waiting-list tests' stack: the same services)."""
    async for found in start_waiting(pools, sink):
        yield found


def _kind(message: StoredMessage) -> str:
    return next((k for k in (CONFIRMATION, MOVED, CANCELLED) if message.subject.startswith(k)), "?")


async def _settled(mails: MailSink, count: int) -> list[StoredMessage]:
    """Exactly `count` messages in the sink: waits for them, then a while longer for any extra one."""
    async with asyncio.timeout(60):
        await mails.wait_for_messages(count)
    await asyncio.sleep(1.5)
    found = mails.messages
    assert len(found) == count, Counter(_kind(m) for m in found)
    return found


@pytest.mark.req("R20")
@pytest.mark.req("R44")
async def test_a_mass_change_of_50_sends_each_customer_exactly_one_real_mail_and_a_second_apply_sends_none(
    services: Waiting,
) -> None:
    mail_sink = services.sink
    mail_sink.clear()
    emails: list[str] = []
    for minute in range(0, 240, 15):  # 16 slots x 3 points of the entrance zone, and two of the team
        for _ in range(3):
            emails.append(f"mc{len(emails)}@example.org")
            await services.book(factory.iso(TUESDAY, f"{8 + minute // 60:02d}:{minute % 60:02d}"), emails[-1])
    for _ in range(2):
        emails.append(f"mc{len(emails)}@example.org")
        await services.book(factory.iso(TUESDAY, "08:00"), emails[-1], concern="bescheid")
    assert len(emails) == 50
    confirmations = await _settled(mail_sink, 50)
    assert {_kind(m) for m in confirmations} == {CONFIRMATION}

    admin = Staff(services.client, services.clock, Role.LOCATION_ADMIN, HERE)  # the whole location
    preview = await admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/preview", {"date": TUESDAY, "service_points_left": 0}
    )
    assert preview.status == 201, await preview.text()
    change = await preview.json()
    assert len(change["affected"]) == 50
    applied = await admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": change["id"]}
    )
    result = await applied.json()
    assert applied.status == 200 and len(result["moved"]) + len(result["cancelled"]) == 50

    after = (await _settled(mail_sink, 100))[50:]
    per_customer = Counter(rcpt.lower() for m in after for rcpt in m.envelope_to)
    assert set(per_customer) == set(emails) and set(per_customer.values()) == {1}
    assert {_kind(m) for m in after} <= {MOVED, CANCELLED}
    for message in after:
        text = "\n".join(
            str(p.get_content()) for p in message.leaf_parts() if p.get_content_type() == "text/plain"
        )
        if _kind(message) == MOVED:
            types = {part.get_content_type() for part in message.leaf_parts()}
            assert "text/calendar" in types or any(
                (part.get_filename() or "").endswith(".ics") for part in message.leaf_parts()
            ), message.subject
            # Why the jobcenter moved it, and that the customer may move it again.
            assert "Der Standort kann Ihren Termin zur bisherigen Zeit leider nicht anbieten" in text
        else:
            assert "es war kein gleichwertiger Termin frei" in text
    kinds = Counter(_kind(m) for m in after)
    assert (kinds[MOVED], kinds[CANCELLED]) == (len(result["moved"]), len(result["cancelled"]))

    again = await admin.post(
        f"/api/v1/staff/locations/{HERE}/mass-change/apply", {"preview_id": change["id"]}
    )
    assert (await again.json())["already_applied"] is True
    await asyncio.sleep(2.0)
    assert len(mail_sink.messages) == 100


@pytest.mark.req("R44")
async def test_a_two_day_closure_moves_each_customer_once_out_of_both_days_with_exactly_one_real_mail(
    services: Waiting,
) -> None:
    """A group closes Tuesday and Wednesday. One mass change over both days moves Tuesday's customer past
    Wednesday at once (not into Wednesday, to be moved and written to again), with one mail each."""
    mail_sink = services.sink
    mail_sink.clear()
    wednesday = "2026-03-04"
    tuesday_customer = await services.book(factory.iso(TUESDAY, "08:00"), "dienstag@example.org")
    wednesday_customer = await services.book(factory.iso(wednesday, "08:00"), "mittwoch@example.org")
    await _settled(mail_sink, 2)

    leader = Staff(services.client, services.clock, Role.GROUP_LEADER, HERE)
    base = f"/api/v1/staff/locations/{HERE}/mass-change"
    closure = {"date": TUESDAY, "last": wednesday, "group_id": "ez", "service_points_left": 0}
    preview = await (await leader.post(f"{base}/preview", closure)).json()
    proposed = {a["appointment_id"]: a["proposed_start"] for a in preview["affected"]}
    assert set(proposed) == {tuesday_customer["id"], wednesday_customer["id"]}
    assert all(start and start[:10] > wednesday for start in proposed.values()), proposed
    applied = await leader.post(f"{base}/apply", {"preview_id": preview["id"], **closure})
    assert applied.status == 200 and len((await applied.json())["moved"]) == 2

    after = (await _settled(mail_sink, 4))[2:]
    assert {_kind(m) for m in after} == {MOVED}
    per_customer = Counter(rcpt.lower() for m in after for rcpt in m.envelope_to)
    assert per_customer == {"dienstag@example.org": 1, "mittwoch@example.org": 1}
    # Nothing left on the closed days: no second mass change, no second mail.
    second = await (await leader.post(f"{base}/preview", {**closure, "date": wednesday})).json()
    assert second["affected"] == []
