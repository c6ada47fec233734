"""Observability of the running system (R51): the correlation id of a booking request follows it through
the logs of the gateway, booking and the notifier into the mail's headers; the metrics an operator needs
(bookings and conflicts by reason, outbox lag, queue depth, mail delivery) are exported; the alerting
rules name them."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.conftest import wait_for
from tests.faults.system import System, book, mails_to

ROOT = Path(__file__).resolve().parents[2]


def _lines_with(system: System, service: str, cid: str) -> list[dict[str, object]]:
    return [line for line in system.services[service].log_lines() if line.get("correlation_id") == cid]


async def _metrics(http: aiohttp.ClientSession, system: System, service: str) -> str:
    async with http.get(f"{system.url(service)}/metrics") as response:
        assert response.status == 200
        return await response.text()


def _value(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.req("R51")
async def test_the_correlation_id_of_a_booking_follows_it_through_gateway_booking_notifier_and_mail(
    system: System,
) -> None:
    await system.wait_ready()
    cid = f"obs-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        attempt = await book(http, system, "obs", 1, headers={"X-Correlation-ID": cid})
    assert attempt.status == 201
    assert attempt.correlation_id == cid  # the gateway answers with the id it was given

    await wait_for(lambda: mails_to(system.sink, "obs"), timeout=30, what="the confirmation mail")
    (mail,) = mails_to(system.sink, "obs")[attempt.email]
    assert mail.parsed["X-Correlation-ID"] == cid

    async def logged_everywhere() -> bool:
        return all(_lines_with(system, name, cid) for name in ("gateway", "booking", "notifier"))

    await wait_for(logged_everywhere, timeout=15, what="a log line with the id in every service")
    gateway = _lines_with(system, "gateway", cid)
    assert any(line["event"] == "request_forwarded" and line["status"] == 201 for line in gateway)
    assert any(line["event"] == "appointment_booked" for line in _lines_with(system, "booking", cid))
    notifier = _lines_with(system, "notifier", cid)
    assert any(line["event"] == "event_applied" for line in notifier), notifier
    # Structured JSON with the service's name, and no personal data of the customer in any line.
    for name in ("gateway", "booking", "notifier", "reporting"):
        for line in system.services[name].log_lines():
            assert line.get("service") == name
            assert attempt.email not in json.dumps(line)


@pytest.mark.req("R51")
async def test_the_services_export_bookings_conflicts_outbox_lag_queue_depth_and_mail_metrics(
    system: System,
) -> None:
    await system.wait_ready()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        first = await book(http, system, "metrics", 1)
        assert first.status == 201
        # The same customer again: a conflict with its reason (R5).
        again = await book(http, system, "metrics", 1)
        assert again.status == 409
        await wait_for(lambda: mails_to(system.sink, "metrics"), timeout=30, what="the confirmation mail")

        booking = await _metrics(http, system, "booking")
        assert (_value(booking, "otv_booking_requests_total", outcome="booked") or 0) >= 1
        assert (_value(booking, "otv_booking_requests_total", outcome="already_booked") or 0) >= 1
        assert _value(booking, "otv_outbox_lag_seconds", service="booking") is not None
        assert _value(booking, "otv_outbox_pending", service="booking") is not None
        assert _value(booking, "otv_queue_messages", consumer="booking.catalog", queue="work") is not None

        notifier = await _metrics(http, system, "notifier")

        async def mail_counted() -> bool:
            text = await _metrics(http, system, "notifier")
            return (_value(text, "otv_mails_total", kind="confirmation", outcome="sent") or 0) >= 1

        await wait_for(mail_counted, timeout=10, what="the sent mail counted")
        for queue in ("work", "retry", "dead"):
            depth = _value(notifier, "otv_queue_messages", consumer="notifier.appointments", queue=queue)
            assert depth is not None, queue
        assert _value(notifier, "otv_events_consumed_total", consumer="notifier.appointments") is not None
        gateway = await _metrics(http, system, "gateway")
        assert _value(gateway, "otv_http_requests_total", service="gateway", method="POST") is not None


def test_the_alerting_rules_watch_queue_depth_dead_letters_and_booking_failures() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yaml").read_text(encoding="utf-8"))
    exprs = "\n".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    assert re.search(r"otv_queue_messages\{[^}]*queue=\"work\"", exprs)
    assert re.search(r"otv_queue_messages\{[^}]*queue=\"dead\"", exprs)
    assert "otv_booking_requests_total" in exprs
