"""The sender loop: claims due mails (I7: several replicas, each mail once; a crashed sender's mails are
taken over when its lease expires), renders them from the data stored with the mail and the current
texts (R10), delivers them with aiosmtplib and records the outcome.

A mail is recorded as sent in the transaction right after the server's 250; a crash in the few
milliseconds between the two sends it again after the lease, with the same Message-ID. That is the
at-least-once edge no SMTP client can close; everything else (retries, replicas, restarts) sends once.

The window in which the server has the whole mail but has not said so is the wait for the reply to the
end of the data: a relay that scans the content can take minutes there. That reply gets its own long
timeout (OTV_SMTP_DATA_TIMEOUT_SECONDS), the end of the data is sent only while the lease still covers it,
and a missing reply is an unknown outcome, not a temporary failure (`service._unknown`). A stopping
sender sends no end of data any more; one it sent before is waited for, and if no reply comes in time, the
mail is recorded as unknown, not left to the next sender at the end of the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiosmtplib
import asyncpg
import structlog
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from prometheus_client import Counter, Histogram

from services.notifier import message, service, texts, waiting_mail
from services.notifier.config import MAIL_RECORD_SECONDS, Settings
from services.notifier.domain import (
    RETRIED,
    UNKNOWN_AFTER_DATA,
    MailStatus,
    Outcome,
    Stage,
    classify_reply,
)
from shared import invitation
from shared.clock import Clock
from shared.consumer import is_outage
from shared.events.appointment import AppointmentSnapshot
from shared.events.mail import FailureReason, MailKind
from shared.metrics import count_from_zero

log = structlog.get_logger(__name__)

# Each attempt by what the relay answered (sent, temporary, unknown, rejected, refused), and each mail
# given up without an attempt of its own (superseded, suppressed, expired). `expired` also counts, beside
# its last attempt, a mail given up because its next try would come too late or after its second unknown
# outcome: every `mail.failed` with the reason `expired` (deploy/alerts.yaml, OTVMailsGivenUp).
MAILS = Counter(
    "otv_mails_total", "Mail delivery attempts and mails given up, by kind and outcome", ["kind", "outcome"]
)
# Every kind and outcome at 0 from the start: the first reminder given up after a pod's start counts
# (OTVMailsGivenUp, OTVMailOutcomeUnknown; shared/metrics.py says why).
count_from_zero(MAILS, MailKind, [*Outcome, "expired", "superseded", "suppressed"])
SEND_SECONDS = Histogram(
    "otv_mail_send_seconds",
    "Duration of one SMTP delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

_QUIT_SECONDS = 2.0
_STOPPING = "stopping"  # the last_error of a mail a stopping sender gave back before its end of data


@dataclass(eq=False)
class Attempt:
    """What the sender and the transport share about one delivery in hand."""

    # The event loop's time by which the end of the data must be sent: later, the lease would no longer
    # cover the wait for the reply (and the recording), and another sender could send the mail as well.
    data_by: float = math.inf
    # True once the sender stops: no end of data is sent any more.
    stopping: Callable[[], bool] = lambda: False
    # The end of the data went to the server: from here on the outcome may be unknown.
    data_sent: bool = False


class Transport(Protocol):
    """(message as sent, sender address, recipient address, the attempt) -> (outcome, error class)"""

    async def __call__(
        self, wire: bytes, sender: str, recipient: str, attempt: Attempt
    ) -> tuple[Outcome, str | None]: ...


class _GiveBack(Exception):
    """The sender stops before the end of the data: the mail goes to another sender, unsent."""


class _NoReplyAfterData(Exception):
    """The end of the data was sent and no reply came (a timeout, a broken connection)."""


INVITATION_METHOD = {
    MailKind.CONFIRMATION: "REQUEST",
    MailKind.RESCHEDULE: "REQUEST",
    MailKind.TRANSFERRED: "REQUEST",  # R25: the updated invitation (issue 8)
    MailKind.MANAGE_LINK: "REQUEST",  # the calendar entry's link is replaced by the new one
    MailKind.CANCELLATION: "CANCEL",
}


class SmtpTransport:
    """Delivers over a few open SMTP connections instead of one new conversation per mail (greeting, EHLO,
    STARTTLS, login and QUIT each time): at most one per delivery in hand, so up to the batch size.

    A connection goes back to the pool only after a mail the server took; after any failure (a refusal,
    a timeout, a drop, a cancellation) it is closed, never used again. One that waited is checked with a
    NOOP before its next mail; if that fails, a new one is opened, so a connection the server dropped costs
    no mail a retry. Exactly-once is the claim's business (I7), not the transport's: each replica has its
    own pool.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[_Connection] = []
        self._closed = False

    async def __call__(
        self, wire: bytes, sender: str, recipient: str, attempt: Attempt | None = None
    ) -> tuple[Outcome, str | None]:
        attempt = attempt or Attempt()
        try:
            await self._send(wire, sender, recipient, attempt)
        except _GiveBack:
            return Outcome.TEMPORARY, _STOPPING
        except _NoReplyAfterData as exc:
            # Only the class of the cause: the mail may be at the server; the caller decides (unknown).
            log.warning("smtp_no_reply_after_data", cause=str(exc))
            return Outcome.UNKNOWN, UNKNOWN_AFTER_DATA
        # Only the code is kept and logged: a server's text can echo the address.
        except aiosmtplib.SMTPRecipientsRefused as exc:
            worst = max(exc.recipients, key=lambda refused: refused.code, default=None)
            if worst is None:
                return Outcome.TEMPORARY, "smtp_rcpt"
            outcome = classify_reply(worst.code, Stage.RECIPIENT, worst.message)
            return _relay_config_logged(outcome, Stage.RECIPIENT, worst.code), f"smtp_{worst.code}_rcpt"
        except aiosmtplib.SMTPDataError as exc:
            return classify_reply(exc.code, Stage.MESSAGE), f"smtp_{exc.code}"
        except aiosmtplib.SMTPResponseException as exc:
            # The greeting, EHLO, STARTTLS, AUTH or MAIL FROM (a refused NOOP only replaces the connection).
            outcome = classify_reply(exc.code, Stage.SESSION, exc.message)
            return _relay_config_logged(outcome, Stage.SESSION, exc.code), f"smtp_{exc.code}"
        except (aiosmtplib.SMTPConnectError, ConnectionRefusedError):
            return Outcome.TEMPORARY, "connect_failed"
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            return Outcome.TEMPORARY, "timeout"
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome.TEMPORARY, type(exc).__name__
        return Outcome.SENT, None

    @property
    def idle(self) -> int:
        """How many open connections wait for the next mail."""
        return len(self._idle)

    async def close(self) -> None:
        """Say goodbye on every waiting connection; connections still in use are closed when they return."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(connection.retire() for connection in idle))

    async def _send(self, wire: bytes, sender: str, recipient: str, attempt: Attempt) -> None:
        connection: _Connection | None = None
        try:
            # Every step up to the server's go-ahead for the data, each within OTV_SMTP_TIMEOUT, and all of
            # them by the time the lease leaves for the end of the data.
            async with asyncio.timeout_at(attempt.data_by if math.isfinite(attempt.data_by) else None):
                connection = await self._take()
                await _envelope(connection.client, wire, sender, recipient)
            if attempt.stopping():
                raise _GiveBack
            await _end_of_data(connection.client, wire, attempt, self._settings.smtp_data_timeout_seconds)
        except BaseException:
            if connection is not None:
                connection.client.close()
            raise
        connection.mails += 1
        if self._closed or len(self._idle) >= self._settings.mail_batch_size:
            connection.client.close()
        else:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)

    async def _take(self) -> _Connection:
        settings = self._settings
        while self._idle:
            # The most recently used first: the likeliest to be still open.
            connection = self._idle.pop()
            waited = time.monotonic() - connection.idle_since
            if connection.mails >= settings.smtp_mails_per_connection or waited > settings.smtp_idle_seconds:
                await connection.retire()
                continue
            try:
                await connection.client.noop()
            except BaseException as exc:
                connection.client.close()
                if not isinstance(exc, aiosmtplib.SMTPException | OSError):
                    raise
                log.info("smtp_connection_replaced", error=type(exc).__name__)
                continue
            return connection
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
            local_hostname="otv-notifier",
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return _Connection(client)


def _relay_config_logged(outcome: Outcome, stage: Stage, code: int) -> Outcome:
    if outcome is Outcome.RELAY_CONFIG:
        # Every mail fails this way until the configuration is mended: the login (OTV_SMTP_USERNAME,
        # OTV_SMTP_PASSWORD), the sender (OTV_MAIL_FROM), or what the relay allows this login.
        log.error("smtp_relay_refuses_notifier", stage=stage.value, code=code)
    return outcome


async def _envelope(client: aiosmtplib.SMTP, wire: bytes, sender: str, recipient: str) -> None:
    """MAIL, RCPT and DATA up to the server's 354 (what `sendmail` does before the message itself)."""
    size = len(normalize_message_line_endings(wire))
    await client.mail(sender, options=[f"SIZE={size}"] if client.supports_extension("size") else [])
    try:
        await client.rcpt(recipient)
    except aiosmtplib.SMTPRecipientRefused as exc:
        raise aiosmtplib.SMTPRecipientsRefused([exc]) from None
    reply = await client.execute_command(b"DATA")
    if reply.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


