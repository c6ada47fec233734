"""The notifier's rules as plain Python: which mails an appointment change plans, when a reminder is
due, how long a temporary failure is retried, what counts as permanent. No I/O; "now" is passed in."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

from shared.events.appointment import AppointmentStatus
from shared.events.mail import FailureReason, MailKind

# The mail an event type causes; every other appointment event only updates the copy (and so the
# reminder schedule).
MAIL_OF_EVENT: dict[str, MailKind] = {
    "appointment.booked": MailKind.CONFIRMATION,
    "appointment.rescheduled": MailKind.RESCHEDULE,
    "appointment.cancelled": MailKind.CANCELLATION,
    "appointment.transferred": MailKind.TRANSFERRED,  # R25 (issue 8)
    "appointment.link_renewed": MailKind.MANAGE_LINK,  # the customer asked for the link again
}

# Staff corrected the customer's contact data. A name or phone number alone only updates what the mails
# still to come say (the reminder is planned anew); a corrected e-mail address gets the confirmation anew,
# with the new manage link, and nothing more goes to the old address. For the rules below that second
# case has a key of its own: it plans the confirmation, and like a change of the state it supersedes
# every mail still waiting (they were addressed to the old address), also one in a sender's hands.
CONTACT_CHANGED = "appointment.contact_changed"
NEW_ADDRESS = "appointment.contact_changed+email"
MAIL_OF_EVENT[NEW_ADDRESS] = MailKind.CONFIRMATION


def rule_of(event_type: str, *, email_changed: bool = False) -> str:
    """The key under which the rules below treat an event: its type, or NEW_ADDRESS for a contact
    change that corrected the address."""
    return NEW_ADDRESS if event_type == CONTACT_CHANGED and email_changed else event_type


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    REJECTED = "rejected"  # the address, for good: suppress it
    REFUSED = "refused"  # the message, for good: the address may be fine
    # No reply to the end of the data (a timeout, a broken connection, a stop): the server may have it.
    UNKNOWN = "unknown"
    # The relay refuses the notifier itself (its login, its sender address, relaying for it): a fault of
    # the configuration on one side or the other, not of the address or the message. Retried like a
    # temporary failure until the deadline, never a suppression, and alerted (OTVMailRelayRefusesNotifier).
    RELAY_CONFIG = "relay_config"


# The outcomes of an attempt after which the mail is tried again, until its deadline.
RETRIED = frozenset({Outcome.TEMPORARY, Outcome.UNKNOWN, Outcome.RELAY_CONFIG})


class Stage(StrEnum):
    """Where in the SMTP conversation a refusal came."""

    SESSION = "session"  # the greeting, EHLO, STARTTLS, AUTH, MAIL FROM: the relay and the notifier
    RECIPIENT = "recipient"  # RCPT TO: the customer's address
    MESSAGE = "message"  # DATA and the end of the data: this one message


# The last_error of a mail whose outcome is unknown; a second such attempt is given up.
UNKNOWN_AFTER_DATA = "unknown_after_data"


@dataclass(frozen=True)
class PlannedMail:
    kind: MailKind
    due_at: datetime
    deadline: datetime


def reminder_at(start: datetime, hours: float) -> datetime:
    """24 elapsed hours before the start (R8): UTC arithmetic, so a DST change in between shifts the wall
    clock time of the reminder, never the distance to the appointment."""
    return start.astimezone(UTC) - timedelta(hours=hours)


# A move, a hand-over and a cancellation make every mail still waiting about the earlier state wrong (its
# time, place or the appointment itself); their own mail tells the current state, with the invitation.
CHANGES_OF_STATE = (MailKind.RESCHEDULE, MailKind.TRANSFERRED, MailKind.CANCELLATION)


def superseded_kinds(event_type: str) -> list[MailKind]:
    """The kinds of pending mails of earlier revisions that a fresh event cancels: the reminder always
    (the event plans the one of its own state), and after a change of the state also the confirmations
    and links still waiting, so that an older mail never arrives after a newer one. Any other change
    (an outcome, a renewed link) leaves them, since no mail of its own would take their place."""
    if MAIL_OF_EVENT.get(event_type) in CHANGES_OF_STATE or event_type == NEW_ADDRESS:
        return [MailKind.REMINDER, MailKind.CONFIRMATION, MailKind.MANAGE_LINK, *CHANGES_OF_STATE[:2]]
    return [MailKind.REMINDER]


def changes_state(event_type: str) -> bool:
    """Booked, moved, handed over or cancelled: its mail tells the appointment's state as a whole."""
    return MAIL_OF_EVENT.get(event_type) in (MailKind.CONFIRMATION, *CHANGES_OF_STATE)


def own_mail(kind: MailKind, *, start: datetime, now: datetime, give_up_after: timedelta) -> PlannedMail:
    """The mail an event causes, due at once."""
    deadline = now + give_up_after
    if kind is not MailKind.CANCELLATION:
        # A confirmation that cannot go out before the appointment starts has lost its purpose.
        deadline = min(deadline, start)
    return PlannedMail(kind, due_at=now, deadline=deadline)


