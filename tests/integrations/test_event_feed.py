"""The pull alternative (issue 12, R50, R37): the event feed for API keys with `events:read`, stable and
paged, within the key's locations, personal data only with `events:personal`, and kept for a limited time."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.gateway.integrations import service
from services.gateway.integrations.keys import INTEGRATIONS
from shared.events.appointment import Language
from shared.events.retention import AppointmentPersonalDataErasedV1
from shared.events.staff_work import CallbackCreatedV1, CallbackReason, CallbackStatus, CallbackTicket
from shared.identity import Role
from tests.conftest import wait_for
from tests.integrations.conftest import EnvFactory, ReceiverFactory, booked, cancelled
from tests.staff.conftest import StaffClient

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def key(admin: StaffClient, locations: list[str], operations: list[str]) -> dict[str, str]:
    body = {"name": "Fachverfahren", "locations": locations, "operations": operations}
    response = await admin.post("/api/v1/admin/api-keys", json=body)
    assert response.status == 201, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['key']}"}


async def page(env: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await env.client.get("/api/v1/staff/events", params=params, headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.req("R50")
@pytest.mark.req("R37")
async def test_a_key_without_scope_for_a_location_never_sees_its_events_in_the_feed_or_webhooks(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    mitte = await key(admin, ["mitte"], ["events:read"])
    everywhere = await key(admin, ["*"], ["events:read", "events:personal"])
    no_feed = await key(admin, ["*"], ["appointments:read"])
    hook = await admin.post(
        "/api/v1/admin/webhooks",
        json={"name": "Nord", "url": rec.url, "event_types": ["appointment.*"], "locations": ["nord"]},
    )
    rec.secret = (await hook.json())["secret"]

    ids = []
    for i in range(5):
        ids.append(await env.publish(booked(uuid.uuid4(), "mitte" if i % 2 == 0 else "nord")))
    in_mitte = uuid.uuid4()
    ids.append(await env.publish(booked(in_mitte)))
    ids.append(await env.publish(cancelled(in_mitte, 2)))

    async def all_stored() -> bool:
        return len((await page(env, everywhere))["events"]) == 7

    await wait_for(all_stored, timeout=15, what="every event in the feed")
    full = await page(env, everywhere)
    assert [e["cursor"] for e in full["events"]] == sorted(e["cursor"] for e in full["events"])
    assert full["events"][0]["data"]["appointment"]["customer"]["last_name"] == "Mustermann"
    assert "token" not in json.dumps(full)  # the manage link's token never leaves

    # Mitte's key pages through Mitte's events only, stably, without personal data.
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        got = await page(env, mitte, after=after, limit=2)
        seen += got["events"]
        if not got["has_more"] and not got["events"]:
            break
        after = got["next_cursor"]
    assert {e["data"]["appointment"]["location_id"] for e in seen} == {"mitte"}
    assert len(seen) == 5 and len({e["id"] for e in seen}) == 5
    assert "Mustermann" not in json.dumps(seen) and "Frau Mustermann" not in json.dumps(seen)
    assert (await page(env, mitte, after=after))["events"] == []
    # Stable: read again from the start, the same events in the same order.
    assert [e["id"] for e in seen] == [e["id"] for e in (await page(env, mitte, limit=100))["events"]]

    # A cursor or id beyond any bigint is a 422 naming it, not the database driver's 500.
    for response in (
        await env.client.get("/api/v1/staff/events", params={"after": str(2**70)}, headers=everywhere),
        await admin.get("/api/v1/admin/webhook-deliveries", params={"before": str(2**70)}),
        await admin.get("/api/v1/admin/audit-log", params={"before": str(2**70)}),
    ):
        answer = await response.json()
        assert response.status == 422 and answer["error"]["details"][0]["field"] in ("after", "before"), (
            answer
        )

    # A key without events:read gets 403; the Nord webhook got only Nord's events.
    assert (await env.client.get("/api/v1/staff/events", headers=no_feed)).status == 403
    await wait_for(lambda: len(rec.received) == 2, timeout=15, what="Nord's two events")
    assert {e["data"]["appointment"]["location_id"] for e in rec.received.values()} == {"nord"}


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_without_personal_data_a_callback_keeps_its_reason_code_and_a_cancellation_loses_its_text(
    make_env: EnvFactory,
) -> None:
    """Only free texts go: a callback ticket's `reason` is a code (`outcome`, `missed_call`, ...), which the
    service centre's system sorts its queue by; it stays, and the ticket is the documented one."""
    env = await make_env()
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    plain = await key(admin, ["mitte"], ["events:read"])
    appointment = uuid.uuid4()
    now = env.clock.now()
    ticket = CallbackTicket(
        id=uuid.uuid4(),
        appointment_id=appointment,
        location_id="mitte",
        group_id="ez",
        reason=CallbackReason.MISSED_CALL,
        status=CallbackStatus.OPEN,
        revision=1,
        created_at=now,
        due_at=now + timedelta(hours=48),
    )
    await env.publish(CallbackCreatedV1(callback=ticket))
    await env.publish(cancelled(appointment, 2))

    async def stored() -> bool:
        return len((await page(env, plain))["events"]) == 2

    await wait_for(stored, timeout=15, what="the events in the feed")
    callback, cancellation = (await page(env, plain))["events"]
    assert CallbackTicket.model_validate(callback["data"]["callback"]) == ticket
    assert "reason" not in cancellation["data"] and "Mustermann" not in json.dumps(cancellation)


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_the_feed_keeps_no_manage_token_not_even_for_a_key_with_personal_data(
    make_env: EnvFactory, integration_db: asyncpg.Pool
) -> None:
    """The token lets whoever holds it cancel or move the appointment; the gateway never hands it out, so
    it does not keep it either: a copy of the gateway's schema holds no working manage link."""
    env = await make_env()
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    personal = await key(admin, ["*"], ["events:read", "events:personal"])
    appointment = uuid.uuid4()
    await env.publish(booked(appointment))
    await env.publish(cancelled(appointment, 2))

    async def stored() -> bool:
        return len((await page(env, personal))["events"]) == 2

    await wait_for(stored, timeout=15, what="the events in the feed")
    rows = await integration_db.fetch("SELECT envelope::text AS text FROM event_feed")
    assert rows and not [r for r in rows if "token=" in r["text"]]
    # What the key may read is all there: the customer, and the page without the token.
    first = (await page(env, personal))["events"][0]["data"]["appointment"]
    assert first["customer"]["last_name"] == "Mustermann"
    assert first["manage_url"] == f"https://termine.example/manage/{appointment}"


