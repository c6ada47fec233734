"""Settings of the notifier service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.config import CommonSettings

# The share of a mail's lease kept for recording how its delivery ended, after the server's last reply.
MAIL_RECORD_SECONDS = 5.0


class Settings(CommonSettings):
    service_name: ClassVar[str] = "notifier"

    port: int = 8084

    # Outgoing mail: the local mail sink by default (tools/mailsink.py).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025  # the relay's port
    smtp_username: str | None = None  # the relay's login; unset: none
    smtp_password: str | None = None  # the login's password
    # STARTTLS: unset, upgraded where the server offers it; true, required (a server without it is a
    # temporary failure); false, never (a relay on the same host or behind its own TLS tunnel).
    smtp_starttls: bool | None = None
    smtp_timeout: float = Field(default=20.0, gt=0)  # seconds for each step of a conversation but the last
    # Seconds for the server's reply to the end of a mail's data (RFC 5321 4.5.3.2.6 gives it 10 minutes): a
    # relay that scans the content may take long here, and one that gets no reply cannot know whether the
    # mail was taken (see OTV_MAIL_UNKNOWN_RETRY_SECONDS).
    smtp_data_timeout_seconds: float = Field(default=300.0, gt=0)
    # Open connections are kept for the next mails (at most one per delivery in hand): closed after this
    # many mails (servers limit mails per connection) or when they waited this long (politeness).
    smtp_mails_per_connection: int = Field(default=100, ge=1)
    smtp_idle_seconds: float = Field(default=30.0, ge=0)  # ... waited this long
    # The Reply-To of every mail, a mailbox the jobcenter reads: the mails then say that a reply reaches the
    # jobcenter. Unset: no Reply-To, and the mails ask not to reply.
    mail_reply_to: str | None = None
    # Used for the "book again" link when a manage link does not show the public address.
    public_base_url: str = "http://127.0.0.1:8080"
    # Key of the hash that stands for an address on the suppression list (no address is kept there).
    mail_hash_key: str = Field(default="otv-dev-mail-hash-key-change-me", min_length=16)

    # The sender loop (I7): a claimed mail belongs to its sender for the lease; a crashed sender's mail
    # is taken over once the lease has expired. The lease must outlast one whole SMTP conversation: the end
    # of a mail's data is sent only while OTV_SMTP_DATA_TIMEOUT_SECONDS and 5 s to record the outcome are
    # left of it, and the settings are refused unless one step (OTV_SMTP_TIMEOUT) fits before that.
    mail_lease_seconds: float = Field(default=600.0, gt=0)
    # At most this many SMTP conversations of one sender at once.
    mail_batch_size: int = Field(default=20, ge=1, le=200)
    mail_poll_seconds: float = Field(default=5.0, gt=0)  # how often the sender looks without a NOTIFY
    # Temporary failures (4xx, connection refused) are retried with exponential back-off ...
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    mail_retry_max_seconds: float = Field(default=1800.0, gt=0)  # ... up to this long
    # ... until the deadline: the start for a reminder, this long after planning for the others.
    mail_give_up_hours: float = Field(default=48.0, gt=0)
    reminder_hours: float = Field(default=24.0, gt=0)  # the reminder leaves this long before the start (R8)
    # A mail whose end of data got no reply (OTV_SMTP_DATA_TIMEOUT_SECONDS ran out, the connection broke,
    # the notifier stopped) may have been taken by the relay. It is sent once more, with the same Message-ID
    # and calendar UID, only after this long, so that a duplicate is rare and a lost confirmation rarer; a
    # second such attempt is given up (deploy/README.md, OTVMailOutcomeUnknown).
    mail_unknown_retry_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_conversation(self) -> Self:
        needed = self.smtp_timeout + self.smtp_data_timeout_seconds + MAIL_RECORD_SECONDS
        if self.mail_lease_seconds < needed:
            raise ValueError(
                f"OTV_MAIL_LEASE_SECONDS ({self.mail_lease_seconds:g}) must cover one SMTP conversation:"
                f" at least OTV_SMTP_TIMEOUT ({self.smtp_timeout:g}) + OTV_SMTP_DATA_TIMEOUT_SECONDS"
                f" ({self.smtp_data_timeout_seconds:g}) + {MAIL_RECORD_SECONDS:g} s to record it"
                f" = {needed:g};"
                " a shorter lease lets a second sender send a mail that is still being delivered"
            )
        return self
