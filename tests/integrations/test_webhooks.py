"""Signed webhooks (issue 12, R50): every event once per id with a valid Standard Webhooks signature,
in order per appointment after the receiver was down, a subscription that keeps failing paused, private
targets refused (SSRF), and no event of a location outside the subscription's scope."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.gateway.config import Settings as GatewaySettings
from services.gateway.integrations import service
from services.gateway.integrations.domain import RetryPolicy, address_refusal
from services.gateway.integrations.keys import INTEGRATIONS
from shared.events.staff_work import CallbackCreatedV1, CallbackReason, CallbackStatus, CallbackTicket
from shared.identity import Role
from tests.conftest import wait_for
from tests.integrations.conftest import (
    Env,
    EnvFactory,
    ReceiverFactory,
    SignatureError,
    booked,
    cancelled,
    rescheduled,
    verify,
)
from tests.staff.conftest import StaffClient

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def subscribe(admin: StaffClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Fachverfahren", "url": url, "event_types": ["appointment.*"], "locations": ["mitte"]}
    response = await admin.post("/api/v1/admin/webhooks", json={**body, **fields})
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def deliveries(env: Env, admin: StaffClient, **query: str) -> list[dict[str, Any]]:
    response = await admin.get("/api/v1/admin/webhook-deliveries", params=query)
    assert response.status == 200, await response.text()
    rows: list[dict[str, Any]] = (await response.json())["deliveries"]
    return rows


async def _audit_of_delivery(auditor: StaffClient, delivery_id: int) -> list[dict[str, Any]]:
    response = await auditor.get(
        "/api/v1/admin/audit-log", params={"entity": "webhook_delivery", "entity_id": str(delivery_id)}
    )
    assert response.status == 200, await response.text()
    entries: list[dict[str, Any]] = (await response.json())["entries"]
    return entries


@pytest.mark.req("R50")
@pytest.mark.req("R46")
async def test_a_receiver_gets_every_event_of_its_scope_once_signed_and_without_personal_data(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    rec.secret = created["secret"]
    assert rec.secret.startswith("whsec_")
    assert "secret" not in (await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json())

    first, second, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = [
        await env.publish(booked(first)),
        await env.publish(booked(second)),
        await env.publish(booked(elsewhere, "nord")),
        await env.publish(rescheduled(first, 2)),
        await env.publish(cancelled(second, 2)),
    ]
    await wait_for(lambda: len(rec.received) >= 4, timeout=15, what="four deliveries")
    # The same event published twice (at least once upstream) is stored and delivered once.
    # A new id with the appointment's newest revision again: a distinct event (an older revision would be
    # superseded, test_an_older_revision_that_arrives_after_a_newer_one_is_not_sent_nor_listed_in_the_feed).
    await env.publish(rescheduled(first, 2))
    await wait_for(lambda: len(rec.received) >= 5, timeout=15, what="five deliveries")

    events = list(rec.received.values())
    assert {e["id"] for e in events} >= {ids[0], ids[1], ids[3], ids[4]}
    assert ids[2] not in {e["id"] for e in events}  # Nord is not in the subscription's scope
    for event in events:
        assert set(event) == {"id", "type", "version", "occurred_at", "correlation_id", "producer", "data"}
        assert event["version"] == 1 and event["data"]["appointment"]["location_id"] == "mitte"
        assert "customer" not in event["data"]["appointment"]
        assert "token" not in event["data"]["appointment"]["manage_url"]
    text = json.dumps(events)
    assert "Mustermann" not in text and "erika@example.org" not in text and "123D456789" not in text

    # Tampered body and stale timestamp: the subscriber's verifier refuses them.
    headers, body = rec.requests[0]
    verify(rec.secret, headers, body, env.clock.now())
    with pytest.raises(SignatureError):
        verify(rec.secret, headers, body.replace(b"mitte", b"nord"), env.clock.now())
    with pytest.raises(SignatureError):
        verify(rec.secret, headers, body, env.clock.now() + timedelta(minutes=10))
    with pytest.raises(SignatureError):
        verify(rec.secret, {**headers, "webhook-id": "msg_other"}, body, env.clock.now())

    # Administrators see the deliveries and their results, and re-send one (the same webhook-id).
    done = await deliveries(env, admin, status="delivered")
    assert len(done) == 5 and all(d["last_status"] == 204 for d in done)
    # The newest (the second appointment's cancellation); the first appointment's booking is older than its
    # move and is not sent again (it would take a receiver back to the older state).
    one = next(d for d in done if d["event_id"] == ids[4])
    oldest = next(d for d in done if d["event_id"] == ids[0])
    assert (await admin.post(f"/api/v1/admin/webhook-deliveries/{oldest['id']}/resend")).status == 409
    auditor = await env.account("hook-auditor", (Role.AUDIT, "*"))
    resent_before = await _audit_of_delivery(auditor, one["id"])
    again = await admin.post(f"/api/v1/admin/webhook-deliveries/{one['id']}/resend")
    assert again.status == 200
    before = len(rec.requests)
    await wait_for(lambda: len(rec.requests) > before, timeout=10, what="the re-sent delivery")
    assert rec.requests[-1][0]["webhook-id"] == one["webhook_id"]
    assert len(rec.received) == 5  # the receiver dropped it as a duplicate by its id

    # R46: the writes are in the audit log, which audit review reads; webhooks themselves it cannot.
    log = await (
        await auditor.get(
            "/api/v1/admin/audit-log", params={"entity": "webhook_subscription", "entity_id": created["id"]}
        )
    ).json()
    assert [e["action"] for e in log["entries"]] == ["create"]
    assert log["entries"][0]["actor"] == "hook-admin" and rec.secret not in json.dumps(log)
    # The audit log is append-only and outlives the emptied test tables (whose ids restart): compare
    # with what it held for this delivery id before the re-send.
    resent = await _audit_of_delivery(auditor, one["id"])
    assert len(resent) == len(resent_before) + 1
    assert (resent[0]["action"], resent[0]["actor"]) == ("resend", "hook-admin")
    assert (await auditor.get("/api/v1/admin/webhooks")).status == 403


@pytest.mark.req("R50")
async def test_after_the_receiver_was_down_every_event_arrives_in_order_per_appointment(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    rec.secret = created["secret"]
    rec.status = 503  # down

    a, b = uuid.uuid4(), uuid.uuid4()
    await env.publish(booked(a))
    await env.publish(booked(b))
    await env.publish(rescheduled(a, 2))
    await env.publish(rescheduled(b, 2))
    await env.publish(cancelled(a, 3))

    async def attempted() -> bool:
        rows = await deliveries(env, admin)
        return len(rows) == 5 and sum(r["attempts"] for r in rows) >= 2

    await wait_for(attempted, timeout=15, what="failed first attempts")
    rows = await deliveries(env, admin)
    # Only the first event of each appointment was tried: later ones wait behind it.
    assert sorted(r["attempts"] for r in rows) == [0, 0, 0, 1, 1]
    assert all(r["status"] == "pending" and r["last_status"] in (None, 503) for r in rows)
    # Hours pass while it is down; retries back off exponentially.
    for _ in range(6):
        env.clock.advance(timedelta(minutes=30))
        await wait_for(lambda: len(rec.requests) >= 2, timeout=5)
    attempts_while_down = len(rec.requests)
    assert attempts_while_down < 30  # back-off, not a hammering

    rec.status = 200  # up again
    env.clock.advance(timedelta(hours=2, minutes=1))
    await wait_for(lambda: len(rec.received) == 5, timeout=20, what="every event after the outage")
    revisions: dict[str, list[int]] = {}
    for event in rec.order:
        appointment = event["data"]["appointment"]
        revisions.setdefault(appointment["id"], []).append(appointment["revision"])
    assert revisions == {str(a): [1, 2, 3], str(b): [1, 2]}
    subscription = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
    assert subscription["status"] == "active" and subscription["consecutive_failures"] == 0


@pytest.mark.req("R50")
async def test_an_older_revision_that_arrives_after_a_newer_one_is_not_sent_nor_listed_in_the_feed(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """The backlog of a broker outage, drained by booking's replicas in parallel: the cancellation
    (revision 3) reaches the gateway and is delivered before the booking (1) and the move (2). A receiver
    that applies what it gets never goes back to an older state; a later change still arrives."""
    env = await make_env()
    rec = await receiver(env.clock)
    only_bookings = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    rec.secret = created["secret"]
    only_bookings.secret = (
        await subscribe(admin, only_bookings.url, name="Statistik", event_types=["appointment.booked"])
    )["secret"]
    response = await admin.post(
        "/api/v1/admin/api-keys", json={"name": "Feed", "locations": ["mitte"], "operations": ["events:read"]}
    )
    assert response.status == 201, await response.text()
    feed_key = {"Authorization": f"Bearer {(await response.json())['key']}"}

    a = uuid.uuid4()
    await env.publish(cancelled(a, 3))
    await wait_for(lambda: len(rec.received) == 1, timeout=15, what="the cancellation")
    await env.publish(booked(a))
    await env.publish(rescheduled(a, 2))
    await env.publish(rescheduled(a, 4))  # a later change, in order

    async def all_stored() -> list[dict[str, Any]] | None:
        rows = await deliveries(env, admin, subscription_id=created["id"], appointment_id=str(a))
        return rows if len(rows) == 4 else None

    await wait_for(all_stored, timeout=15, what="four deliveries of the appointment")
    await wait_for(lambda: len(rec.received) == 2, timeout=15, what="the later change")
    assert [e["data"]["appointment"]["revision"] for e in rec.order] == [3, 4]
    # The older ones were never POSTed (no attempt), and say why.
    assert len(rec.requests) == 2
    superseded = await deliveries(env, admin, subscription_id=created["id"], status="superseded")
    assert sorted(r["event_type"] for r in superseded) == ["appointment.booked", "appointment.rescheduled"]
    assert all(r["attempts"] == 0 and r["last_attempt_at"] is None for r in superseded)
    resend = await admin.post(f"/api/v1/admin/webhook-deliveries/{superseded[0]['id']}/resend")
    assert resend.status == 409 and (await resend.json())["error"]["code"] == "conflict"
    # Per subscription: the statistics system never got the cancellation (not in its scope), so the booking
    # is the newest revision it knows and it gets it.
    await wait_for(lambda: len(only_bookings.received) == 1, timeout=15, what="the booking")
    assert [e["data"]["appointment"]["revision"] for e in only_bookings.order] == [1]

    # The feed says the same: the revisions of the appointment never go down, whatever types are asked for.
    answer = await env.client.get("/api/v1/staff/events", headers=feed_key)
    assert answer.status == 200, await answer.text()
    listed = [e for e in (await answer.json())["events"] if e["data"]["appointment"]["id"] == str(a)]
    assert [(e["type"], e["data"]["appointment"]["revision"]) for e in listed] == [
        ("appointment.cancelled", 3),
        ("appointment.rescheduled", 4),
    ]
    answer = await env.client.get(
        "/api/v1/staff/events", params={"types": "appointment.booked"}, headers=feed_key
    )
    assert [e for e in (await answer.json())["events"] if e["data"]["appointment"]["id"] == str(a)] == []


@pytest.mark.req("R50")
async def test_a_resend_racing_a_newer_revision_never_takes_the_receiver_back_to_the_older_one(
    make_env: EnvFactory, receiver: ReceiverFactory, integration_db: asyncpg.Pool
) -> None:
    """An administrator re-sends the booking (revision 1) while the appointment's move (revision 2) is
    stored and delivered (two replicas, or the sender working while the resend waits for the delivery's
    row): the resend must see the move and refuse, never send the booking after it."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    rec.secret = (await subscribe(admin, rec.url))["secret"]
    a = uuid.uuid4()
    await env.publish(booked(a))
    await wait_for(lambda: len(rec.received) == 1, timeout=15, what="the booking")
    [first] = await deliveries(env, admin, appointment_id=str(a))

    async with integration_db.acquire() as conn:
        blocker = conn.transaction()
        await blocker.start()
        # Somebody else has the booking's delivery row at this moment (a sender's round, another resend).
        await conn.execute("SELECT 1 FROM webhook_deliveries WHERE id = $1 FOR UPDATE", first["id"])
        resend = asyncio.create_task(admin.post(f"/api/v1/admin/webhook-deliveries/{first['id']}/resend"))
        await asyncio.sleep(0.3)  # the resend waits for the row
        await env.publish(rescheduled(a, 2))
        await wait_for(lambda: len(rec.received) == 2, timeout=15, what="the move")
        await blocker.rollback()
    answer = await resend
    if answer.status == 200:
        await wait_for(lambda: len(rec.requests) == 3, timeout=15, what="the re-sent booking")
    revisions = [json.loads(body)["data"]["appointment"]["revision"] for _, body in rec.requests]
    assert revisions == sorted(revisions), revisions
    assert answer.status == 409 and (await answer.json())["error"]["code"] == "conflict"


