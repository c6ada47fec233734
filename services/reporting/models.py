"""The shapes of reporting's answers: statistics figures, the summary of the architecture's contract, the
booking-pattern report and the deletion report. Pydantic models without I/O, shared by the use cases,
the JSON API, the pages and the Excel export."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from services.reporting.domain import LEAD_TIME_BUCKETS, utilisation


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- statistics (R32, R35) -----------------------------------------------------------------------------


class Figures(_Model):
    """The figures of one slice (a location, a concern, a day, ... or everything). Appointments are
    counted by the Berlin day of their (current) start; a cancelled appointment counts as an appointment
    and as a cancellation."""

    key: str = Field(description="The slice: a location or concern id, a mode, a channel, a date, a week.")
    label: str
    appointments: int = 0
    cancellations: int = Field(default=0, description="Cancelled appointments, without the hand-overs.")
    cancelled_by: dict[str, int] = Field(
        default_factory=dict,
        description="Cancellations by who cancelled: customer, staff, ... (without the hand-overs).",
    )
    handed_over: int = Field(
        default=0,
        description="Appointments handed over to the responsible location without a free slot (R25): "
        "cancelled here, the concern goes to a callback there; not a cancellation.",
    )
    transferred_in: int = Field(
        default=0, description="Appointments taken over from another location (R25) into this slice."
    )
    transferred_out: int | None = Field(
        default=None,
        description="Appointments booked at this location and taken over by another one (R25), counted "
        "by their day; for locations and the total only.",
    )
    no_shows: int = 0
    outcomes: dict[str, int] = Field(
        default_factory=dict,
        description="Recorded outcomes: resolved, placement, callback, no_show, and follow_up (a "
        "follow-up booked in the responsible team, R24).",
    )
    without_outcome: int = Field(
        default=0,
        description="Appointments that have passed (not cancelled) with no outcome recorded: beside the "
        "recorded ones, what a no-show rate is read against.",
    )
    interpreter: int = Field(default=0, description="Appointments with an interpreter (R26).")
    booked_minutes: int = Field(default=0, description="Minutes of appointments not cancelled.")
    offered_minutes: int | None = Field(
        default=None,
        description="Minutes offered (windows x service points); none for concern, mode, channel.",
    )
    lead_time_mean_hours: float | None = None
    lead_time_median_hours: float | None = None
    lead_time_buckets: dict[str, int] = Field(
        default_factory=lambda: {label: 0 for label, _ in LEAD_TIME_BUCKETS},
        description="Appointments by the time between booking and start.",
    )

    @computed_field(description="booked_minutes / offered_minutes, 0..1 (or more when overbooked).")  # type: ignore[prop-decorator]  # pydantic's documented use
    @property
    def utilisation(self) -> float | None:
        return utilisation(self.booked_minutes, self.offered_minutes)


class CallbackFigures(_Model):
    """Callback tickets created in the period (directive 2.3: within 48 hours). A ticket withdrawn because
    the outcome was corrected away from callback is counted in `withdrawn` only."""

    key: str
    label: str
    created: int = Field(default=0, description="Tickets created, without the withdrawn ones.")
    closed_in_time: int = 0
    closed_late: int = 0
    open_in_time: int = 0
    open_overdue: int = 0
    withdrawn: int = Field(
        default=0,
        description="Tickets closed because the outcome was corrected away from callback: nobody was to "
        "call back, so they count neither as created nor as closed in time.",
    )


class WaitingFigures(_Model):
    """The waiting list's events in the period (R45), by the Berlin day they happened: wishes for a time
    the offered appointments did not meet (DA 3.3), and what became of them. Counts only (R34).

    The split into `re_registered`, `replaced`, `not_confirmed` and the two kinds of `fulfilled` began with
    the release of December 2026; days before it count those under `registered`, `withdrawn`, `expired`
    and `fulfilled`, so a period across that release does not compare like with like."""

    key: str
    label: str
    registered: int = Field(
        default=0,
        description="Wishes entered; a new registration that replaced the same customer's unconfirmed "
        "wish is in `re_registered` instead (one customer, one wish).",
    )
    confirmed: int = Field(default=0, description="Wishes whose e-mail address was confirmed.")
    offered: int = Field(default=0, description="Freed times offered to a waiting customer.")
    offer_expired: int = Field(
        default=0,
        description="Offers not taken in time whose mail had reached the customer (missed); those whose "
        "mail never did are in `offer_not_delivered` (days before the release of December 2026 count "
        "every expired offer here).",
    )
    offer_not_delivered: int = Field(
        default=0,
        description="Offers that ran out while their mail had never reached the customer (a mail relay "
        "outage until the offer's end, a suppressed address): not counted as missed against the wish.",
    )
    fulfilled: int = Field(
        default=0,
        description="Wishes ended by a booking: `fulfilled_via_offer` + `fulfilled_on_own` (days "
        "counted before the split have the sum only).",
    )
    fulfilled_via_offer: int = Field(default=0, description="Wishes ended by booking a time offered.")
    fulfilled_on_own: int = Field(
        default=0, description="Wishes ended because the customer booked an appointment on their own."
    )
    withdrawn: int = Field(
        default=0, description="Wishes withdrawn by the customer (not those in `replaced`)."
    )
    expired: int = Field(
        default=0,
        description="Wishes ended without an appointment: their last day passed, or too many offers "
        "missed (not those in `not_confirmed`).",
    )
    not_confirmed: int = Field(
        default=0, description="Registrations ended because the e-mail address was never confirmed."
    )
    replaced: int = Field(
        default=0,
        description="Unconfirmed wishes replaced by a new registration of the same customer.",
    )
    re_registered: int = Field(
        default=0,
        description="Registrations that replaced the same customer's unconfirmed wish (not in `registered`).",
    )


class MailFigures(_Model):
    kind: str
    sent: int = 0
    failed: int = 0


DIMENSIONS = ("location", "group", "concern", "mode", "channel", "day", "week", "evening")


class StatisticsReport(_Model):
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    location: str | None
    total: Figures
    by_location: list[Figures]
    by_group: list[Figures]
    by_concern: list[Figures]
    by_mode: list[Figures]
    by_channel: list[Figures]
    by_day: list[Figures]
    by_week: list[Figures]
    by_evening: list[Figures] = Field(
        default_factory=list,
        description="Appointments in evening windows (key `evening`, R12, directive 3.3) and the others "
        "(`daytime`), with the minutes offered in each when every day of the period knows them.",
    )
    callbacks: CallbackFigures
    callbacks_by_location: list[CallbackFigures]
    mails: list[MailFigures]
    waiting: WaitingFigures = Field(
        default_factory=lambda: WaitingFigures(key="total", label="gesamt"),
        description="The waiting list's events in the period (R45).",
    )
    waiting_by_location: list[WaitingFigures] = Field(default_factory=list)
    waiting_by_concern: list[WaitingFigures] = Field(default_factory=list)

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    def breakdown(self, dimension: str) -> list[Figures]:
        items: list[Figures] = getattr(self, f"by_{dimension}")
        return items


# The summary of the architecture's contract, exactly these fields.
class SummaryLocation(_Model):
    location_id: str
    name: str
    appointments: int
    cancellations: int
    no_shows: int


class SummaryConcern(_Model):
    concern_id: str
    name: str
    appointments: int
    cancellations: int
    no_shows: int


class SummaryChannel(_Model):
    channel: str
    appointments: int
    cancellations: int
    no_shows: int


class StatisticsSummary(_Model):
    appointments: int
    cancellations: int
    no_shows: int
    by_location: list[SummaryLocation]
    by_concern: list[SummaryConcern]
    by_channel: list[SummaryChannel]

    @classmethod
    def of(cls, report: StatisticsReport) -> StatisticsSummary:
        return cls(
            appointments=report.total.appointments,
            cancellations=report.total.cancellations,
            no_shows=report.total.no_shows,
            by_location=[
                SummaryLocation(
                    location_id=f.key,
                    name=f.label,
                    appointments=f.appointments,
                    cancellations=f.cancellations,
                    no_shows=f.no_shows,
                )
                for f in report.by_location
            ],
            by_concern=[
                SummaryConcern(
                    concern_id=f.key,
                    name=f.label,
                    appointments=f.appointments,
                    cancellations=f.cancellations,
                    no_shows=f.no_shows,
                )
                for f in report.by_concern
            ],
            by_channel=[
                SummaryChannel(
                    channel=f.key,
                    appointments=f.appointments,
                    cancellations=f.cancellations,
                    no_shows=f.no_shows,
                )
                for f in report.by_channel
            ],
        )


class Breakdown(_Model):
    by: str
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    location: str | None
    items: list[Figures]

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


# --- the booking-pattern report (R48) ----------------------------------------------------------------


class NetworkPattern(_Model):
    client_network: str
    bookings: int
    cancellations: int
    customers: int = Field(description="Different e-mail addresses (counted, not shown).")
    locations: list[str]
    first_booked_at: datetime
    last_booked_at: datetime
    known_office: bool = Field(
        description="The network overlaps one of the known office networks (OTV_BOT_TRUSTED_NETWORKS): many "
        "bookings are expected there (self-service PCs, the service centre behind one address)."
    )


class DomainPattern(_Model):
    email_domain: str
    bookings: int
    cancellations: int
    customers: int
    internal: bool = Field(description="On the internal allow-list (R6): expected to book often.")


class RebookPattern(_Model):
    customer: str = Field(
        description="A pseudonym of the customer (not reversible), the same in this report."
    )
    cycles: int = Field(description="Cancellations followed by a new booking within the window.")
    references: list[str]
    locations: list[str]


class ChangePattern(_Model):
    reference: str
    location_id: str
    reschedules: int
    data_changes: int = Field(description="Revisions in which the customer's data changed.")
    booked_at: datetime


class BookingPatterns(_Model):
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    thresholds: dict[str, int]
    networks: list[NetworkPattern]
    email_domains: list[DomainPattern]
    rapid_rebooking: list[RebookPattern]
    changes_after_booking: list[ChangePattern]

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)


# --- the deletion report (R33, R34) ------------------------------------------------------------------


class RetentionRun(_Model):
    service: str
    job: str
    started_at: datetime
    finished_at: datetime
    retention_days: int
    cutoff: datetime | None
    counts: dict[str, int]


class ServiceRetention(_Model):
    service: str
    last_run_at: datetime | None
    runs: int
    totals: dict[str, int]


class RetentionReport(_Model):
    retention_days: int
    day_list_keep_hours: int
    services: list[ServiceRetention]
    runs: list[RetentionRun]


class DayListInfo(_Model):
    location_id: str
    day: date
    generated_at: datetime | None
    generation: int
    appointment_count: int | None
    available: bool
    delete_after: datetime
    deleted_at: datetime | None
