"""Use cases that read: statistics (R32, R35), the booking-pattern report (R48) and the deletion report
(R33, R34). Figures come from the read model's columns that hold no personal data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from services.reporting import db
from services.reporting import statistics_db as sdb
from services.reporting.config import Settings
from services.reporting.domain import (
    CANCELLED_BY_LABELS,
    CHANNEL_LABELS,
    EVENING_LABELS,
    LEAD_TIME_BUCKETS,
    MODE_LABELS,
    OUTCOME_LABELS,
    WAITING_LABELS,
    WEEKDAYS_DE,
    Period,
    berlin_day,
    concern_names,
    day_end,
    day_start,
    group_names,
    statistics_period,
)
from services.reporting.models import (
    BookingPatterns,
    CallbackFigures,
    ChangePattern,
    DomainPattern,
    Figures,
    MailFigures,
    NetworkPattern,
    RebookPattern,
    RetentionReport,
    RetentionRun,
    ServiceRetention,
    StatisticsReport,
    WaitingFigures,
)
from shared.clock import Clock
from shared.labels import MAIL_KINDS_DE
from shared.networks import overlaps_any, parse_networks


def period_of(settings: Settings, clock: Clock, first: date | None, last: date | None) -> Period:
    return statistics_period(first, last, berlin_day(clock.now()), settings.statistics_max_days)


def _dimension(row: Any) -> str:
    if not row["g_location"]:
        return "group" if not row["g_group"] else "location"
    for name in ("concern", "mode", "channel", "day", "week", "evening"):
        if not row[f"g_{name}"]:
            return name
    return "total"


def _figures(row: Any, key: str, label: str, offered: int | None, moved_out: int | None) -> Figures:
    return Figures(
        key=key,
        label=label,
        appointments=row["appointments"],
        cancellations=row["cancellations"],
        cancelled_by={k: row[f"cancelled_by_{k}"] for k in CANCELLED_BY_LABELS},
        handed_over=row["handed_over"],
        transferred_in=row["transferred_in"],
        transferred_out=moved_out,
        no_shows=row["outcome_no_show"],
        outcomes={k: row[f"outcome_{k}"] for k in OUTCOME_LABELS},
        without_outcome=row["without_outcome"],
        interpreter=row["interpreter"],
        booked_minutes=int(row["booked_minutes"]),
        offered_minutes=offered,
        lead_time_mean_hours=round(float(row["lead_mean"]), 2) if row["lead_mean"] is not None else None,
        lead_time_median_hours=round(float(row["lead_median"]), 2)
        if row["lead_median"] is not None
        else None,
        lead_time_buckets={label: row[f"lead_{i}"] for i, (label, _) in enumerate(LEAD_TIME_BUCKETS)},
    )


class _Names:
    def __init__(self, locations: list[Any], concern_fallback: list[Any], known: dict[str, str]) -> None:
        self.locations = {r["location_id"]: r["name"] for r in locations}
        self.groups: dict[tuple[str, str], str] = {}
        # The German name: a location's offer, else the one a snapshot gave a concern no longer offered,
        # else (a concern no snapshot ever named) a name an appointment carried.
        self.concerns = {r["concern_id"]: r["name"] for r in concern_fallback} | known
        for r in locations:
            for gid, name in group_names(r["snapshot"]).items():
                self.groups[(r["location_id"], gid)] = name
            self.concerns.update(concern_names(r["snapshot"]))

    def key_and_label(self, dimension: str, row: Any) -> tuple[str, str]:
        if dimension == "location":
            return row["location_id"], self.locations.get(row["location_id"], row["location_id"])
        if dimension == "group":
            loc, gid = row["location_id"], row["group_id"]
            return f"{loc}/{gid}", f"{self.locations.get(loc, loc)} - {self.groups.get((loc, gid), gid)}"
        if dimension == "concern":
            return row["concern_id"], self.concerns.get(row["concern_id"], row["concern_id"])
        if dimension == "mode":
            return row["mode"], MODE_LABELS.get(row["mode"], row["mode"])
        if dimension == "channel":
            return row["channel"], CHANNEL_LABELS.get(row["channel"], row["channel"])
        if dimension == "day":
            d: date = row["day"]
            return d.isoformat(), f"{WEEKDAYS_DE[d.weekday()][:2]} {d:%d.%m.%Y}"
        if dimension == "week":
            return row["week"], row["week"]
        if dimension == "evening":
            key = "evening" if row["evening"] else "daytime"
            return key, EVENING_LABELS[key]
        return "total", "gesamt"


def _iso_week(day: date) -> str:
    """The week's key as the statistics' SQL writes it (`to_char(day, 'IYYY-"W"IW')`): `2026-W50`."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _empty(key: str, label: str, offered: int | None, moved_out: int | None = None) -> Figures:
    return Figures(
        key=key,
        label=label,
        cancelled_by=dict.fromkeys(CANCELLED_BY_LABELS, 0),
        outcomes=dict.fromkeys(OUTCOME_LABELS, 0),
        offered_minutes=offered,
        transferred_out=moved_out,
    )


