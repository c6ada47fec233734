"""Settings of the booking service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "booking"

    port: int = 8082
