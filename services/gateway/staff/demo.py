"""The gateway's demo data: the demo logins of every role (never in production; only `load-demo`
creates them, and `make run` prints them).

`demo-admin`, `demo-statistics`, `demo-audit`, and for every demo location `<id>-manager`,
`<id>-leader` (all groups of the location) and `<id>-admin`; the password is `OTV_DEMO_PASSWORD`
(default `otv-demo`). The location ids are those of the catalog's demo data: asked from the catalog's
API when it runs, else read from the catalog's demo data, else this list (kept equal to it).
"""

from __future__ import annotations

import importlib

import aiohttp
import structlog

from services.gateway.config import Settings
from services.gateway.staff.domain import GrantRow
from services.gateway.staff.service import Staff, ensure_account
from shared.identity import Role

log = structlog.get_logger(__name__)

# The catalog's demo locations (services/catalog/demo_data.py): the Geschäftsstellen and the JBA.
DEMO_LOCATIONS: tuple[str, ...] = ("mitte", "nord", "ost", "sued", "west", "jba")


async def _from_catalog_api(settings: Settings) -> list[str] | None:
    urls = settings.upstreams().get("catalog") or []
    timeout = aiohttp.ClientTimeout(total=3)
    for base in urls:
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{base}/api/v1/locations") as response,
            ):
                if response.status != 200:
                    continue
                data = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
        ids = [str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")]
        if ids:
            return ids
    return None


def _from_catalog_demo_data() -> list[str] | None:
    try:
        module = importlib.import_module("services.catalog.demo_data")
    except ImportError:
        return None
    locations = getattr(module, "LOCATIONS", None)
    if not isinstance(locations, list):
        return None
    ids = [str(item["id"]) for item in locations if isinstance(item, dict) and item.get("id")]
    return ids or None


async def demo_location_ids(settings: Settings) -> list[str]:
    return await _from_catalog_api(settings) or _from_catalog_demo_data() or list(DEMO_LOCATIONS)


def demo_accounts(location_ids: list[str]) -> list[tuple[str, list[GrantRow]]]:
    accounts: list[tuple[str, list[GrantRow]]] = [
        ("demo-admin", [GrantRow(Role.ADMIN, "*")]),
        ("demo-statistics", [GrantRow(Role.STATISTICS, "*")]),
        ("demo-audit", [GrantRow(Role.AUDIT, "*")]),
    ]
    for location in location_ids:
        accounts += [
            (f"{location}-manager", [GrantRow(Role.APPOINTMENT_MANAGER, location)]),
            (f"{location}-leader", [GrantRow(Role.GROUP_LEADER, location)]),
            (f"{location}-admin", [GrantRow(Role.LOCATION_ADMIN, location)]),
        ]
    return accounts


async def load_demo_accounts(staff: Staff, settings: Settings) -> list[tuple[str, bool]]:
    """Create (or reset to the demo password and roles) every demo login; (username, created)."""
    done: list[tuple[str, bool]] = []
    # One argon2 hash for all: the demo logins share one publicly known password anyway.
    password_hash = await staff.passwords.hash(settings.demo_password)
    for username, grants in demo_accounts(await demo_location_ids(settings)):
        created = await ensure_account(
            staff,
            username=username,
            password=settings.demo_password,
            grants=grants,
            display_name=f"Demo {username}",
            demo=True,
            by="system:load-demo",
            password_hash=password_hash,
        )
        done.append((username, created))
    log.info("demo_accounts_loaded", count=len(done))
    return done