async def statistics_report(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, period: Period, location: str | None
) -> StatisticsReport:
    async with sdb.snapshot(pool) as conn:
        return await _statistics_report(conn, clock, period, location)


async def _statistics_report(
    conn: asyncpg.Connection, clock: Clock, period: Period, location: str | None
) -> StatisticsReport:
    now = clock.now()
    rows = await sdb.figures(conn, period.first, period.last, location)
    capacity_rows = await sdb.capacity(conn, period.first, period.last, location)
    locations = await db.locations(conn)
    names = _Names(
        locations,
        await sdb.concern_names(conn, period.first, period.last),
        await db.known_concern_names(conn),
    )

    offered: dict[tuple[str, str], int] = {}
    for c in capacity_rows:
        if not c["g_location"]:
            dim = "group" if not c["g_group"] else "location"
        elif not c["g_day"]:
            dim = "day"
        elif not c["g_week"]:
            dim = "week"
        else:
            dim = "total"
        key, _ = names.key_and_label(dim, c)
        offered[(dim, key)] = int(c["offered"] or 0)
    has_capacity = bool(capacity_rows) and any(offered.values())
    moved_out = {
        r["location_id"] or "total": int(r["transferred_out"])
        for r in await sdb.transfers_out(conn, period.first, period.last, location)
    }

    evening = await sdb.evening_capacity(conn, period.first, period.last, location)
    if has_capacity and evening is not None and not evening["unknown"]:
        offered[("evening", "evening")] = int(evening["evening"])
        offered[("evening", "daytime")] = int(evening["offered"]) - int(evening["evening"])
    buckets: dict[str, dict[str, Figures]] = {
        d: {} for d in ("location", "group", "concern", "mode", "channel", "day", "week", "evening")
    }
    total = _empty(
        "total",
        "gesamt",
        offered.get(("total", "total")) if has_capacity else None,
        moved_out.get("total", 0),
    )
    for row in rows:
        dim = _dimension(row)
        key, label = names.key_and_label(dim, row)
        capacity = (
            offered.get((dim, key), 0 if has_capacity else None)
            if dim in ("location", "group", "day", "week", "total")
            else offered.get((dim, key))
        )
        out = moved_out.get(key, 0) if dim in ("location", "total") else None
        figures = _figures(row, key, label, capacity, out)
        if dim == "total":
            total = figures
        else:
            buckets[dim][key] = figures

    # Slices with capacity but no appointment show 0 % utilisation instead of being left out.
    for (dim, key), minutes in offered.items():
        if dim in ("location", "group") and key not in buckets[dim] and minutes > 0:
            loc, _, gid = key.partition("/")
            label = names.key_and_label(dim, {"location_id": loc, "group_id": gid})[1]
            buckets[dim][key] = _empty(
                key, label, minutes, moved_out.get(key, 0) if dim == "location" else None
            )
    # Every location taking bookings, its groups and the concerns it offers, also in a period without an
    # appointment or an offered minute there (a weekend, a closure): 0, not a row missing from a comparison.
    for r in locations:
        loc = r["location_id"]
        if not r["active"] or (location is not None and loc != location):
            continue
        if loc not in buckets["location"]:
            capacity = offered.get(("location", loc), 0 if has_capacity else None)
            buckets["location"][loc] = _empty(loc, names.locations[loc], capacity, moved_out.get(loc, 0))
        for gid in group_names(r["snapshot"]):
            key = f"{loc}/{gid}"
            if key not in buckets["group"]:
                label = names.key_and_label("group", {"location_id": loc, "group_id": gid})[1]
                buckets["group"][key] = _empty(
                    key, label, offered.get(("group", key), 0 if has_capacity else None)
                )
        for cid in concern_names(r["snapshot"]):
            if cid not in buckets["concern"]:
                buckets["concern"][cid] = _empty(cid, names.concerns.get(cid, cid), None)
    # A location whose every appointment of the period went elsewhere still shows them as transferred.
    for key, count in moved_out.items():
        if key != "total" and key not in buckets["location"]:
            label = names.key_and_label("location", {"location_id": key})[1]
            capacity = offered.get(("location", key), 0 if has_capacity else None)
            buckets["location"][key] = _empty(key, label, capacity, count)
    # Every day and ISO week of the period, like the days: a week without appointments is the one a
    # weekly trend looks for (its part within the period, as the database's `IYYY-"W"IW` counts it).
    day = period.first
    week_days: dict[str, list[date]] = {}
    while day <= period.last:
        week_days.setdefault(_iso_week(day), []).append(day)
        if day.isoformat() not in buckets["day"]:
            label = names.key_and_label("day", {"day": day})[1]
            buckets["day"][day.isoformat()] = _empty(
                day.isoformat(), label, offered.get(("day", day.isoformat()), 0 if has_capacity else None)
            )
        week = _iso_week(day)
        if week not in buckets["week"]:
            buckets["week"][week] = _empty(
                week, week, offered.get(("week", week), 0 if has_capacity else None)
            )
        day += timedelta(days=1)

    # A week the period cuts says which of its days it counts: in a weekly trend it is no quiet week.
    for week, days in week_days.items():
        if len(days) < 7 and week in buckets["week"]:
            label = f"{week} (nur {days[0]:%d.%m.}-{days[-1]:%d.%m.})"
            buckets["week"][week] = buckets["week"][week].model_copy(update={"label": label})

    # Both parts of the day, also without appointments: an evening offered and not used is the finding.
    for key, label in EVENING_LABELS.items():
        if key not in buckets["evening"]:
            buckets["evening"][key] = _empty(key, label, offered.get(("evening", key)))
    # Every mode and channel likewise: a week without a phone appointment shows it as 0, not as no row.
    for dim, labels in (("mode", MODE_LABELS), ("channel", CHANNEL_LABELS)):
        for key, label in labels.items():
            if key not in buckets[dim]:
                buckets[dim][key] = _empty(key, label, None)

    def ordered(dim: str) -> list[Figures]:
        items = list(buckets[dim].values())
        if dim in ("day", "week"):
            return sorted(items, key=lambda f: f.key)
        if dim in ("mode", "channel", "evening"):
            order = list({"mode": MODE_LABELS, "channel": CHANNEL_LABELS, "evening": EVENING_LABELS}[dim])
            return sorted(items, key=lambda f: order.index(f.key) if f.key in order else len(order))
        if dim == "concern":
            return sorted(items, key=lambda f: (-f.appointments, f.label))
        return sorted(items, key=lambda f: f.label)

    start, end = day_start(period.first), day_end(period.last)
    callbacks = [
        CallbackFigures(
            key=r["location_id"] or "total",
            label=names.locations.get(r["location_id"], r["location_id"]) if r["location_id"] else "gesamt",
            created=r["created"],
            closed_in_time=r["closed_in_time"],
            closed_late=r["closed_late"],
            open_in_time=r["open_in_time"],
            open_overdue=r["open_overdue"],
            withdrawn=r["withdrawn"],
        )
        for r in await sdb.callbacks(conn, start, end, location, now)
    ]
    callback_total = next(
        (c for c in callbacks if c.key == "total"), CallbackFigures(key="total", label="gesamt")
    )
    counted = {
        r["kind"]: MailFigures(kind=r["kind"], sent=r["sent"], failed=r["failed"])
        for r in await sdb.mails(conn, start, end, location)
    }
    # Every kind of mail, 0 where none went out: a month without a reminder is what a comparison looks
    # for. A location's figures know no waiting-list mail (those belong to a wish, not an appointment, and
    # are counted for all locations only), so there such kinds are left out rather than shown as 0.
    mails = [
        counted.pop(kind, MailFigures(kind=kind))
        for kind in MAIL_KINDS_DE
        if location is None or not kind.startswith("waiting_")
    ] + list(counted.values())
    waiting_total = WaitingFigures(key="total", label="gesamt")
    waiting: dict[str, list[WaitingFigures]] = {"location": [], "concern": []}
    for r in await sdb.waiting(conn, period.first, period.last, location):
        dim = _waiting_dimension(r)
        key, label = names.key_and_label(dim, r)
        counts = WaitingFigures(key=key, label=label, **{k: int(r[k]) for k in WAITING_LABELS})
        if dim == "total":
            waiting_total = counts
        else:
            waiting[dim].append(counts)
    # Every location taking bookings, also without a ticket or a wish in the period: 0, not a row missing.
    for r in locations:
        loc = r["location_id"]
        if not r["active"] or (location is not None and loc != location):
            continue
        if not any(c.key == loc for c in callbacks):
            callbacks.append(CallbackFigures(key=loc, label=names.locations[loc]))
        if not any(w.key == loc for w in waiting["location"]):
            waiting["location"].append(WaitingFigures(key=loc, label=names.locations[loc]))
    return StatisticsReport(
        first=period.first,
        last=period.last,
        location=location,
        total=total,
        by_location=ordered("location"),
        by_group=ordered("group"),
        by_concern=ordered("concern"),
        by_mode=ordered("mode"),
        by_channel=ordered("channel"),
        by_day=ordered("day"),
        by_week=ordered("week"),
        by_evening=ordered("evening"),
        callbacks=callback_total,
        callbacks_by_location=sorted((c for c in callbacks if c.key != "total"), key=lambda c: c.label),
        mails=mails,
        waiting=waiting_total,
        waiting_by_location=sorted(waiting["location"], key=lambda w: w.label),
        waiting_by_concern=sorted(waiting["concern"], key=lambda w: (-w.registered, w.label)),
    )