@pytest.mark.req("R50")
async def test_a_callback_ticket_arrives_after_the_appointment_events_before_it_and_before_later_ones(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """A callback event has no revision of the appointment: it goes behind the appointment's events that
    came before it, and a later appointment event goes behind it, also after the receiver was down."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url, event_types=["appointment.*", "callback.*"])
    rec.secret = created["secret"]
    rec.status = 503
    a = uuid.uuid4()
    await env.publish(booked(a))
    now = env.clock.now()
    ticket = CallbackTicket(
        id=uuid.uuid4(),
        appointment_id=a,
        location_id="mitte",
        group_id="ez",
        reason=CallbackReason.OUTCOME,
        status=CallbackStatus.OPEN,
        revision=1,
        created_at=now,
        due_at=now + timedelta(hours=48),
    )
    await env.publish(CallbackCreatedV1(callback=ticket))
    await env.publish(rescheduled(a, 2))

    async def stored() -> bool:
        return len(await deliveries(env, admin)) == 3

    await wait_for(stored, timeout=15, what="three deliveries waiting")
    rec.status = 200
    env.clock.advance(timedelta(hours=2, minutes=1))
    await wait_for(lambda: len(rec.received) == 3, timeout=20, what="every event after the outage")
    assert [e["type"] for e in rec.order] == [
        "appointment.booked",
        "callback.created",
        "appointment.rescheduled",
    ]


@pytest.mark.req("R50")
async def test_a_permanently_failing_subscription_is_paused_with_its_reason(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    env = await make_env()
    rec = await receiver(env.clock)
    rec.status = 500
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    await env.publish(booked(uuid.uuid4()))
    await wait_for(lambda: rec.requests, timeout=15, what="a first attempt")

    async def status() -> dict[str, Any]:
        body: dict[str, Any] = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
        return body

    for _ in range(13):
        env.clock.advance(timedelta(hours=2, minutes=1))
        count = len(rec.requests)
        if (await status())["status"] == "paused":
            break

        async def retried_or_paused(c: int = count) -> bool:
            # The last attempt may pause the subscription right after the status was read above.
            return len(rec.requests) > c or (await status())["status"] == "paused"

        await wait_for(retried_or_paused, timeout=10, what="a retry or the pause")
    await wait_for(lambda: len(rec.requests) >= 2, timeout=5)

    async def paused() -> dict[str, Any] | None:
        body = await status()
        return body if body["status"] == "paused" else None

    subscription = await wait_for(paused, timeout=10, what="the paused subscription")
    assert "failed" in subscription["paused_reason"] and "HTTP 500" in subscription["paused_reason"]
    assert "24 hours" in subscription["paused_reason"]  # the time rule, not a count of attempts
    await service.report_state(env.app[INTEGRATIONS])  # what the operators' alert reads
    paused_count = REGISTRY.get_sample_value("otv_webhook_subscriptions_paused")
    assert paused_count is not None and paused_count >= 1
    # Paused: nothing more is sent, and the reason stays visible.
    sent = len(rec.requests)
    env.clock.advance(timedelta(hours=3))
    await env.publish(booked(uuid.uuid4()))
    await wait_for(lambda: True, timeout=1)
    assert len(rec.requests) == sent
    # Resumed with the receiver fixed: what waited arrives.
    rec.status = 200
    rec.secret = created["secret"]
    assert (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/resume")).status == 200
    await wait_for(lambda: len(rec.received) == 1, timeout=15, what="the event that waited")
    await service.report_state(env.app[INTEGRATIONS])
    assert REGISTRY.get_sample_value("otv_webhook_subscriptions_paused") == paused_count - 1
    # The first was given up after a day of retries; visible as failed, and an administrator re-sends it.
    failed = await deliveries(env, admin, status="failed")
    assert len(failed) == 1 and failed[0]["last_status"] == 500 and failed[0]["attempts"] >= 10
    assert (await admin.post(f"/api/v1/admin/webhook-deliveries/{failed[0]['id']}/resend")).status == 200
    await wait_for(lambda: len(rec.received) == 2, timeout=15, what="the re-sent event")
    # An administrator's pause on purpose is no failure: the operators' alert stays quiet.
    assert (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/pause")).status == 200
    await service.report_state(env.app[INTEGRATIONS])
    assert REGISTRY.get_sample_value("otv_webhook_subscriptions_paused") == paused_count - 1


@pytest.mark.req("R50")
@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("https://10.0.0.1/hook", {}),
        ("https://169.254.169.254/latest/meta-data", {}),
        ("https://[::1]/hook", {}),
        ("https://hooks.internal.example/hook", {"hooks.internal.example": ["127.0.0.2"]}),
        # One private address among public ones is enough: the client might connect to it.
        ("https://mixed.example/hook", {"mixed.example": ["93.184.216.34", "192.168.1.10"]}),
        ("https://nowhere.example/hook", {}),
        ("http://93.184.216.34/hook", {}),  # plain http only to 127.0.0.1 in development
        # NAT64 reaches the IPv4 address in the last 32 bits (10.0.0.1, the cloud's metadata service).
        ("https://[64:ff9b::a00:1]/hook", {}),
        ("https://dns64.example/hook", {"dns64.example": ["64:ff9b::a9fe:a9fe"]}),
        ("https://[64:ff9b:1::a00:1]/hook", {}),
        ("https://[2002:7f00:1::]/hook", {}),  # 6to4 of 127.0.0.1
        ("https://sixtofour.example/hook", {"sixtofour.example": ["2002:a00:1::1"]}),  # of 10.0.0.1
        ("https://[fec0::1]/hook", {}),  # site-local
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", {}),  # Teredo
    ],
)
async def test_a_subscription_to_a_private_address_is_refused(
    make_env: EnvFactory, url: str, names: dict[str, list[str]]
) -> None:
    env = await make_env(webhook_allow_loopback=False)
    env.resolver.names.update(names)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    response = await admin.post(
        "/api/v1/admin/webhooks",
        json={"name": "x", "url": url, "event_types": ["appointment.*"], "locations": ["*"]},
    )
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["details"][0]["field"] == "url"
    assert (await (await admin.get("/api/v1/admin/webhooks")).json()) == []


def test_a_nat64_address_is_refused_as_such_whatever_ipv4_address_it_stands_for() -> None:
    """Behind DNS64/NAT64 a name of the internet resolves into 64:ff9b::/96 as well; the refusal says NAT64
    (the standard library calls these addresses global), for internal and public IPv4 alike."""
    for address in ("64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::5db8:d822", "64:ff9b:1:2::a00:1"):
        assert address_refusal(address, allow_loopback=True) == "nat64", address
    assert address_refusal("2001:4860:4860::8888", allow_loopback=False) is None


def test_addresses_of_ipv6_transition_prefixes_and_site_local_ones_are_refused() -> None:
    """6to4 reaches the IPv4 address in its bits 17-48 through any 6to4 relay (127.0.0.1, 10.0.0.1 and a
    public one alike); site-local fec0::/10 stays inside a network; Teredo and the IPv4-compatible and
    -translated forms were refused before."""
    for address in ("2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::1", "2002:808:808::1"):
        assert address_refusal(address, allow_loopback=True) == "6to4", address
    for address in ("fec0::1", "feff:ffff::1"):
        assert address_refusal(address, allow_loopback=False) == "site-local", address
    for address in ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "::7f00:1", "::ffff:0:a00:1"):
        assert address_refusal(address, allow_loopback=False) is not None, address


@pytest.mark.req("R50")
async def test_a_public_name_is_accepted_and_a_rebinding_to_a_private_address_is_not_called(
    make_env: EnvFactory,
) -> None:
    env = await make_env(webhook_allow_loopback=False)
    env.resolver.names["hooks.example"] = ["93.184.216.34"]
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, "https://hooks.example/hook")
    # The name now points inside: the connection is refused at the resolver that aiohttp uses.
    env.resolver.names["hooks.example"] = ["10.1.2.3"]
    await env.publish(booked(uuid.uuid4()))

    async def failed() -> list[dict[str, Any]]:
        rows = await deliveries(env, admin, subscription_id=created["id"])
        return [r for r in rows if r["last_error"]]

    rows = await wait_for(failed, timeout=15, what="a refused attempt")
    assert "refused" in rows[0]["last_error"] and "private" in rows[0]["last_error"]


@pytest.mark.req("R50")
def test_a_busy_subscriber_down_for_an_hour_is_not_paused_by_its_number_of_failed_attempts() -> None:
    """Every attempt of every waiting delivery counts as a failure: at 300 events an hour, a receiving
    system down for a quarter of an hour reached a count limit of 500. Only the 24 hours count now
    (docs/webhooks.md); a count limit is an operator's choice."""
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    default = RetryPolicy(pause_after_failures=GatewaySettings().webhook_pause_after_failures)
    assert default.pause_reason(5_000, now - timedelta(hours=1), now) is None
    assert default.pause_reason(5_000, now - timedelta(hours=24), now) is not None
    assert RetryPolicy(pause_after_failures=500).pause_reason(500, now - timedelta(hours=1), now) is not None


@pytest.mark.req("R50")
async def test_after_a_secret_rotation_a_receiver_verifies_with_either_secret_for_a_day(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """docs/webhooks.md, "Rotating the secret": the receiving system switches to the new secret when it is
    ready; until then (for a day) the old one still verifies, and after the day only the new one."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    old = rec.secret = created["secret"]
    appointment = uuid.uuid4()
    await env.publish(booked(appointment))
    await wait_for(lambda: len(rec.received) == 1, timeout=15, what="the first delivery")

    response = await admin.post(f"/api/v1/admin/webhooks/{created['id']}/rotate-secret")
    assert response.status == 200, await response.text()
    rotated = await response.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated["previous_secret_expires_at"] == (env.clock.now() + timedelta(hours=24)).isoformat()
    shown = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
    assert "secret" not in shown and "previous_secret" not in shown
    assert shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]

    # The receiver still has the old secret: the next event verifies with it (no 401, no retries) ...
    await env.publish(rescheduled(appointment, 2))
    await wait_for(lambda: len(rec.received) == 2, timeout=15, what="a delivery signed with the old secret")
    assert len(rec.requests) == 2
    headers, body = rec.requests[-1]
    # ... and with the new one, which the receiver switches to whenever it is ready.
    verify(new, headers, body, env.clock.now())
    assert len(headers["webhook-signature"].split(" ")) == 2

    # A day later only the new secret signs.
    env.clock.advance(timedelta(hours=24, minutes=1))
    rec.secret = new
    await env.publish(cancelled(appointment, 3))
    await wait_for(lambda: len(rec.received) == 3, timeout=15, what="a delivery signed with the new secret")
    headers, body = rec.requests[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(SignatureError):
        verify(old, headers, body, env.clock.now())
    expired = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
    assert expired["previous_secret_expires_at"] is None
    # The retention run deletes the secret that no longer signs (it was kept until the next rotation).
    await service.purge_feed(env.app[INTEGRATIONS])
    kept = await env.app[INTEGRATIONS].pool.fetchval(
        "SELECT previous_secret FROM webhook_subscriptions WHERE id = $1", uuid.UUID(created["id"])
    )
    assert kept is None


@pytest.mark.req("R50")
async def test_a_slow_receiver_that_answers_within_the_timeout_gets_a_backlog_without_failed_attempts(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """After a pause, many events wait for one receiver that takes 1.2 s per request (the timeout is 3 s
    here): each one arrives at its first attempt. None is recorded as a timeout it never had (waiting for
    a free connection to the receiver is no part of the receiver's time)."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    rec.secret = created["secret"]
    assert (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/pause")).status == 200
    for _ in range(15):
        await env.publish(booked(uuid.uuid4()))

    async def stored() -> bool:
        return len(await deliveries(env, admin)) == 15

    await wait_for(stored, timeout=15, what="fifteen deliveries waiting")
    rec.delay = 1.2
    assert (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/resume")).status == 200

    async def done() -> list[dict[str, Any]] | None:
        rows = await deliveries(env, admin)
        return rows if all(r["status"] != "pending" for r in rows) else None

    rows = await wait_for(done, timeout=20, what="every delivery made")
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("delivered", 1, None)] * 15
    assert len(rec.requests) == 15
    state = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
    assert state["consecutive_failures"] == 0 and state["failing_since"] is None


def documented_verifier() -> Callable[[str, dict[str, str], bytes], dict[str, Any]]:
    """The verification example of docs/webhooks.md, as a receiving team would copy it."""
    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/webhooks.md has one Python example"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "docs/webhooks.md", "exec"), namespace)  # noqa: S102 -- our own documentation
    verifier: Callable[[str, dict[str, str], bytes], dict[str, Any]] = namespace["verify_webhook"]
    return verifier


@pytest.mark.req("R50")
async def test_the_documented_example_verifies_deliveries_with_the_old_secret_until_it_expires(
    make_env: EnvFactory, receiver: ReceiverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver built from docs/webhooks.md alone (headers, what is signed, encoding, tolerance, several
    signatures) accepts OTV's requests, with either secret during a rotation's overlap."""
    verify_webhook = documented_verifier()
    env = await make_env()
    monkeypatch.setattr(time, "time", lambda: env.clock.now().timestamp())
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    old = rec.secret = created["secret"]
    appointment = uuid.uuid4()
    event_id = await env.publish(booked(appointment))
    await wait_for(lambda: rec.requests, timeout=15, what="a delivery")
    headers, body = rec.requests[-1]
    assert verify_webhook(old, headers, body)["id"] == event_id
    with pytest.raises(ValueError, match="bad signature"):
        verify_webhook(old, headers, body.replace(b"mitte", b"nord"))
    with pytest.raises(ValueError, match="stale"):
        verify_webhook(old, {**headers, "webhook-timestamp": str(int(time.time()) - 301)}, body)

    new = (await (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/rotate-secret")).json())["secret"]
    rec.secret = new
    await env.publish(rescheduled(appointment, 2))
    await wait_for(lambda: len(rec.requests) == 2, timeout=15, what="a delivery after the rotation")
    headers, body = rec.requests[-1]
    assert verify_webhook(old, headers, body) == verify_webhook(new, headers, body)


@pytest.mark.req("R50")
async def test_a_delivery_given_up_while_the_subscription_works_is_counted_for_the_operators(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """The receiver takes every event but one (it answers 422 to that one): the subscription never pauses,
    since its other deliveries succeed; the one given up after a day is counted for the operators' alert
    (OTVWebhookDeliveriesFailed) and listed as failed, not lost silently."""
    env = await make_env()
    rec = await receiver(env.clock)
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    rec.secret = created["secret"]
    failed_before = REGISTRY.get_sample_value("otv_webhook_deliveries_failed_total") or 0.0
    refused = uuid.uuid4()
    rec.refuse = {str(refused)}
    await env.publish(booked(refused))

    def attempts() -> int:
        return sum(str(refused).encode() in body for _, body in rec.requests)

    await wait_for(attempts, timeout=15, what="a first attempt")
    for _ in range(13):
        count = attempts()
        env.clock.advance(timedelta(hours=2, minutes=1))
        await env.publish(booked(uuid.uuid4()))  # taken: the subscription works
        if await deliveries(env, admin, status="failed"):
            break
        await wait_for(lambda c=count: attempts() > c, timeout=10, what="a retry")  # type: ignore[misc]

    gone = await wait_for(
        lambda: deliveries(env, admin, status="failed"), timeout=10, what="the delivery given up"
    )
    assert len(gone) == 1 and gone[0]["last_status"] == 422
    state = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
    assert state["status"] == "active"
    assert REGISTRY.get_sample_value("otv_webhook_deliveries_failed_total") == failed_before + 1


@pytest.mark.req("R50")
async def test_a_receiver_answering_410_gone_has_its_subscription_paused_at_once_and_nothing_lost(
    make_env: EnvFactory, receiver: ReceiverFactory
) -> None:
    """410 Gone says the address is no more (Standard Webhooks: disable the endpoint): OTV stopped only
    after a day of retries into it. Now the first 410 pauses the subscription with that reason; the event
    stays due and arrives after a resume."""
    env = await make_env()
    rec = await receiver(env.clock)
    rec.status = 410
    admin = await env.account("hook-admin", (Role.ADMIN, "*"))
    created = await subscribe(admin, rec.url)
    await env.publish(booked(uuid.uuid4()))
    await wait_for(lambda: rec.requests, timeout=15, what="a first attempt")

    async def paused() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await admin.get(f"/api/v1/admin/webhooks/{created['id']}")).json()
        return body if body["status"] == "paused" else None

    subscription = await wait_for(paused, timeout=10, what="the paused subscription")
    assert "410 Gone" in subscription["paused_reason"]
    env.clock.advance(timedelta(hours=3))  # no retry into the gone address
    await env.publish(booked(uuid.uuid4()))
    await wait_for(lambda: True, timeout=1)
    assert len(rec.requests) == 1

    rec.status = 200  # the receiver is back (or the subscription got its new address)
    rec.secret = created["secret"]
    assert (await admin.post(f"/api/v1/admin/webhooks/{created['id']}/resume")).status == 200
    await wait_for(lambda: len(rec.received) == 2, timeout=15, what="both events that waited")
