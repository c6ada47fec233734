"""The load client of `make bench`: runs in a process of its own, so that its CPU is not the services'.

    python -m bench.load SPEC.json RESULT.json

The spec (written by `bench.suite`) names the scenario and its parameters; the result holds one record
per request (what, status, latency, wall-clock end), which the suite turns into the table. Loopback only,
bounded in count and in time.

Scenarios:
- `availability`: `concurrency` clients in a closed loop read availability for `duration` seconds;
- `bookings`: `concurrency` clients in a closed loop book `count` appointments on distinct free slots;
- `rush`: `customers` arrive spread over `arrival_seconds` (open loop); each reads availability once,
  then tries to book the slot it was given (five customers per slot), and takes the answer as it comes.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

# A request that hangs this long counts as failed (status 0); the scenarios are bounded anyway.
REQUEST_TIMEOUT = 30.0


@dataclass
class Recorder:
    records: list[tuple[str, int, float, float]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    async def call(
        self,
        http: aiohttp.ClientSession,
        what: str,
        method: str,
        url: str,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            async with http.request(method, url, **kwargs) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            status, body = 0, b""
        self.records.append((what, status, time.perf_counter() - started, time.time()))
        return status, body


def _customer(tag: str, n: int, letter: str) -> dict[str, str]:
    # Test data only (the .invalid top-level domain never exists). The customer number has the shape
    # 123D456789; the letter keeps the customers of two scenarios apart (one appointment each, R5).
    return {
        "first_name": "Last",
        "last_name": f"Test{n}",
        "email": f"{tag}-{n}@bench.invalid",
        "customer_number": f"{n // 1_000_000 % 1000:03d}{letter}{n % 1_000_000:06d}",
    }


async def availability(spec: dict[str, Any], rec: Recorder, http: aiohttp.ClientSession) -> None:
    base, location = spec["base"], spec["location"]
    days: list[str] = spec["days"]
    concerns: list[str] = spec["concerns"]
    range_days = int(spec.get("range_days", 14))
    deadline = time.perf_counter() + float(spec["duration"])
    rng = random.Random(7)  # noqa: S311 -- test data, not a secret

    async def client() -> None:
        while time.perf_counter() < deadline:
            first = rng.choice(days[: max(1, len(days) - range_days)])
            last = days[min(len(days) - 1, days.index(first) + range_days - 1)]
            params = {"concern": rng.choice(concerns), "mode": "in_person", "from": first, "to": last}
            await rec.call(
                http, "availability", "GET", f"{base}/api/v1/locations/{location}/availability", params=params
            )

    await asyncio.gather(*(client() for _ in range(int(spec["concurrency"]))))


async def bookings(spec: dict[str, Any], rec: Recorder, http: aiohttp.ClientSession) -> None:
    base, location, concern = spec["base"], spec["location"], spec["concern"]
    starts: list[str] = spec["starts"]  # each start has `per_start` free service points
    per_start = int(spec["per_start"])
    count = min(int(spec["count"]), len(starts) * per_start)
    deadline = time.perf_counter() + float(spec["max_seconds"])
    numbers = iter(range(count))
    tag = spec["tag"]

    async def client() -> None:
        for n in numbers:
            if time.perf_counter() > deadline:
                return
            body = {
                "location_id": location,
                "concern_id": concern,
                # Spread like real customers (and like pgbench's rows): consecutive bookings on
                # different starts; each start takes `per_start` bookings in the end.
                "start": starts[n % len(starts)],
                "mode": "in_person",
                "customer": _customer(tag, n, "B"),
            }
            await rec.call(
                http,
                "booking",
                "POST",
                f"{base}/api/v1/appointments",
                json=body,
                headers={"Idempotency-Key": f"{tag}-{n}"},
            )

    await asyncio.gather(*(client() for _ in range(int(spec["concurrency"]))))


async def rush(spec: dict[str, Any], rec: Recorder, http: aiohttp.ClientSession) -> None:
    base, location, concern = spec["base"], spec["location"], spec["concern"]
    starts: list[str] = spec["starts"]
    per_start = int(spec["per_start"])
    customers = int(spec["customers"])
    spread = float(spec["arrival_seconds"])
    tag = spec["tag"]
    rng = random.Random(11)  # noqa: S311 -- test data, not a secret
    units = len(starts) * per_start
    # Customer n wants unit order[n % units]: every unit is wanted by customers/units people, who arrive
    # at random moments; the first of them gets it, the others a 409.
    order = list(range(units))
    rng.shuffle(order)
    arrivals = sorted(rng.uniform(0, spread) for _ in range(customers))
    began = time.perf_counter()
    first_day, last_day = spec["from"], spec["to"]

    async def customer(n: int, at: float) -> None:
        await asyncio.sleep(max(0.0, began + at - time.perf_counter()))
        params = {"concern": concern, "mode": "in_person", "from": first_day, "to": last_day}
        await rec.call(
            http,
            "rush-availability",
            "GET",
            f"{base}/api/v1/locations/{location}/availability",
            params=params,
        )
        body = {
            "location_id": location,
            "concern_id": concern,
            "start": starts[order[n % units] // per_start],
            "mode": "in_person",
            "customer": _customer(tag, n, "R"),
        }
        status, answer = await rec.call(
            http,
            "rush-booking",
            "POST",
            f"{base}/api/v1/appointments",
            json=body,
            headers={"Idempotency-Key": f"{tag}-{n}"},
        )
        code = ""
        if status >= 400:
            try:
                code = str(json.loads(answer)["error"]["code"])
            except (ValueError, KeyError, TypeError):
                code = "no-error-body"
        outcomes.append((n, status, code, time.time()))

    outcomes: list[tuple[int, int, str, float]] = []
    await asyncio.gather(*(customer(n, at) for n, at in enumerate(arrivals)))
    spec["_outcomes"] = outcomes


SCENARIOS = {"availability": availability, "bookings": bookings, "rush": rush}


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host = urlsplit(spec["base"]).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load client talks to loopback only, not {host}")
    rec = Recorder()
    connector = aiohttp.TCPConnector(limit=int(spec.get("connections", 100)), force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await SCENARIOS[spec["scenario"]](spec, rec, http)
    return {
        "scenario": spec["scenario"],
        "wall_seconds": time.perf_counter() - began,
        "records": rec.records,
        "errors": rec.errors,
        "outcomes": spec.get("_outcomes", []),
    }


def main() -> int:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    try:
        # Optional: a faster loop leaves more of the machine to the services.
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