def _waiting_dimension(row: Any) -> str:
    if not row["g_location"]:
        return "location"
    return "concern" if not row["g_concern"] else "total"


# --- booking patterns (R48) -----------------------------------------------------------------------------


def _internal_domains(entries: list[str]) -> set[str]:
    return {e.rpartition("@")[2] for e in entries if "@" in e}


async def booking_patterns(pool: asyncpg.Pool, settings: Settings, period: Period) -> BookingPatterns:
    start, end = day_start(period.first), day_end(period.last)
    internal = _internal_domains(await db.allow_list(pool))
    offices = parse_networks(settings.bot_trusted_networks)
    return BookingPatterns(
        first=period.first,
        last=period.last,
        thresholds={
            "network_min_bookings": settings.pattern_network_min,
            "domain_min_bookings": settings.pattern_domain_min,
            "rebook_window_minutes": settings.pattern_rebook_minutes,
            "min_reschedules": settings.pattern_reschedule_min,
        },
        networks=[
            NetworkPattern(
                client_network=r["client_network"],
                bookings=r["bookings"],
                cancellations=r["cancellations"],
                customers=r["customers"],
                locations=sorted(r["locations"]),
                first_booked_at=r["first_booked_at"],
                last_booked_at=r["last_booked_at"],
                known_office=overlaps_any(r["client_network"], offices),
            )
            for r in await sdb.networks(pool, start, end, settings.pattern_network_min)
        ],
        email_domains=[
            DomainPattern(
                email_domain=r["email_domain"],
                bookings=r["bookings"],
                cancellations=r["cancellations"],
                customers=r["customers"],
                internal=r["email_domain"] in internal,
            )
            for r in await sdb.email_domains(pool, start, end, settings.pattern_domain_min)
        ],
        rapid_rebooking=[
            RebookPattern(
                customer=r["customer_key"][:12],
                cycles=r["cycles"],
                references=sorted({ref for ref in r["refs"] if ref}),
                locations=sorted(r["locations"]),
            )
            for r in await sdb.rebooking(pool, start, end, settings.pattern_rebook_minutes)
        ],
        changes_after_booking=[
            ChangePattern(
                reference=r["reference"] or "",
                location_id=r["location_id"],
                reschedules=r["reschedules"],
                data_changes=r["data_changes"],
                booked_at=r["booked_at"],
            )
            for r in await sdb.changes(pool, start, end, settings.pattern_reschedule_min)
        ],
    )