async def _end_of_data(client: aiosmtplib.SMTP, wire: bytes, attempt: Attempt, reply_within: float) -> None:
    """The message and its end, then the wait for the server's reply with the long timeout of its own
    (`data()` would wait for it only as long as for any step)."""
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(PERIOD_REGEX.sub(b"..", normalize_message_line_endings(wire)) + b".\r\n")
    attempt.data_sent = True
    try:
        reply = await protocol.read_response(timeout=reply_within)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        raise _NoReplyAfterData(type(exc).__name__) from exc
    if reply.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


def _count_given_up(mail: service.ClaimedMail, outcome: Outcome, status: MailStatus | None) -> None:
    """An attempt that leaves the mail to be tried again, and yet the mail failed: its time ran out (the
    next try would come after its deadline, or it was its second unknown outcome)."""
    if status is MailStatus.FAILED and outcome in RETRIED:
        MAILS.labels(mail.kind.value, "expired").inc()


@dataclass(eq=False)
class _Connection:
    client: aiosmtplib.SMTP
    mails: int = 0
    idle_since: float = 0.0

    async def retire(self) -> None:
        """QUIT, briefly: a server that does not answer is simply left."""
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await self.client.quit(timeout=_QUIT_SECONDS)
        self.client.close()


@dataclass(eq=False)
class _Delivery:
    mail: service.ClaimedMail
    token: uuid.UUID
    attempt: Attempt = field(default_factory=Attempt)
    outcome: tuple[Outcome, str | None] | None = None  # the transport's, once it has one


