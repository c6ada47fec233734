"""Settings of the gateway (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "gateway"

    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"

    # Upstreams: one URL per replica, comma-separated; the gateway balances across them.
    catalog_urls: str = "http://127.0.0.1:8081"
    booking_urls: str = "http://127.0.0.1:8082"
    reporting_urls: str = "http://127.0.0.1:8083"
    notifier_urls: str = "http://127.0.0.1:8084"
    upstream_timeout: float = 10.0
    upstream_connect_timeout: float = 2.0

    def upstreams(self) -> dict[str, list[str]]:
        table = {
            "catalog": self.catalog_urls,
            "booking": self.booking_urls,
            "reporting": self.reporting_urls,
            "notifier": self.notifier_urls,
        }
        return {
            name: [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
            for name, urls in table.items()
        }
