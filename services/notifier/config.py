"""Settings of the notifier service (OTV_* environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.config import CommonSettings


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
    smtp_timeout: float = Field(default=20.0, gt=0)  # seconds for each step of a conversation
    # Open connections are kept for the next mails (at most one per delivery in hand): closed after this
    # many mails (servers limit mails per connection) or when they waited this long (politeness).
    smtp_mails_per_connection: int = Field(default=100, ge=1)
    smtp_idle_seconds: float = Field(default=30.0, ge=0)  # ... waited this long
    mail_reply_to: str | None = None  # the Reply-To of every mail; unset: none
    # Used for the "book again" link when a manage link does not show the public address.
    public_base_url: str = "http://127.0.0.1:8080"
    # Key of the hash that stands for an address on the suppression list (no address is kept there).
    mail_hash_key: str = Field(default="otv-dev-mail-hash-key-change-me", min_length=16)

    # The sender loop (I7): a claimed mail belongs to its sender for the lease; a crashed sender's mail
    # is taken over once the lease has expired. The lease must outlast one SMTP conversation.
    mail_lease_seconds: float = Field(default=120.0, gt=0)
    # At most this many SMTP conversations of one sender at once.
    mail_batch_size: int = Field(default=20, ge=1, le=200)
    mail_poll_seconds: float = Field(default=5.0, gt=0)  # how often the sender looks without a NOTIFY
    # Temporary failures (4xx, connection refused) are retried with exponential back-off ...
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    mail_retry_max_seconds: float = Field(default=1800.0, gt=0)  # ... up to this long
    # ... until the deadline: the start for a reminder, this long after planning for the others.
    mail_give_up_hours: float = Field(default=48.0, gt=0)
    reminder_hours: float = Field(default=24.0, gt=0)  # the reminder leaves this long before the start (R8)
