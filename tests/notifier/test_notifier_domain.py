"""The notifier's rules without I/O: which mails a change plans, the reminder time in elapsed hours,
the back-off, what counts as permanent, and the keyed address hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain import (
    RETRIED,
    Outcome,
    PlannedMail,
    Stage,
    address_hash,
    changes_state,
    classify_reply,
    overtaken_mail,
    plan_mails,
    reminder_at,
    retry_delay,
    superseded_kinds,
    supersedes_mails_in_delivery,
)
from shared.clock import BERLIN
from shared.events.appointment import AppointmentStatus
from shared.events.mail import MailKind

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GIVE_UP = timedelta(hours=48)


def plan(
    event_type: str, start: datetime, status: AppointmentStatus = AppointmentStatus.BOOKED
) -> list[PlannedMail]:
    return plan_mails(
        event_type=event_type,
        status=status,
        start=start,
        occurred_at=NOW,
        now=NOW,
        reminder_hours=24,
        give_up_after=GIVE_UP,
    )


@pytest.mark.req("R8")
def test_the_reminder_is_24_elapsed_hours_before_the_start_whatever_the_wall_clock_says() -> None:
    october = datetime(2026, 10, 25, 10, 0, tzinfo=BERLIN)
    assert reminder_at(october, 24) == datetime(2026, 10, 24, 9, 0, tzinfo=UTC)
    assert reminder_at(october, 24).astimezone(BERLIN).hour == 11
    march = datetime(2026, 3, 29, 10, 0, tzinfo=BERLIN)
    assert reminder_at(march, 24).astimezone(BERLIN).hour == 9


def test_a_booking_plans_a_confirmation_now_and_a_reminder_that_gives_up_at_the_start() -> None:
    start = NOW + timedelta(days=3)
    confirmation, reminder = plan("appointment.booked", start)
    assert confirmation == PlannedMail(MailKind.CONFIRMATION, due_at=NOW, deadline=NOW + GIVE_UP)
    assert reminder == PlannedMail(MailKind.REMINDER, due_at=start - timedelta(hours=24), deadline=start)


def test_a_confirmation_for_an_appointment_tomorrow_gives_up_at_its_start() -> None:
    start = NOW + timedelta(hours=20)
    [confirmation] = plan("appointment.booked", start)
    assert confirmation.deadline == start


def test_a_cancellation_plans_only_its_confirmation_and_a_passed_appointment_nothing() -> None:
    start = NOW + timedelta(days=3)
    [mail] = plan("appointment.cancelled", start, AppointmentStatus.CANCELLED)
    assert mail.kind is MailKind.CANCELLATION and mail.deadline == NOW + GIVE_UP
    assert plan("appointment.passed", NOW - timedelta(hours=1), AppointmentStatus.PASSED) == []


def test_a_reschedule_plans_its_confirmation_and_the_reminder_of_the_new_time() -> None:
    start = NOW + timedelta(days=5)
    kinds = [m.kind for m in plan("appointment.rescheduled", start)]
    assert kinds == [MailKind.RESCHEDULE, MailKind.REMINDER]


def test_a_change_of_another_kind_only_replans_the_reminder() -> None:
    [reminder] = plan("appointment.outcome_recorded", NOW + timedelta(days=2))
    assert reminder.kind is MailKind.REMINDER


@pytest.mark.req("R9")
def test_a_change_of_the_state_cancels_the_older_mails_still_waiting_and_any_other_change_the_reminder() -> (
    None
):
    for event_type in ("appointment.cancelled", "appointment.rescheduled", "appointment.transferred"):
        assert set(superseded_kinds(event_type)) == {
            MailKind.REMINDER,
            MailKind.CONFIRMATION,
            MailKind.MANAGE_LINK,
            MailKind.RESCHEDULE,
            MailKind.TRANSFERRED,
        }, event_type
    # A cancellation still waiting always goes out; a renewed link or an outcome tells nothing newer.
    assert superseded_kinds("appointment.link_renewed") == [MailKind.REMINDER]
    assert superseded_kinds("appointment.outcome_recorded") == [MailKind.REMINDER]


@pytest.mark.req("R9")
def test_only_a_change_of_the_state_takes_a_mail_from_a_sender_whose_delivery_fails() -> None:
    for event_type in ("appointment.cancelled", "appointment.rescheduled", "appointment.transferred"):
        assert supersedes_mails_in_delivery(event_type) and changes_state(event_type), event_type
    # The reminder in hand still tells the truth after a renewed link or an outcome: it is tried again.
    for event_type in ("appointment.link_renewed", "appointment.outcome_recorded", "appointment.passed"):
        assert not supersedes_mails_in_delivery(event_type) and not changes_state(event_type), event_type
    assert changes_state("appointment.booked") and not supersedes_mails_in_delivery("appointment.booked")


@pytest.mark.req("R9")
def test_an_overtaken_event_sends_its_own_mail_only_while_it_can_go_out_in_time() -> None:
    now = datetime(2037, 12, 1, 9, 0, tzinfo=UTC)
    start = now + timedelta(days=2)
    day = timedelta(hours=24)
    mail = overtaken_mail("appointment.rescheduled", start=start, now=now, give_up_after=day)
    assert mail is not None and (mail.kind, mail.due_at, mail.deadline) == (
        MailKind.RESCHEDULE,
        now,
        now + day,
    )
    passed = now - timedelta(hours=1)
    assert overtaken_mail("appointment.rescheduled", start=passed, now=now, give_up_after=day) is None
    assert overtaken_mail("appointment.cancelled", start=passed, now=now, give_up_after=day) is not None
    assert overtaken_mail("appointment.outcome_recorded", start=start, now=now, give_up_after=day) is None


@pytest.mark.req("R8")
def test_a_reminder_owed_for_the_same_start_is_planned_again_once_its_time_has_come() -> None:
    start = NOW + timedelta(hours=20)  # its reminder time has passed
    assert plan("appointment.outcome_recorded", start) == []
    [reminder] = plan_mails(
        event_type="appointment.outcome_recorded",
        status=AppointmentStatus.BOOKED,
        start=start,
        occurred_at=NOW,
        now=NOW,
        reminder_hours=24,
        give_up_after=GIVE_UP,
        reminder_owed=True,
    )
    assert reminder == PlannedMail(MailKind.REMINDER, due_at=start - timedelta(hours=24), deadline=start)


def test_the_back_off_doubles_up_to_its_maximum() -> None:
    delays = [retry_delay(n, base=30, maximum=600).total_seconds() for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]


@pytest.mark.parametrize(
    ("code", "stage", "text", "outcome"),
    [
        (None, Stage.RECIPIENT, "", Outcome.TEMPORARY),
        (421, Stage.SESSION, "4.3.2 Service shutting down", Outcome.TEMPORARY),
        (451, Stage.RECIPIENT, "4.3.0 Temporary failure", Outcome.TEMPORARY),
        (550, Stage.RECIPIENT, "5.1.1 <kunde@example.org>: Recipient address rejected", Outcome.REJECTED),
        (550, Stage.RECIPIENT, "No such user here", Outcome.REJECTED),
        (554, Stage.MESSAGE, "5.6.0 Message content rejected", Outcome.REFUSED),
        (554, Stage.MESSAGE, "", Outcome.REFUSED),
    ],
)
def test_only_a_5xx_is_permanent_and_only_one_about_the_address_at_the_recipient_condemns_it(
    code: int | None, stage: Stage, text: str, outcome: Outcome
) -> None:
    assert classify_reply(code, stage, text) is outcome


@pytest.mark.parametrize(
    ("code", "stage", "text"),
    [
        (535, Stage.SESSION, "5.7.8 Authentication credentials invalid"),  # a rotated password
        (530, Stage.SESSION, "5.7.0 Authentication required"),  # no login configured
        (553, Stage.SESSION, "5.7.1 <termine@x>: Sender address rejected: not owned by user"),
        (554, Stage.SESSION, "No SMTP service here"),  # the greeting of the wrong host
        (554, Stage.RECIPIENT, "5.7.1 <kunde@example.org>: Relay access denied"),  # Postfix
        (550, Stage.RECIPIENT, "5.7.1 Unable to relay"),  # Exchange
        (550, Stage.RECIPIENT, "relay not permitted"),  # Exim, without enhanced status codes
        (530, Stage.RECIPIENT, "Authentication required"),
    ],
)
def test_a_5xx_about_the_notifiers_own_login_sender_or_relaying_is_a_configuration_fault_retried(
    code: int, stage: Stage, text: str
) -> None:
    assert classify_reply(code, stage, text) is Outcome.RELAY_CONFIG
    assert Outcome.RELAY_CONFIG in RETRIED


def test_the_address_hash_ignores_case_and_blanks_and_needs_the_key() -> None:
    key = "a-key-of-sixteen-characters"
    assert address_hash(" Erika@Example.org ", key) == address_hash("erika@example.org", key)
    assert address_hash("erika@example.org", key) != address_hash("erika@example.org", key + "x")
    assert "erika" not in address_hash("erika@example.org", key)