# --- the deletion report --------------------------------------------------------------------------------


async def retention_report(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, days: int = 90
) -> RetentionReport:
    since: datetime = clock.now() - timedelta(days=days)
    runs = await db.retention_runs(pool, since, 500)
    per_service, sums = await db.retention_totals(pool, since)
    totals: dict[str, dict[str, int]] = {}
    for s in sums:
        totals.setdefault(s["service"], {})[s["key"]] = int(s["total"])
    return RetentionReport(
        retention_days=settings.retention_days,
        day_list_keep_hours=settings.day_list_keep_hours,
        services=[
            ServiceRetention(
                service=r["service"],
                last_run_at=r["last_run_at"],
                runs=r["runs"],
                totals=totals.get(r["service"], {}),
            )
            for r in per_service
        ],
        runs=[
            RetentionRun(
                service=r["service"],
                job=r["job"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                retention_days=r["retention_days"],
                cutoff=r["cutoff"],
                counts={k: int(v) for k, v in r["counts"].items()},
            )
            for r in runs
        ],
    )


async def scope_label(pool: asyncpg.Pool, location: str | None) -> str:
    """What figures cover, in the words of the statistics page: "Standort Bremen-Mitte" or "alle
    Standorte" (a location reporting knows no name of by its id)."""
    if location is None:
        return "alle Standorte"
    row = await db.location(pool, location)
    return f"Standort {row['name'] if row is not None and row['name'] else location}"


async def location_choices(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    """Locations for the statistics page's filter."""
    return [(r["location_id"], r["name"]) for r in await db.locations(pool)]
