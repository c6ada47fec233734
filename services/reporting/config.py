"""Settings of the reporting service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from shared.config import CommonSettings
from shared.networks import check_office_networks


class Settings(CommonSettings):
    service_name: ClassVar[str] = "reporting"

    port: int = 8083

    # retention_days and retention_interval_seconds (R34) come from CommonSettings, shared by every service.

    # R22: the day lists are created at this Berlin hour of their day (after the 06:00 booking cutoff).
    day_list_hour: int = Field(default=6, ge=0, le=23)
    # R33: a list's file is deleted this many hours after the end of its day (0: at midnight).
    day_list_keep_hours: int = Field(default=0, ge=0)
    # How often the scheduler looks for due, changed and expired lists.
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)

    # How many days ahead the offered capacity is written from a location's newest snapshot.
    capacity_horizon_days: int = Field(default=70, ge=1, le=400)

    # Exports show counts below this as "<5" (counts that could identify a person, R35), and as "(x)" the
    # counts that would give one of those back by subtraction from a total.
    statistics_min_count: int = Field(default=5, ge=1)
    # The longest period one statistics request may cover.
    statistics_max_days: int = Field(default=400, ge=1)

    # R48 thresholds: online bookings from one network or e-mail domain in the period, a new booking
    # this many minutes after a cancellation by the same customer, reschedules of one appointment.
    pattern_network_min: int = Field(default=10, ge=2)
    pattern_domain_min: int = Field(default=20, ge=2)  # ... per e-mail domain
    pattern_rebook_minutes: int = Field(default=60, ge=1)  # ... rebooking after a cancellation
    pattern_reschedule_min: int = Field(default=2, ge=1)  # ... reschedules
    # The known office networks, as the gateway reads them (one setting for both): their many bookings are
    # listed in the report marked as a known office's, not hidden (a script there would still show).
    bot_trusted_networks: str = ""

    # Keys the customer pseudonyms that the booking-pattern report compares over time (R48): the keyed
    # hash of the address that pairs a cancellation with the same customer's new booking, and the hash of
    # the customer's data that tells a change of them. Unset: OTV_INTERNAL_SECRET. It must never change
    # while reporting holds data; before rotating OTV_INTERNAL_SECRET, set this to that secret's current
    # value (deploy/README.md, "Rotating secrets").
    pseudonym_key: str | None = Field(default=None, min_length=16)

    @field_validator("bot_trusted_networks")
    @classmethod
    def _known_networks(cls, spec: str) -> str:
        return check_office_networks(spec)

    @property
    def pseudonym_secret(self) -> str:
        return self.pseudonym_key or self.internal_secret
