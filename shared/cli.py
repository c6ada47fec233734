"""The entry point of every service: `python -m services.<name> [command]`.

Without a command the service serves HTTP until SIGTERM. Commands (e.g. `load-demo`) are the
service's own maintenance tasks; each reads the same settings.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web

from shared.config import CommonSettings
from shared.logging import configure_logging
from shared.web import run

Command = Callable[[CommonSettings, list[str]], Coroutine[Any, Any, int]]


def main(
    settings_cls: type[CommonSettings],
    create_app: Callable[[CommonSettings], web.Application],
    commands: Mapping[str, Command] | None = None,
) -> None:
    settings = settings_cls()
    configure_logging(settings.service_name, level=settings.log_level, json=settings.log_json)
    args = sys.argv[1:]
    commands = commands or {}
    if not args or args[0] == "serve":
        run(create_app(settings), settings)
        return
    command = commands.get(args[0])
    if command is None:
        known = ", ".join(["serve", *commands]) or "serve"
        print(f"unknown command {args[0]!r}; known: {known}", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(command(settings, args[1:])))
