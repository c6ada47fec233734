"""Settings of the catalog service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "catalog"

    port: int = 8081
