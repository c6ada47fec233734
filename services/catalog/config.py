"""Settings of the catalog service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "catalog"

    port: int = 8081

    # The service centre's number the finder names when it cannot help (R3); empty: OTV_HOTLINE, the
    # number the customer pages and the mails give.
    service_centre_phone: str = ""

    # The longest request line the service reads (bytes). Larger than aiohttp's 8190, so that an
    # over-long finder query gets a 422 naming the field rather than the HTTP parser's plain-text 400.
    max_request_line: int = 65536
