"""The service centre's phone flows as its developer writes them from the published OpenAPI document and
the README alone (R37, R50): find the caller's location, list concerns, find free slots, book (with the
caller's e-mail, with the service centre's own internal address, a phone appointment), look it up again,
move it, cancel it, and the errors on the way. Every request and answer is checked against the document
the gateway serves, strictly (`api_client.DocumentedClient`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.identity import Role
from tests.conftest import wait_for
from tests.staff.api_client import Answer, DocumentedClient
from tests.staff.conftest import PASSWORD, Stack, StaffClient, wait_for_slots

# The customer pages (services/gateway/web) store their aiohttp-jinja2 environment under a plain string
# key, which aiohttp warns about; irrelevant to the API.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

DAY = "2026-03-03"
CENTRE_ADDRESS = "service-center@jobcenter-bremen.example"

STAFF_AVAILABILITY = "/api/v1/staff/locations/{location_id}/availability"
STAFF_HOLD = "/api/v1/staff/locations/{location_id}/holds"
STAFF_BOOK = "/api/v1/staff/appointments"
STAFF_FILE = "/api/v1/staff/appointments/{appointment_id}"
STAFF_SEARCH = "/api/v1/staff/appointments/search"
STAFF_MOVE = "/api/v1/staff/appointments/{appointment_id}/reschedule"
STAFF_CANCEL = "/api/v1/staff/appointments/{appointment_id}/cancel"


async def _prepare(admin: StaffClient) -> None:
    """What the jobcenter's administrators set up for the service centre: the street of the caller, the
    centre's internal address (R6), and phone appointments for the concern."""
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/admin/finder/streets", {"street": "Doventorsteinweg", "location_id": "mitte"}),
        ("POST", "/api/v1/admin/allow-list", {"entry": CENTRE_ADDRESS, "note": "Service-Center"}),
        (
            "PUT",
            "/api/v1/admin/locations/mitte/concerns/neuantrag",
            {"group_id": "mitte-ez", "duration_minutes": 30, "modes": ["in_person", "phone"]},
        ),
    ]
    for method, path, body in steps:
        response = await admin.request(method, path, json=body)
        assert response.status in (200, 201), (path, await response.text())


async def _client(stack: Stack) -> DocumentedClient:
    await wait_for_slots(stack.admin, "mitte", "neuantrag", DAY)
    await _prepare(stack.admin)
    key = await stack.admin.post(
        "/api/v1/admin/api-keys",
        json={
            "name": "Service-Center",
            "locations": ["mitte"],
            "operations": ["appointments:read", "appointments:write"],
        },
    )
    assert key.status == 201, await key.text()
    document = await (await stack.gateway.client.get("/api/v1/openapi.json")).json()
    return DocumentedClient(
        stack.gateway.client, document, headers={"Authorization": f"Bearer {(await key.json())['key']}"}
    )


def _caller(start: str, *, email: str, mode: str = "in_person", **customer: str) -> dict[str, Any]:
    return {
        "location_id": "mitte",
        "concern_id": "neuantrag",
        "start": start,
        "mode": mode,
        "customer": {"first_name": "Erika", "last_name": "Mustermann", "email": email, **customer},
    }


