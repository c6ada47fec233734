"""Maintenance commands of staff access: `python -m services.gateway <command>`.

- `create-admin <username> [--password-stdin]`  the first administrator (and any later one). The password
  is read from standard input (`--password-stdin`, or whenever standard input is not a terminal), else
  from `OTV_ADMIN_PASSWORD`, else prompted twice; there is never a default. It must meet the password
  rules (at least 12 characters, not the username).
- `load-demo`  the demo logins of every role (demo data only; `make run` calls it after the catalog's)
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys

import asyncpg

from services.gateway.config import Settings
from services.gateway.staff import build_staff
from services.gateway.staff.demo import load_demo_accounts
from services.gateway.staff.domain import GrantRow, check_new_password, check_username
from services.gateway.staff.service import ensure_account
from shared.clock import SystemClock
from shared.config import CommonSettings
from shared.db import create_pool
from shared.errors import OTVError
from shared.identity import Role


def _read_password(args: list[str]) -> str | None:
    if "--password-stdin" in args or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    from_env = os.environ.get("OTV_ADMIN_PASSWORD")
    if from_env:
        return from_env
    first = getpass.getpass("Password for the new administrator: ")
    second = getpass.getpass("The same password again: ")
    if first != second:
        print("The two passwords differ.", file=sys.stderr)
        return None
    return first


async def create_admin(settings: CommonSettings, args: list[str]) -> int:
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    names = [a for a in args if not a.startswith("--")]
    if len(names) != 1:
        print("usage: python -m services.gateway create-admin <username> [--password-stdin]", file=sys.stderr)
        return 2
    try:
        username = check_username(names[0])
    except OTVError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    password = await asyncio.to_thread(_read_password, args)
    if not password:
        print("No password given; nothing was created.", file=sys.stderr)
        return 2
    try:
        check_new_password(password, username=username, field="password")
    except OTVError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        staff = build_staff(settings, pool, SystemClock())
        await ensure_account(
            staff,
            username=username,
            password=password,
            grants=[GrantRow(Role.ADMIN, "*")],
            display_name=username,
            by="system:create-admin",
        )
    except OTVError as exc:  # it exists already: an existing account is never overwritten
        print(exc.message, file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"The database is not reachable: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    print(f"administrator {username!r} created; sign in at {settings.public_base_url}/staff/login")
    return 0


async def load_demo(settings: CommonSettings, args: list[str]) -> int:
    assert isinstance(settings, Settings)  # noqa: S101 -- the gateway's own settings, for mypy
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        staff = build_staff(settings, pool, SystemClock())
        done = await load_demo_accounts(staff, settings)
    except OTVError as exc:  # a real account with a demo name is never overwritten
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        await pool.close()
    created = sum(1 for _, new in done if new)
    print(
        f"demo logins: {len(done)} ({created} new), password from OTV_DEMO_PASSWORD: "
        + ", ".join(name for name, _ in done)
    )
    return 0


COMMANDS = {"create-admin": create_admin, "load-demo": load_demo}
