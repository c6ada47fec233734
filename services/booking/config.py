"""Settings of the booking service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.config import CommonSettings


class Settings(CommonSettings):
    service_name: ClassVar[str] = "booking"

    port: int = 8082

    # The public address of the gateway; manage links (R41) point there: <base>/manage/{id}?token=...
    public_base_url: str = "http://127.0.0.1:8080"

    # R38: how long a chosen slot is held for the customer while they type their data.
    hold_minutes: float = Field(default=5.0, gt=0, le=60)
    # R38 with R39: ... and at most this long in one go by one holder (the renewed hold, or the same client
    # network), renewals and holds taken again within a hold time included, so that one client cannot block
    # a slot for ever (then 409 `hold_limit_reached`; the slot stays bookable without a hold). The default
    # allows the ten renewals of WCAG 2.2.1 after the first hold.
    hold_max_minutes: float = Field(default=60.0, gt=0, le=24 * 60)
    # R39: a cancelled slot becomes bookable again only after this delay (against slot trading).
    cancel_release_minutes: float = Field(default=10.0, ge=0, le=24 * 60)
    # A customer's request for the manage link again renews one appointment's link at most this often.
    link_renewal_minutes: float = Field(default=10.0, ge=0, le=24 * 60)
    # ... and answers no sooner than this, whether the address has appointments or not, so that the time
    # of the answer does not tell who booked (the renewal's work takes a few milliseconds).
    link_request_min_seconds: float = Field(default=0.1, ge=0, le=5)
    # A repeated request with the same Idempotency-Key answers with the first result this long.
    idempotency_hours: float = Field(default=24.0, gt=0)

    # The scheduled transition of started appointments to `passed` (and clean-up of expired holds).
    passing_interval_seconds: float = Field(default=30.0, gt=0)
    passing_batch: int = Field(default=500, ge=1)  # ... appointments per run

    # R45, the waiting list (issue 11): how long a freed slot is held for the wish it is offered to (never
    # past the cutoff of its day), the shortest offer worth making, how long the opt-in link of a new wish
    # waits, how many unanswered offers end a wish (only offers whose mail reached the customer count),
    # and how often the matcher job looks for work.
    waiting_offer_hours: float = Field(default=2.0, gt=0, le=48)
    waiting_offer_min_minutes: float = Field(default=30.0, ge=0)  # ... the shortest offer
    waiting_opt_in_hours: float = Field(default=48.0, gt=0)  # ... the opt-in link
    waiting_max_missed_offers: int = Field(default=2, ge=1)  # ... unanswered offers
    waiting_match_interval_seconds: float = Field(default=15.0, gt=0)  # ... the matcher job

    # The availability cache of each replica (services/booking/cache.py): answers are kept while the
    # location's occupancy counter and catalog revision stay the same, at most this many seconds of the
    # clock (availability depends on "now"); 0 switches the cache off. At most `entries` answers are kept.
    availability_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    availability_cache_entries: int = Field(default=2000, ge=1)  # ... `entries`

    # Whether the app consumes catalog events and runs its periodic jobs (the benchmark turns them off).
    consume_catalog: bool = True
    run_jobs: bool = True  # ... the periodic jobs
    # Whether the app consumes the notifier's reports of waiting-list offer mails (`mail.offer_delivery`;
    # R45: only an offer whose mail was delivered counts as missed when it runs out). Off
    # (the benchmark), no offer counts as missed.
    consume_mail_reports: bool = True
