"""R38 with R39: a hold is renewable (WCAG 2.2.1), but no client holds one slot for longer than
`OTV_HOLD_MAX_MINUTES` in one go, whether it renews the hold, holds it again right after it ran out, or
places a new hold from the same network; afterwards the slot is bookable by anybody."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from shared.clock import ManualClock
from tests.booking import factory
from tests.booking.factory import booking, iso

Client = TestClient[Any, Any]
TUESDAY_9 = iso("2026-03-03", "09:00")
HOLDS = f"/api/v1/locations/{factory.LOCATION}/holds"
SLOT = {"concern_id": "bescheid", "mode": "in_person", "start": TUESDAY_9}
ELSEWHERE = {"X-Forwarded-For": "198.51.100.7"}  # another customer's network


async def take_the_other_point(client: Client) -> None:
    """The slot's second service point is booked: one hold blocks the slot for everybody else."""
    response = await client.post("/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"))
    assert response.status == 201, await response.json()


@pytest.mark.req("R38")
@pytest.mark.req("R39")
async def test_renewing_a_hold_every_few_minutes_ends_at_the_cap_and_frees_the_slot(
    client: Client, clock: ManualClock
) -> None:
    await take_the_other_point(client)
    first = await (await client.post(HOLDS, json=SLOT)).json()
    started = clock.now()
    last: dict[str, Any] = first
    refused: dict[str, Any] | None = None
    for _ in range(30):  # two hours of renewals, four minutes apart
        clock.advance(timedelta(minutes=4))
        response = await client.post(HOLDS, json={**SLOT, "renews": first["hold_id"]})
        if response.status != 201:
            assert response.status == 409
            refused = await response.json()
            break
        last = await response.json()
        assert last["hold_id"] == first["hold_id"]
    assert refused is not None, "the hold was renewed for two hours"
    assert refused["error"]["code"] == "hold_limit_reached"
    # The last renewal gave at most the cap (60 minutes by default) from the first hold, never more.
    assert datetime.fromisoformat(last["expires_at"]) == started + timedelta(minutes=60)

    clock.set(started + timedelta(minutes=60, seconds=1))
    stranger = await client.post(
        "/api/v1/appointments", json=booking(TUESDAY_9, concern="bescheid"), headers=ELSEWHERE
    )
    assert stranger.status == 201, await stranger.json()


@pytest.mark.req("R38")
@pytest.mark.req("R39")
async def test_holding_again_right_after_expiry_or_without_renews_continues_the_same_hold_time(
    client: Client, clock: ManualClock
) -> None:
    """Letting the hold run out and taking it again at once (with `renews`, or as a new hold from the
    same network) does not start the clock afresh."""
    await take_the_other_point(client)
    started = clock.now()
    hold = await (await client.post(HOLDS, json=SLOT)).json()
    for minute in range(6, 60, 6):  # each hold runs out a minute before the next is taken
        clock.set(started + timedelta(minutes=minute))
        body = {**SLOT, "renews": hold["hold_id"]} if minute % 12 else SLOT
        response = await client.post(HOLDS, json=body)
        assert response.status == 201, (minute, await response.json())
        hold = await response.json()
    assert datetime.fromisoformat(hold["expires_at"]) == started + timedelta(minutes=59)
    clock.set(started + timedelta(minutes=60))
    again = await client.post(HOLDS, json=SLOT)
    assert again.status == 409 and (await again.json())["error"]["code"] == "hold_limit_reached"
    assert (await client.post(HOLDS, json=SLOT, headers=ELSEWHERE)).status == 201  # anybody else may


@pytest.mark.req("R38")
async def test_after_a_pause_of_one_hold_time_the_slot_can_be_held_again(
    client: Client, clock: ManualClock
) -> None:
    """The cap ends one hold, not the customer's chance: once the slot was free for a whole hold time
    (others could take it), holding it again starts anew."""
    await take_the_other_point(client)
    started = clock.now()
    hold = await (await client.post(HOLDS, json=SLOT)).json()
    for minute in range(4, 64, 4):
        clock.set(started + timedelta(minutes=minute))
        response = await client.post(HOLDS, json={**SLOT, "renews": hold["hold_id"]})
        if response.status != 201:
            break
    clock.set(started + timedelta(minutes=66))
    response = await client.post(HOLDS, json={**SLOT, "renews": hold["hold_id"]})
    assert response.status == 201, await response.json()
    assert datetime.fromisoformat((await response.json())["expires_at"]) == clock.now() + timedelta(minutes=5)
