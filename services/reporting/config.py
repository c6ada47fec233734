"""Settings of the reporting service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "reporting"

    port: int = 8083