@pytest.mark.req("R50")
@pytest.mark.req("R43")
async def test_a_language_added_as_content_reaches_the_feed_only_with_personal_data(
    make_env: EnvFactory,
) -> None:
    """The customer booked on pages added in Turkish (R43). Like the interpreter's language, that says
    something about the person: a key without `events:personal` reads only the nearest built-in language."""
    env = await make_env()
    admin = await env.account("feed-lang-admin", (Role.ADMIN, "*"))
    plain = await key(admin, ["*"], ["events:read"])
    personal = await key(admin, ["*"], ["events:read", "events:personal"])
    event = booked(uuid.uuid4())
    appointment = event.appointment.model_copy(update={"language": Language.DE, "language_tag": "tr"})
    await env.publish(event.model_copy(update={"appointment": appointment}))

    async def stored() -> bool:
        return len((await page(env, plain))["events"]) == 1

    await wait_for(stored, timeout=15, what="the event in the feed")
    without = (await page(env, plain))["events"][0]["data"]["appointment"]
    assert without["language"] == "de" and "language_tag" not in without
    with_personal = (await page(env, personal))["events"][0]["data"]["appointment"]
    assert with_personal["language_tag"] == "tr"


@pytest.mark.req("R50")
async def test_feed_rows_older_than_the_retention_period_are_deleted_with_their_deliveries(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    env = await make_env(event_feed_retention_days=7)
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    everywhere = await key(admin, ["*"], ["events:read"])
    # A receiving system that never answers: its delivery is dropped with the event, counted for the alert.
    rec = await receiver(env.clock)
    rec.status = 500
    hook = {"name": "Fachverfahren", "url": rec.url, "event_types": ["appointment.*"], "locations": ["*"]}
    assert (await admin.post("/api/v1/admin/webhooks", json=hook)).status == 201
    dropped_before = REGISTRY.get_sample_value("otv_webhook_deliveries_dropped_total") or 0.0
    await env.publish(booked(uuid.uuid4()))

    async def stored() -> bool:
        return len((await page(env, everywhere))["events"]) == 1

    await wait_for(stored, timeout=15, what="the event in the feed")
    env.clock.advance(timedelta(days=6))
    assert await service.purge_feed(env.app[INTEGRATIONS]) == 0
    env.clock.advance(timedelta(days=1, minutes=1))
    assert await service.purge_feed(env.app[INTEGRATIONS]) == 1
    assert (await page(env, everywhere))["events"] == []
    assert REGISTRY.get_sample_value("otv_webhook_deliveries_dropped_total") == dropped_before + 1


@pytest.mark.req("R50")
async def test_a_reader_whose_cursor_is_older_than_the_retention_period_is_told_it_missed_events(
    make_env: EnvFactory,
) -> None:
    """A receiving system that was away longer than the feed keeps its events must not page on as if
    nothing had happened: the page says `missed_events` (then it compares its state with the API)."""
    env = await make_env(event_feed_retention_days=7)
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    everywhere = await key(admin, ["*"], ["events:read"])
    for _ in range(2):
        await env.publish(booked(uuid.uuid4()))

    async def stored() -> bool:
        return len((await page(env, everywhere))["events"]) == 2

    await wait_for(stored, timeout=15, what="the events in the feed")
    first = await page(env, everywhere, limit=1)
    assert first["missed_events"] is False
    env.clock.advance(timedelta(days=7, minutes=1))
    assert await service.purge_feed(env.app[INTEGRATIONS]) == 2
    await env.publish(booked(uuid.uuid4()))

    async def newest() -> dict[str, Any] | None:
        got = await page(env, everywhere, after=first["next_cursor"])
        return got if got["events"] else None

    # The second event was deleted before this reader got it.
    late = await wait_for(newest, timeout=15, what="the new event")
    assert late["missed_events"] is True and len(late["events"]) == 1
    # Paging on from there, or from the start (what is kept), nothing is missed.
    assert (await page(env, everywhere, after=late["next_cursor"]))["missed_events"] is False
    assert (await page(env, everywhere))["missed_events"] is False


@pytest.mark.req("R34")
async def test_the_gateway_s_dead_letters_and_inbox_records_go_with_the_retention_period(
    make_env: EnvFactory,
) -> None:
    """The integrations consumer keeps a failed event whole, customer data included, among its dead
    letters, and a record of every handled event in its inbox: both go after the retention period."""
    env = await make_env()
    pool = env.app[INTEGRATIONS].pool
    now = env.clock.now()
    consumer = f"test.retention.{uuid.uuid4().hex[:8]}"  # this test's rows among those of other tests
    for age in (29, 3):
        await pool.execute(
            "INSERT INTO dead_letters (consumer, queue, reason, body, dead_at) VALUES ($1, $2, $3, $4, $5)",
            consumer,
            "q",
            "test",
            b'{"data": {"customer": {"last_name": "Quellenhof"}}}',
            now - timedelta(days=age),
        )
        await pool.execute(
            "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)",
            consumer,
            uuid.uuid4(),
            now - timedelta(days=age),
        )
    await service.purge_feed(env.app[INTEGRATIONS])
    dead = await pool.fetch("SELECT dead_at FROM dead_letters WHERE consumer = $1", consumer)
    assert [r["dead_at"] for r in dead] == [now - timedelta(days=3)]
    handled = await pool.fetch("SELECT processed_at FROM inbox WHERE consumer = $1", consumer)
    assert [r["processed_at"] for r in handled] == [now - timedelta(days=3)]
    # The retention alert sees the gateway's run.
    reported = REGISTRY.get_sample_value("otv_retention_last_run_timestamp_seconds", {"service": "gateway"})
    assert reported == pytest.approx(env.clock.now().timestamp())


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_an_erasure_strips_the_personal_data_from_the_appointment_s_events_still_in_the_feed(
    make_env: EnvFactory,
) -> None:
    """A key with `events:personal` reads names for seven days; once the appointment's data are erased
    (on request or by the retention run), its earlier events in the feed hold them no longer."""
    env = await make_env()
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    personal = await key(admin, ["*"], ["events:read", "events:personal"])
    erased, kept = uuid.uuid4(), uuid.uuid4()
    for data in (booked(erased), cancelled(erased, 2), booked(kept)):
        await env.publish(data)

    async def stored(count: int) -> bool:
        return len((await page(env, personal))["events"]) == count

    await wait_for(lambda: stored(3), timeout=15, what="the events in the feed")
    await env.publish(AppointmentPersonalDataErasedV1(appointment_id=erased, erased_at=env.clock.now()))
    await wait_for(lambda: stored(4), timeout=15, what="the erasure in the feed")
    events = (await page(env, personal))["events"]
    of_erased = [e for e in events if e["data"].get("appointment", {}).get("id") == str(erased)]
    assert len(of_erased) == 2
    assert "Mustermann" not in json.dumps(of_erased)  # neither the name nor the staff's free-text reason
    assert all("customer" not in e["data"]["appointment"] for e in of_erased)
    [other] = [e for e in events if e["data"].get("appointment", {}).get("id") == str(kept)]
    assert other["data"]["appointment"]["customer"]["last_name"] == "Mustermann"


@pytest.mark.req("R34")
@pytest.mark.req("R50")
async def test_an_event_of_an_erased_appointment_that_comes_later_is_stored_and_sent_without_personal_data(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """The cancellation went to the dead letters, the appointment was erased on request, and then an
    administrator replays the dead letter: neither the feed nor a webhook with personal data hands out the
    customer's data or the reason again."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("feed-admin", (Role.ADMIN, "*"))
    personal = await key(admin, ["*"], ["events:read", "events:personal"])
    hook = await admin.post(
        "/api/v1/admin/webhooks",
        json={
            "name": "Fachverfahren",
            "url": rec.url,
            "event_types": ["appointment.*"],
            "locations": ["mitte"],
            "include_personal_data": True,
        },
    )
    assert hook.status == 201, await hook.text()
    rec.secret = (await hook.json())["secret"]
    erased, other = uuid.uuid4(), uuid.uuid4()
    await env.publish(booked(erased))
    await env.publish(AppointmentPersonalDataErasedV1(appointment_id=erased, erased_at=env.clock.now()))

    async def stored(count: int) -> bool:
        return len((await page(env, personal))["events"]) == count

    await wait_for(lambda: stored(2), timeout=15, what="the booking and the erasure in the feed")
    late = await env.publish(cancelled(erased, 2))  # the replayed dead letter
    await env.publish(booked(other))  # an appointment nobody erased keeps its data

    await wait_for(lambda: len(rec.received) >= 3, timeout=15, what="the late cancellation")
    [sent] = [e for e in rec.received.values() if e["id"] == late]
    assert "customer" not in sent["data"]["appointment"]
    assert "Mustermann" not in json.dumps(sent)  # neither the name nor the free-text reason
    events = (await page(env, personal))["events"]
    [in_feed] = [e for e in events if e["id"] == late]
    assert "Mustermann" not in json.dumps(in_feed)
    [kept] = [e for e in events if e["data"].get("appointment", {}).get("id") == str(other)]
    assert kept["data"]["appointment"]["customer"]["last_name"] == "Mustermann"


@pytest.mark.req("R34")
async def test_an_erasure_and_the_purge_find_their_rows_by_index_not_by_scanning_the_feed(
    integration_db: asyncpg.Pool,
) -> None:
    """An hourly retention run publishes up to 2000 erasures, each stripped under the feed lock, and the
    purge deletes a week's feed with its deliveries: neither may scan the whole feed or every delivery for
    each appointment or each row."""
    async with integration_db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # what the planner does on a large feed
        plans = {
            "erasure": "SELECT position FROM event_feed WHERE order_key = 'appointment:x' FOR UPDATE",
            "cascade": "SELECT 1 FROM webhook_deliveries WHERE position = 42",
        }
        for what, query in plans.items():
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {query}"))
            assert "Seq Scan" not in plan, f"{what}: {plan}"