class MailSender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        clock: Clock,
        *,
        transport: Transport | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        # Our own SMTP pool is ours to close; a transport passed in belongs to the caller.
        self._smtp: SmtpTransport | None = None
        if transport is None:
            self._smtp = transport = SmtpTransport(settings)
        self._transport: Transport = transport
        self._from_name, self._from_address = message.sender_parts(settings.mail_from)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # The deliveries in hand. Never claim again what this process is still sending, even when its
        # lease ran out.
        self._in_flight: dict[asyncio.Task[None], _Delivery] = {}
        self._listen_conn: asyncpg.Connection | None = None
        self._channel = f"{settings.db_schema}_mail"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mail-sender")

    async def stop(self) -> None:
        """Claim nothing more and send no end of data any more; wait up to OTV_SHUTDOWN_TIMEOUT for the
        deliveries in hand, then record each one still open: unknown when its end of data went out (it
        is not sent again at the end of the lease), otherwise given back to the other senders."""
        self._stopping = True
        self._wake.set()
        # One deadline for all the waiting, so that the records below fit in the pod's grace period.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.shutdown_timeout
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=max(0.1, deadline - loop.time()))
        open_ = [(task, self._in_flight[task]) for task in list(self._in_flight)]
        for task, _ in open_:
            task.cancel()
        await asyncio.gather(*(task for task, _ in open_), return_exceptions=True)
        # Recorded together, not one after another: twenty open mails must not outlast the grace period.
        left = [self._leave(delivery) for task, delivery in open_ if task.cancelled()]
        if left:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*left, return_exceptions=True), timeout=MAIL_RECORD_SECONDS
                )
        await self._unlisten()
        if self._smtp is not None:
            await self._smtp.close()

    def wake(self) -> None:
        self._wake.set()

    @property
    def busy(self) -> int:
        """How many deliveries are in hand."""
        return len(self._in_flight)

    async def _listen(self) -> None:
        if self._listen_conn is not None and not self._listen_conn.is_closed():
            return
        try:
            self._listen_conn = await self._pool.acquire()
            await self._listen_conn.add_listener(self._channel, self._on_notify)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("mail_listen_failed", error=type(exc).__name__)
            await self._unlisten()

    async def _unlisten(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.2
        # While deliveries are in hand, claim again only once a quarter of the batch is free: each claim
        # is a transaction of this one loop, and one claim (and one look at the next due time) for each
        # finished delivery held a busy sender to what the loop's round trips allow (30 to 50 mails a
        # second in the rush of bench (d), while the deliveries themselves went four times as fast).
        chunk = max(1, self._settings.mail_batch_size // 4)
        while not self._stopping:
            try:
                await self._listen()
                # Cleared before looking, so a NOTIFY that arrives while we work is not lost.
                self._wake.clear()
                free = self._settings.mail_batch_size - len(self._in_flight)
                if free >= chunk:
                    if await self.claim_and_spawn(free) == free:
                        continue  # there may be more
                    pause = await self._pause()
                else:
                    pause = self._settings.mail_poll_seconds  # a finishing delivery wakes the loop
                backoff = 0.2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=pause)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 -- the sender must outlive any database outage
                log.warning("mail_sender_error", error=type(exc).__name__, retry_in=backoff)
                await self._unlisten()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _pause(self) -> float:
        poll = self._settings.mail_poll_seconds
        until = await service.seconds_until_next_due(self._pool, self._clock)
        if until is None:
            return poll
        return max(0.01, min(poll, until))

    async def claim_and_spawn(self, limit: int) -> int:
        """Claim up to `limit` due mails and deliver each in its own task, so that one slow SMTP
        conversation never holds back the next confirmation; returns how many were claimed."""
        token = uuid.uuid4()
        settings = self._settings
        # Taken before the claim: the lease runs from (at the latest) now.
        data_by = asyncio.get_running_loop().time() + (
            settings.mail_lease_seconds - settings.smtp_data_timeout_seconds - MAIL_RECORD_SECONDS
        )
        mails = await service.claim_due_mails(
            self._pool,
            clock=self._clock,
            settings=settings,
            token=token,
            limit=limit,
            exclude=[delivery.mail.id for delivery in self._in_flight.values()],
        )
        for mail in mails:
            delivery = _Delivery(mail, token, Attempt(data_by, lambda: self._stopping))
            task = asyncio.create_task(self._deliver(delivery), name=f"mail-{mail.id}")
            self._in_flight[task] = delivery
            task.add_done_callback(self._delivered)
        return len(mails)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()  # a slot is free again

    async def _leave(self, delivery: _Delivery) -> None:
        """Record a delivery cut off by the stop (one try: the process is about to end)."""
        mail = delivery.mail
        if delivery.outcome is not None:  # the server answered; the recording was cut off
            outcome, error = delivery.outcome
        else:
            outcome, error = (
                (Outcome.UNKNOWN, UNKNOWN_AFTER_DATA)
                if delivery.attempt.data_sent
                else (Outcome.TEMPORARY, _STOPPING)
            )
            MAILS.labels(mail.kind.value, outcome.value).inc()
        try:
            status = await asyncio.wait_for(
                service.record_outcome(
                    self._pool,
                    mail,
                    delivery.token,
                    outcome,
                    error=error,
                    clock=self._clock,
                    settings=self._settings,
                ),
                timeout=_QUIT_SECONDS,
            )
        except Exception as exc:  # noqa: BLE001 -- then the lease decides, as after a crash
            log.warning("mail_not_recorded_at_stop", mail_id=str(mail.id), error=type(exc).__name__)
        else:
            _count_given_up(mail, outcome, status)

    async def _deliver(self, delivery: _Delivery) -> None:
        mail = delivery.mail
        try:
            await self._deliver_one(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- one broken mail must not stop the others; its lease expires
            log.error(
                "mail_delivery_error", mail_id=str(mail.id), kind=mail.kind.value, error=type(exc).__name__
            )

    async def _deliver_one(self, delivery: _Delivery) -> None:
        mail, token = delivery.mail, delivery.token
        if mail.superseded:
            await service.record_superseded(self._pool, mail, token, clock=self._clock)
            MAILS.labels(mail.kind.value, "superseded").inc()
            return
        if self._clock.now() >= mail.deadline:
            await service.record_not_tried(self._pool, mail, token, FailureReason.EXPIRED, clock=self._clock)
            MAILS.labels(mail.kind.value, "expired").inc()
            return
        if mail.suppressed:
            await service.record_not_tried(
                self._pool, mail, token, FailureReason.SUPPRESSED, clock=self._clock
            )
            MAILS.labels(mail.kind.value, "suppressed").inc()
            return
        wire = await self.build_message(mail)
        started = time.perf_counter()
        outcome, error = await self._transport(wire, self._from_address, mail.recipient, delivery.attempt)
        delivery.outcome = (outcome, error)
        SEND_SECONDS.observe(time.perf_counter() - started)
        MAILS.labels(mail.kind.value, outcome.value).inc()
        status = await self._record(mail, token, outcome, error)
        _count_given_up(mail, outcome, status)
        if status is MailStatus.SENT:
            log.info("mail_sent", mail_id=str(mail.id), kind=mail.kind.value, attempts=mail.attempts)

    async def _record(
        self,
        mail: service.ClaimedMail,
        token: uuid.UUID,
        outcome: Outcome,
        error: str | None,
    ) -> MailStatus | None:
        """Record the delivery's outcome. While the database is away (a restart, a fail-over) it is tried
        again until it is back, however long that takes: a mail the server has taken but that is not
        recorded would go out a second time (found by tests/faults, issue 10). Its lease running out
        meanwhile does no harm by itself: this sender never claims a mail it still has in hand, and the
        record is made with this claim's token, so that it fails (`mail_claim_lost`) only where another
        replica took the mail over first. Before, the sender gave up after most of the lease, and a
        restart longer than that (seen under load with the fault tests' 15 s lease) sent it twice."""
        delay = 0.2
        while True:
            try:
                return await service.record_outcome(
                    self._pool, mail, token, outcome, error=error, clock=self._clock, settings=self._settings
                )
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("mail_outcome_waits_for_database", mail_id=str(mail.id), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def build_message(self, mail: service.ClaimedMail) -> bytes:
        if mail.kind.value in waiting_mail.KINDS:  # the waiting list's mails (R45, issue 11)
            return await waiting_mail.build_message(self._pool, self._settings, self._clock, mail)
        snap = AppointmentSnapshot.model_validate(mail.payload["appointment"])
        language = texts.language_of(mail.language)
        context = texts.mail_context(
            mail.kind.value,
            mail.payload,
            public_base_url=self._settings.public_base_url,
            hotline=self._settings.hotline,
            replies_read=bool(self._settings.mail_reply_to),
        )
        current = mail.templates or await service.current_templates(self._pool, mail.kind.value, language)
        try:
            rendered = texts.render(current, context)
        except texts.TemplateProblem as exc:
            # A stored text that passed validation but fails on these data: the shipped text still works.
            log.error("mail_template_fallback", kind=mail.kind.value, language=language, field=exc.field)
            rendered = texts.render(texts.default_templates(mail.kind.value, language), context)
        calendar = None
        method = INVITATION_METHOD.get(mail.kind)
        if method is not None:
            calendar = invitation.invitation(
                snap,
                cancel=method == "CANCEL",
                organizer_address=self._from_address,
                organizer_name=self._from_name or "Jobcenter Bremen",
                domain=self._settings.mail_domain,
                stamp=self._clock.now(),
            )
        return message.compose(
            mail_id=mail.id,
            rendered=rendered,
            mail_from=self._settings.mail_from,
            reply_to=self._settings.mail_reply_to,
            recipient_name=f"{snap.customer.first_name} {snap.customer.last_name}",
            recipient_address=mail.recipient,
            language=language,
            correlation_id=mail.correlation_id,
            domain=self._settings.mail_domain,
            date=self._clock.now(),
            calendar=calendar,
            calendar_method=method or "REQUEST",
        )