def overtaken_mail(
    event_type: str, *, start: datetime, now: datetime, give_up_after: timedelta
) -> PlannedMail | None:
    """The own mail of an event that a newer revision overtook, when the caller found that no change of
    state at or after it was seen and the copy still shows its status and time: nothing newer tells
    what it tells (a staff move overtaken by a link renewal). None when it causes no mail or could no
    longer go out in time."""
    kind = MAIL_OF_EVENT.get(event_type)
    if kind is None:
        return None
    mail = own_mail(kind, start=start, now=now, give_up_after=give_up_after)
    return mail if mail.deadline > now else None


def supersedes_mails_in_delivery(event_type: str) -> bool:
    """Whether a fresh event also marks the mails of `superseded_kinds` that a sender is delivering at
    this moment, so that they are cancelled should the delivery fail for now. Only a change of the
    state: its own mail tells the current state, and a retry of the older mail would arrive after it. A
    reminder in hand when any other change comes still tells the truth (the link is the current one at
    send time) and no mail takes its place: it is tried again. A corrected address: a retry would go to
    the old one."""
    return MAIL_OF_EVENT.get(event_type) in CHANGES_OF_STATE or event_type == NEW_ADDRESS


def plan_mails(
    *,
    event_type: str,
    status: AppointmentStatus,
    start: datetime,
    occurred_at: datetime,
    now: datetime,
    reminder_hours: float,
    give_up_after: timedelta,
    reminder_owed: bool = False,
) -> list[PlannedMail]:
    """The mails a fresh (not stale) appointment event plans. Pending reminders of earlier revisions are
    cancelled by the caller before these are added, so a move gets exactly one new reminder;
    `reminder_owed` says that one of them had fallen due for this same start (waiting for the mail server
    to take it): it is planned again, as it would otherwise be lost."""
    planned: list[PlannedMail] = []
    kind = MAIL_OF_EVENT.get(event_type)
    if kind is not None:
        planned.append(own_mail(kind, start=start, now=now, give_up_after=give_up_after))
    if status is AppointmentStatus.BOOKED:
        due = reminder_at(start, reminder_hours)
        # A reminder whose time had already come when the change was made (booked three hours ahead)
        # is not sent; one that fell due while this service was down still goes out until the start.
        if (due > occurred_at or reminder_owed) and start > now:
            planned.append(PlannedMail(MailKind.REMINDER, due_at=due, deadline=start))
    return planned


def retry_delay(attempts: int, *, base: float, maximum: float) -> timedelta:
    """Exponential back-off after the `attempts`-th failed try."""
    return timedelta(seconds=min(base * (2 ** max(attempts - 1, 0)), maximum))


# An enhanced status code (RFC 3463) at the start of a reply's text: class 5, its subject and detail.
_ENHANCED_STATUS = re.compile(r"\s*5\.(\d{1,3})\.\d{1,3}(?!\S)")


def classify_reply(code: int | None, stage: Stage, text: str = "") -> Outcome:
    """An SMTP reply of a failed attempt: its code (None stands for no reply at all: refused, timed out),
    where it came, and the text after the code (read, never kept: it can echo the address).

    A 5xx before the recipient is about the notifier's own session (a rotated password, a sender address
    the login may not use, the wrong host): the configuration's fault. At RCPT only a reply about the
    address condemns it (suppressed, R34); one about the notifier is the configuration's fault as well:
    530 (a login required), a security or policy status 5.7.x (relaying denied, sender not allowed), or,
    from a relay without enhanced status codes, a text that names relaying. A 5xx to the message is about
    the message: refused for good, the address may be fine."""
    if code is None or code < 500:
        return Outcome.TEMPORARY
    if stage is Stage.SESSION or (stage is Stage.RECIPIENT and _refuses_the_sender(code, text)):
        return Outcome.RELAY_CONFIG
    return Outcome.REJECTED if stage is Stage.RECIPIENT else Outcome.REFUSED


def _refuses_the_sender(code: int, text: str) -> bool:
    if code == 530:
        return True
    enhanced = _ENHANCED_STATUS.match(text)
    if enhanced is not None:
        return enhanced[1] == "7"
    return "relay" in text.lower()


FAILURE_OF_OUTCOME: dict[Outcome, FailureReason] = {
    Outcome.REJECTED: FailureReason.REJECTED,
    Outcome.REFUSED: FailureReason.REFUSED,
}


def normalise_address(address: str) -> str:
    return address.strip().lower()


def address_hash(address: str, key: str) -> str:
    """A keyed hash that stands for an address on the suppression list: equal addresses match, and the
    list alone does not give them away (R34)."""
    return hmac.new(key.encode(), normalise_address(address).encode(), hashlib.sha256).hexdigest()


def has_token(url: str) -> bool:
    """Whether a manage link carries the customer's token (a change by staff carries the bare page)."""
    return bool(parse_qs(urlsplit(url).query).get("token"))
