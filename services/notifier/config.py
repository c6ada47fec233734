"""Settings of the notifier service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "notifier"

    port: int = 8084
