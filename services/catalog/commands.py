"""Maintenance commands of the catalog service: `python -m services.catalog <command>`.

- `load-demo [--force]`  the demo data of Jobcenter Bremen (idempotent; see `demo`)
- `republish [--new-revision]`  every location's snapshot and the allow-list again, for a new consumer
- `policy-check [--json] [--on YYYY-MM-DD]`  where locations fall short of directive 3.2/3.3 (R21);
  exits 1 when a shortfall has no prior approval
"""

from __future__ import annotations

import json
import sys
from datetime import date

from services.catalog import demo, service
from shared.clock import SystemClock
from shared.config import CommonSettings
from shared.db import create_pool


async def load_demo(settings: CommonSettings, args: list[str]) -> int:
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        result = await demo.load_demo(pool, SystemClock(), force="--force" in args)
    finally:
        await pool.close()
    if result.skipped:
        print("demo data: already loaded (unchanged); --force syncs anyway")
    else:
        published = ", ".join(f"{k} r{v}" for k, v in sorted(result.published.items())) or "none"
        print(f"demo data: loaded; snapshots published: {published}; finder streets: {result.streets}")
    return 0


async def republish(settings: CommonSettings, args: list[str]) -> int:
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        count = await service.republish_all(pool, SystemClock(), new_revision="--new-revision" in args)
    finally:
        await pool.close()
    print(f"republished {count} location snapshot(s) and the allow-list (into the outbox)")
    return 0


async def policy_check(settings: CommonSettings, args: list[str]) -> int:
    on: date | None = None
    if "--on" in args:
        position = args.index("--on") + 1
        try:
            on = date.fromisoformat(args[position])
        except (IndexError, ValueError):
            print("--on needs a date YYYY-MM-DD", file=sys.stderr)
            return 2
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        report = await service.policy_report(pool, SystemClock(), on=on)
    finally:
        await pool.close()
    if "--json" in args:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for location in report:
            state = "ok" if location["complies"] else f"{len(location['findings'])} finding(s)"
            print(f"{location['location_id']:<12} {location['name']:<40} {state}")
            for finding in location["findings"]:
                approved = f"  [approved: {finding['approval']['reference']}]" if finding["approved"] else ""
                print(f"    {finding['rule']} {finding['code']}: {finding['message']}{approved}")
    unapproved = [f for loc in report for f in loc["findings"] if not f["approved"]]
    return 1 if unapproved else 0


COMMANDS = {"load-demo": load_demo, "republish": republish, "policy-check": policy_check}