async def _free(api: DocumentedClient, mode: str = "in_person") -> list[str]:
    answer = await api.call(
        "GET",
        STAFF_AVAILABILITY,
        location_id="mitte",
        params={"concern": "neuantrag", "mode": mode, "from": DAY, "to": DAY},
    )
    assert answer.status == 200, answer.body
    return [slot["start"] for slot in answer.body["slots"]]


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_a_client_written_from_the_document_books_looks_up_moves_and_cancels_for_callers(
    stack: Stack,
) -> None:
    api = await _client(stack)
    # The caller's address: the responsible location.
    found = await api.call(
        "GET", "/api/v1/finder", params={"street": "Doventorsteinweg", "house_number": "44"}
    )
    assert found.status == 200 and found.body["result"] == "location", found.body
    assert found.body["location"]["id"] == "mitte"
    # What the agent tells a caller whose street is not found: the document explains every reason.
    unknown = await api.call("GET", "/api/v1/finder", params={"street": "Nirgendweg"})
    assert unknown.body["result"] == "unknown"
    reasons = api.document["components"]["schemas"]["FinderOut"]["properties"]["reason"]
    for answer in (found, unknown):
        assert f"`{answer.body['reason']}`" in reasons.get("description", ""), answer.body["reason"]
    concerns = await api.call("GET", "/api/v1/locations/{location_id}/concerns", location_id="mitte")
    assert [c["id"] for c in concerns.body] == ["neuantrag"]
    phone_slots = await wait_for(lambda: _free(api, "phone"), timeout=15, what="phone slots")
    slots = await _free(api)

    # With the caller's own e-mail address, and an Idempotency-Key kept for the retries.
    key = {"Idempotency-Key": str(uuid.uuid4())}
    own = _caller(slots[0], email="erika@example.org", customer_number="123A456789")
    booked = await api.call("POST", STAFF_BOOK, json=own, headers=key)
    assert booked.status == 201, booked.body
    # Without an e-mail address of their own: the service centre's internal one (R6, R37); a phone
    # appointment needs the number (R49).
    centre = _caller(
        phone_slots[1], email=CENTRE_ADDRESS, mode="phone", phone="0421 123456", customer_number="987B654321"
    )
    by_phone = await api.call("POST", STAFF_BOOK, json=centre, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert by_phone.status == 201, by_phone.body
    assert by_phone.body["mode"] == "phone"

    # Looked up again: by id, and by the reference the caller reads out.
    file = await api.call("GET", STAFF_FILE, appointment_id=booked.body["id"])
    assert file.status == 200 and file.body["channel"] == "service_centre"
    search = await api.call("GET", STAFF_SEARCH, params={"q": by_phone.body["reference"]})
    assert [a["id"] for a in search.body] == [by_phone.body["id"]]
    # ... also as the caller reads it out, and the document says so.
    spoken = by_phone.body["reference"].replace("-", " ").lower()
    heard = await api.call("GET", STAFF_SEARCH, params={"q": spoken})
    assert [a["id"] for a in heard.body] == [by_phone.body["id"]]
    assert "without its hyphen" in api.document["paths"][STAFF_SEARCH]["get"]["description"]
    assert search.body[0]["customer"]["phone"] == "0421 123456"

    moved = await api.call("POST", STAFF_MOVE, appointment_id=booked.body["id"], json={"start": slots[2]})
    assert moved.status == 200 and moved.body["start"] == slots[2], moved.body
    cancelled = await api.call(
        "POST", STAFF_CANCEL, appointment_id=by_phone.body["id"], json={"reason": "Anruf: verhindert"}
    )
    assert cancelled.status == 200 and cancelled.body == {"status": "cancelled"}
    # The CRM's own correlation id comes back (the document's description), for tracing with operators.
    traced = await api.client.get(
        STAFF_FILE.format(appointment_id=booked.body["id"]),
        headers={**api.headers, "X-Correlation-ID": "crm-call-4711"},
    )
    assert traced.headers["X-Correlation-ID"] == "crm-call-4711"
    assert api.findings == []


@pytest.mark.req("R50")
async def test_the_errors_a_service_centre_meets_are_the_documented_ones(stack: Stack) -> None:
    api = await _client(stack)
    slots = await _free(api)
    first = await api.call(
        "POST", STAFF_BOOK, json=_caller(slots[0], email="a@example.org", customer_number="111A000001")
    )
    assert first.status == 201, first.body
    outcomes: list[Answer] = [
        # The same customer again, with a new key: the one-appointment rule (R5).
        await api.call(
            "POST", STAFF_BOOK, json=_caller(slots[1], email="a@example.org", customer_number="111A000001")
        ),
        # No customer number and no household number.
        await api.call("POST", STAFF_BOOK, json=_caller(slots[1], email="b@example.org")),
        # A phone appointment without a number.
        await api.call(
            "POST",
            STAFF_BOOK,
            json=_caller(slots[1], email="c@example.org", mode="phone", customer_number="333C000003"),
        ),
        # A start that is no slot.
        await api.call(
            "POST",
            STAFF_BOOK,
            json=_caller(f"{DAY}T07:10:00+01:00", email="d@example.org", customer_number="444D000004"),
        ),
        # Another location than the key's.
        await api.call(
            "POST",
            STAFF_BOOK,
            json={
                **_caller(slots[1], email="e@example.org", customer_number="555E000005"),
                "location_id": "nord",
            },
        ),
        await api.call("GET", STAFF_FILE, appointment_id=str(uuid.uuid4())),
        await api.call("GET", STAFF_FILE, appointment_id="not-a-uuid", wrong=True),
        await api.call("POST", STAFF_CANCEL, appointment_id=str(uuid.uuid4()), json={"reason": "x"}),
        await api.call(
            "POST", STAFF_MOVE, appointment_id=first.body["id"], json={"start": "tomorrow"}, wrong=True
        ),
        await api.call("GET", STAFF_AVAILABILITY, location_id="mitte", params={"concern": "unbekannt"}),
        await api.call("GET", STAFF_SEARCH, params={"q": "x"}, wrong=True),
        await api.call(
            "GET", STAFF_FILE, appointment_id=first.body["id"], headers={"Authorization": "Bearer otv_nope"}
        ),
        await api.call(
            "GET", STAFF_FILE, appointment_id=first.body["id"], headers={"Authorization": "Basic eA=="}
        ),
    ]
    # Two service points: the third booking of one slot is refused.
    for n in range(3):
        taken = await api.call(
            "POST",
            STAFF_BOOK,
            json=_caller(slots[3], email=f"t{n}@example.org", customer_number=f"777T00000{n}"),
        )
        outcomes.append(taken)
    statuses = [(a.status, a.code if a.status >= 400 else "") for a in outcomes]
    assert statuses == [
        (409, "already_booked"),
        (422, "validation_error"),
        (422, "validation_error"),
        (422, "validation_error"),
        (403, "forbidden"),
        (404, "not_found"),
        (404, "not_found"),
        (404, "not_found"),
        (422, "validation_error"),
        (422, "validation_error"),
        (422, "validation_error"),
        (401, "unauthenticated"),
        (401, "unauthenticated"),
        (201, ""),
        (201, ""),
        (409, "slot_taken"),
    ], statuses
    # The repeat without a key names the appointment the first booking made.
    assert outcomes[0].body["error"]["details"][0]["appointment_id"] == first.body["id"]
    # A 401 names the scheme to authenticate with (RFC 9110 15.5.2), as the document declares it.
    for refused in outcomes[11:13]:
        assert refused.headers["WWW-Authenticate"].startswith("Bearer "), refused.headers
    assert "WWW-Authenticate" in api.document["paths"][STAFF_FILE]["get"]["responses"]["401"]["headers"]
    # The rules behind the 422s a correct client could have kept are in the document, at their field.
    customer = api.document["components"]["schemas"]["CustomerIn"]["properties"]
    for refused, field in ((outcomes[1], "customer_number"), (outcomes[2], "phone")):
        assert [d["field"] for d in refused.body["error"]["details"]] == [f"customer.{field}"]
        assert "required" in customer[field].get("description", "").lower(), field
    assert api.findings == []


@pytest.mark.req("R50")
async def test_a_key_without_the_operation_is_403_and_refused_keys_beyond_the_limit_429_with_retry_after(
    stack: Stack,
) -> None:
    api = await _client(stack)
    read_only = await stack.admin.post(
        "/api/v1/admin/api-keys",
        json={"name": "Lesend", "locations": ["mitte"], "operations": ["appointments:read"]},
    )
    slots = await _free(api)
    body = _caller(slots[0], email="r@example.org", customer_number="121R000012")
    refused = await api.call(
        "POST", STAFF_BOOK, json=body, headers={"Authorization": f"Bearer {(await read_only.json())['key']}"}
    )
    assert (refused.status, refused.code) == (403, "forbidden")
    # Beyond ten refused keys a minute from one network (README): 429, and when to come back.
    wrong = {"Authorization": "Bearer otv_abc_wrong"}
    answers = [
        await api.call("GET", STAFF_FILE, appointment_id=str(uuid.uuid4()), headers=wrong) for _ in range(11)
    ]
    assert [(a.status, a.code) for a in answers] == [(401, "unauthenticated")] * 10 + [(429, "rate_limited")]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert "Retry-After" in api.document["paths"][STAFF_FILE]["get"]["responses"]["429"]["headers"]
    assert api.findings == []


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_retries_after_a_timeout_book_move_and_cancel_once(stack: Stack) -> None:
    """A client that lost the answer repeats the request: the booking (with its key) answers the first
    result, also when both copies arrive at once; the move and the cancellation answer as the first did."""
    api = await _client(stack)
    slots = await _free(api)
    body = _caller(slots[0], email="retry@example.org", customer_number="999R000009")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    twice = await asyncio.gather(*(api.call("POST", STAFF_BOOK, json=body, headers=key) for _ in range(2)))
    assert [a.status for a in twice] == [201, 201], [a.body for a in twice]
    assert twice[0].body == twice[1].body
    appointment = twice[0].body["id"]

    move = {"start": slots[1]}
    moves = await asyncio.gather(
        *(api.call("POST", STAFF_MOVE, appointment_id=appointment, json=move) for _ in range(2))
    )
    assert [a.status for a in moves] == [200, 200], [a.body for a in moves]
    assert moves[0].body == moves[1].body
    cancels = await asyncio.gather(
        *(
            api.call("POST", STAFF_CANCEL, appointment_id=appointment, json={"reason": "Anruf"})
            for _ in range(2)
        )
    )
    assert [(a.status, a.body) for a in cancels] == [(200, {"status": "cancelled"})] * 2
    file = await api.call("GET", STAFF_FILE, appointment_id=appointment)
    kinds = [entry["kind"] for entry in file.body["history"]]
    assert kinds.count("rescheduled") == 1 and kinds.count("cancelled") == 1, kinds
    # ... as the document promises, so that the client repeats them without a key.
    for template in (STAFF_MOVE, STAFF_CANCEL):
        assert "Repeating" in api.document["paths"][template]["post"]["description"], template
    assert api.findings == []


@pytest.mark.req("R38")
@pytest.mark.req("R50")
async def test_a_hold_repeated_with_its_key_after_a_lost_answer_is_the_first_hold_not_slot_taken(
    stack: Stack,
) -> None:
    """The agent's system held the last free point of a slot, but the answer was lost (a timeout); its
    retry must not find the slot taken by its own hold, nor hold a second point while the caller waits."""
    api = await _client(stack)
    slots = await _free(api)
    other = await api.call(
        "POST", STAFF_BOOK, json=_caller(slots[0], email="o@example.org", customer_number="131O000013")
    )
    assert other.status == 201, other.body
    hold = {"concern_id": "neuantrag", "mode": "in_person", "start": slots[0]}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.call("POST", STAFF_HOLD, location_id="mitte", json=hold, headers=key)
    assert first.status == 201, first.body
    again = await api.call("POST", STAFF_HOLD, location_id="mitte", json=hold, headers=key)
    assert (again.status, again.body) == (201, first.body)
    booked = await api.call(
        "POST",
        STAFF_BOOK,
        json={
            **_caller(slots[0], email="h@example.org", customer_number="141H000014"),
            "hold_id": first.body["hold_id"],
        },
        headers=key,  # the same key for the booking: another operation, another answer
    )
    assert booked.status == 201, booked.body

    # Both copies at once, on a slot with two free points: one hold, not two.
    other_slot = {**hold, "start": slots[1]}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    both = await asyncio.gather(
        *(api.call("POST", STAFF_HOLD, location_id="mitte", json=other_slot, headers=key) for _ in range(2))
    )
    assert [a.status for a in both] == [201, 201] and both[0].body == both[1].body
    third = await api.call("POST", STAFF_HOLD, location_id="mitte", json=other_slot)
    assert third.status == 201, third.body  # the second point is still free
    # The same key for another slot is another request.
    reused = await api.call(
        "POST", STAFF_HOLD, location_id="mitte", json={**hold, "start": slots[2]}, headers=key
    )
    assert (reused.status, reused.code) == (422, "validation_error")
    assert reused.body["error"]["details"][0]["field"] == "Idempotency-Key"
    assert api.findings == []


@pytest.mark.req("R12")
@pytest.mark.req("R50")
def test_the_booking_fields_whose_rules_a_client_must_know_are_described_in_the_document() -> None:
    """A CRM developer reads the fields' meaning in the document: the evening declaration an evening slot
    needs (else 422), the interpreter, the hold."""
    from services.gateway.openapi import document

    schemas = document()["components"]["schemas"]
    booking = schemas["StaffBookingRequest"]["properties"]
    assert "`evening_reserved`" in booking["evening_declaration"].get("description", "")
    assert "interpreter" in booking["interpreter_language"].get("description", "")
    move = schemas["RescheduleRequest"]["properties"]
    assert "`evening_reserved`" in move["evening_declaration"].get("description", "")
    assert "run out" in move["hold_id"].get("description", "")
    # The booking's answer carries the customer's secret link: the CRM must know not to keep it.
    manage_url = schemas["AppointmentOut"]["properties"]["manage_url"].get("description", "")
    assert "?token=" in manage_url and "secret" in manage_url, manage_url


@pytest.mark.req("R50")
def test_the_document_says_how_the_v1_api_changes_so_that_a_client_is_written_to_last() -> None:
    from services.gateway.openapi import document

    info = document()["info"]
    major, minor, patch = (int(part) for part in info["version"].split("."))
    assert major == 1 and (minor, patch) >= (1, 0)
    for promise in ("additive", "ignores answer fields it does not know", "/api/v2/", "X-Correlation-ID"):
        assert promise in info["description"], promise


@pytest.mark.req("R50")
async def test_a_day_list_range_beyond_its_limit_is_refused_naming_the_parameter_the_document_limits(
    stack: Stack,
) -> None:
    """The CRM reads a location's appointments for a day or a week (`to`): a range the document does not
    allow is a 422 whose detail names the query parameter to correct, as for the availability's `to`."""
    api = await _client(stack)
    day_list = "/api/v1/staff/locations/{location_id}/appointments"
    parameters = {p["name"]: p for p in api.document["paths"][day_list]["get"]["parameters"]}
    assert "6 days" in parameters["to"].get("description", ""), parameters["to"]
    week = await api.call("GET", day_list, location_id="mitte", params={"date": DAY, "to": "2026-03-09"})
    assert week.status == 200, week.body
    refused = [
        await api.call("GET", day_list, location_id="mitte", params={"date": DAY, "to": to})
        for to in ("2026-03-10", "2026-03-02")
    ]
    # The call list of a day (staff only) takes the same range.
    calls = await stack.admin.get(
        "/api/v1/staff/locations/mitte/calls", params={"date": DAY, "to": "2026-03-17"}
    )
    bodies = [*(a.body for a in refused), await calls.json()]
    assert [a.status for a in refused] + [calls.status] == [422] * 3, bodies
    for body in bodies:
        assert body["error"]["code"] == "validation_error"
        assert [d["field"] for d in body["error"]["details"]] == ["to"], body
    # The availability's range and defaults are where the client reads its query parameters.
    availability = {
        p["name"]: p.get("description", "")
        for p in api.document["paths"][STAFF_AVAILABILITY]["get"]["parameters"]
    }
    assert "56 days" in availability["to"] and "today" in availability["from"], availability
    assert api.findings == []


@pytest.mark.req("R9")
@pytest.mark.req("R50")
async def test_a_cancellation_whose_reason_is_blank_is_refused_and_the_appointment_stays(
    stack: Stack,
) -> None:
    """The reason is required (ARCHITECTURE.md: `{reason}`), and the customer reads it word for word when
    the jobcenter cancels: a reason of spaces alone is no reason, as on the staff page."""
    api = await _client(stack)
    slots = await _free(api)
    booked = await api.call(
        "POST", STAFF_BOOK, json=_caller(slots[0], email="blank@example.org", customer_number="151B000015")
    )
    assert booked.status == 201, booked.body
    reason = api.document["components"]["schemas"]["CancelIn"]["properties"]["reason"]
    assert reason.get("pattern") == "\\S", reason  # the document says so: not blank
    for blank in ("   ", "\n\t"):
        refused = await api.call(
            "POST",
            STAFF_CANCEL,
            appointment_id=booked.body["id"],
            json={"reason": blank, "on_customer_request": False},
            wrong=True,
        )
        assert (refused.status, refused.code) == (422, "validation_error"), refused.body
        assert [d["field"] for d in refused.body["error"]["details"]] == ["reason"]
    file = await api.call("GET", STAFF_FILE, appointment_id=booked.body["id"])
    assert file.body["status"] == "booked" and file.body["history"] == [], file.body
    cancelled = await api.call(
        "POST",
        STAFF_CANCEL,
        appointment_id=booked.body["id"],
        json={"reason": "  Krankheit der Sachbearbeitung  ", "on_customer_request": False},
    )
    assert cancelled.status == 200, cancelled.body
    file = await api.call("GET", STAFF_FILE, appointment_id=booked.body["id"])
    assert file.body["cancel_reason"] == "Krankheit der Sachbearbeitung"
    assert api.findings == []


@pytest.mark.req("R38")
@pytest.mark.req("R50")
async def test_an_agent_renewing_a_hold_past_the_hold_limit_gets_the_documented_refusal(stack: Stack) -> None:
    """A caller who takes long: the agent renews the hold (`renews`) until the limit of one holder
    (OTV_HOLD_MAX_MINUTES, 60): the 409 is one the document names for the staff route too."""
    api = await _client(stack)
    slots = await _free(api)
    hold = {"concern_id": "neuantrag", "mode": "in_person", "start": slots[0]}
    first = await api.call("POST", STAFF_HOLD, location_id="mitte", json=hold)
    assert first.status == 201, first.body
    answers = []
    for _ in range(16):  # every four minutes, for longer than an hour
        stack.gateway.clock.advance(timedelta(minutes=4))
        answers.append(
            await api.call(
                "POST", STAFF_HOLD, location_id="mitte", json={**hold, "renews": first.body["hold_id"]}
            )
        )
    assert {a.status for a in answers[:14]} == {201}, [a.body for a in answers]
    assert (answers[-1].status, answers[-1].code) == (409, "hold_limit_reached"), answers[-1].body
    # ... and the slot can still be booked without the hold.
    booked = await api.call(
        "POST", STAFF_BOOK, json=_caller(slots[0], email="long@example.org", customer_number="161L000016")
    )
    assert booked.status == 201, booked.body
    assert api.findings == []


@pytest.mark.req("R38")
@pytest.mark.req("R50")
async def test_a_booking_with_a_hold_that_ran_out_is_booked_as_the_document_says(stack: Stack) -> None:
    """The caller took longer than the hold: the agent's system books with the stale `hold_id`. The
    document says what that does, and it does so: booked on a free point, as without a hold."""
    api = await _client(stack)
    slots = await _free(api)
    hold = await api.call(
        "POST",
        STAFF_HOLD,
        location_id="mitte",
        json={"concern_id": "neuantrag", "mode": "in_person", "start": slots[0]},
    )
    assert hold.status == 201, hold.body
    stack.gateway.clock.advance(timedelta(minutes=30))
    booked = await api.call(
        "POST",
        STAFF_BOOK,
        json={
            **_caller(slots[0], email="late@example.org", customer_number="171L000017"),
            "hold_id": hold.body["hold_id"],
        },
    )
    assert booked.status == 201, booked.body
    hold_id = api.document["components"]["schemas"]["StaffBookingRequest"]["properties"]["hold_id"]
    assert "run out" in hold_id.get("description", ""), hold_id
    assert api.findings == []


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_a_client_signed_in_with_a_session_writes_with_the_documented_csrf_header(stack: Stack) -> None:
    """A CRM without an API key signs in as an agent (`POST /api/v1/staff/login`) and, being no browser,
    sends no `Origin`: the document names the header its writes carry instead, and the refusal says it."""
    keyed = await _client(stack)
    await stack.gateway.account("crm-agent", (Role.APPOINTMENT_MANAGER, "mitte"))
    api = DocumentedClient(stack.gateway.client, keyed.document)
    login = await api.call(
        "POST", "/api/v1/staff/login", json={"username": "crm-agent", "password": PASSWORD}
    )
    assert login.status == 200, login.body
    api.headers = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    stack.gateway.client.session.cookie_jar.clear()  # the session travels in the header above only
    slots = await _free(api)
    body = _caller(slots[0], email="agent@example.org", customer_number="181A000018")
    refused = await api.call("POST", STAFF_BOOK, json=body)
    assert (refused.status, refused.code) == (403, "csrf_failed"), refused.body
    assert "X-CSRF-Token" in refused.body["error"]["message"]
    booked = await api.call("POST", STAFF_BOOK, json=body, headers={"X-CSRF-Token": login.body["csrf_token"]})
    assert booked.status == 201, booked.body
    file = await api.call("GET", STAFF_FILE, appointment_id=booked.body["id"])
    assert file.body["channel"] == "staff"
    me = keyed.document["paths"]["/api/v1/staff/me"]["get"]["description"]
    assert me.startswith("Needs any signed-in staff member."), me
    assert api.findings == []


@pytest.mark.req("R37")
@pytest.mark.req("R50")
async def test_a_key_reads_who_it_is_before_it_books_for_callers(stack: Stack) -> None:
    """A CRM checks at start what its key may do (`GET /api/v1/staff/me`, whose answer names the kind
    `api_key` and the channel `service_centre`): it was 403 for every key, so a wrongly scoped key showed
    only at the first caller's booking."""
    api = await _client(stack)
    me = await api.call("GET", "/api/v1/staff/me")
    assert me.status == 200, me.body
    assert (me.body["kind"], me.body["channel"]) == ("api_key", "service_centre")
    assert sorted(me.body["operations"]) == ["appointments:read", "appointments:write"]
    assert [(g["role"], g["locations"]) for g in me.body["grants"]] == [("service_centre", ["mitte"])]
    assert "csrf_token" not in me.body  # a key has no session
    assert {"apiKey": []} in api.document["paths"]["/api/v1/staff/me"]["get"]["security"]
    assert api.findings == []
