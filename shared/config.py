"""Settings every service shares: OTV_* environment variables with defaults that work on a developer's
machine.

Each service subclasses `CommonSettings`, names itself in `service_name` and sets its port. Only a
service's `__main__` builds `Settings()`; everything else receives it.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import ClassVar, Literal, Self
from urllib.parse import quote

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("gateway", "catalog", "booking", "notifier", "reporting")


class CommonSettings(BaseSettings):
    # hide_input_in_errors: a refused setting never prints the values (secrets among them) into a log.
    model_config = SettingsConfigDict(env_prefix="OTV_", extra="ignore", hide_input_in_errors=True)

    service_name: ClassVar[str] = "shared"
    # The secrets this process uses, which OTV_REFUSE_DEV_DEFAULTS checks: every secret setting (None), or
    # only some for a one-shot tool (the migrations use the database password alone, the broker topology the
    # broker URL alone), so that a tool's pod needs no Secret it would never read.
    secrets_used: ClassVar[frozenset[str] | None] = None

    host: str = "127.0.0.1"  # the address the service listens on (0.0.0.0 in a container)
    port: int = 0  # the port it listens on; each service has its own default
    # SO_REUSEPORT: several processes of one service listen on the same port and the kernel spreads the
    # connections (`make run REPLICAS=2` runs two gateways on 8080 this way). Off by default, so that a
    # second process on a taken port fails loudly.
    reuse_port: bool = False

    db_host: str = "127.0.0.1"  # PostgreSQL (in a cluster: its connection pooler)
    db_port: int = 5432  # the database's port
    db_name: str = "otv"  # one database, one schema per service
    db_pool_min: int = 0  # a service starts (not ready) while the database is down
    db_pool_max: int = 10  # connections per process at most
    # Seconds a new database connection may take before the request is answered 503 `unavailable`; below
    # the gateway's upstream timeout, so that a black-holed database (a failover in progress, a lost
    # route) gives the client the retry hint, not a 504 and a request that hangs on for a minute.
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # TLS towards the database (or its pooler), as libpq's sslmode: `disable` (plain), `prefer` (TLS when
    # the server offers it, falling back to plain; the certificate unchecked: no protection against a man
    # in the middle), `require` (TLS or no connection; the certificate checked only when
    # OTV_DB_SSLROOTCERT is set, as with libpq), `verify-ca` (TLS, the certificate signed by that CA),
    # `verify-full` (also issued for OTV_DB_HOST: what a managed PostgreSQL over a network needs).
    # libpq's PGSSLMODE and PGSSLROOTCERT are not read: a process refuses to start while they are set.
    db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    # The CA certificate(s) (a PEM file) that the database's certificate must be signed by, or `system` for
    # the operating system's trusted CAs (a provider whose certificate comes from a public CA). Needed by
    # verify-ca and verify-full, refused with disable and prefer (which would check nothing); checked when
    # the process starts.
    db_sslrootcert: str = ""
    # The service's own certificate and its (unencrypted) key, PEM files, for a database or pooler that
    # authenticates clients by certificate as well (`clientcert=verify-ca` in pg_hba.conf); both or neither,
    # refused with disable and prefer; checked when the process starts.
    db_sslcert: str = ""
    db_sslkey: str = ""  # ... the key of OTV_DB_SSLCERT

    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"  # RabbitMQ, with its user and password
    # How long a service waits at start for the broker before it starts without (and connects later).
    broker_connect_wait_seconds: float = Field(default=10.0, ge=0)
    exchange: str = "otv.events"  # the topic exchange of all events
    queue_prefix: str = "otv"  # the first part of every queue's name

    log_level: str = "INFO"  # DEBUG, INFO, WARNING or ERROR
    log_json: bool = True  # one JSON object per line; false: readable lines

    # Consumer retries (I4): attempts before a message goes to the dead letters, and the first back-off.
    consumer_max_attempts: int = 5
    consumer_retry_base_ms: int = 500  # ... doubled on every further attempt
    # How long a consumer's transaction waits for a row another transaction holds (the inbox row of a
    # redelivered event whose first consumer died inside its transaction, or the effect's rows) before it
    # gives up and tries the event again later, without using up an attempt. Well below the pool's command
    # timeout (30 s), so that one stuck event does not hold back the events behind it.
    consumer_lock_timeout_ms: int = Field(default=5000, gt=0, le=20000)
    # An event of a type or version this release does not know (a newer release's, during a rolling update,
    # while old and new replicas share the queue) is not dropped: it is put back, every this many
    # seconds, so that a replica of the newer release takes it; after this many tries it goes to the dead
    # letters (never lost silently, I3). 20 tries of 30 s cover a rollout of ten minutes.
    consumer_unknown_retry_seconds: float = Field(default=30.0, gt=0)
    consumer_unknown_max_tries: int = Field(default=20, ge=1)  # ... tries before the dead letters

    # Outbox relay: how often it looks for rows even without a NOTIFY (safety net).
    outbox_poll_seconds: float = 1.0
    # R34: hours a published event stays in its producer's outbox (then the relay deletes it). Events carry
    # whole appointments with the manage link's token, so they are kept only for a restore after a lost
    # broker, which publishes again what left within this time before the restore point (deploy/README.md,
    # "Backup and restore"). The retention runs' own reports (counts only) stay for OTV_RETENTION_DAYS.
    outbox_keep_published_hours: float = Field(default=24.0, ge=0)
    # How often each consumer looks at the depth of its queues (the otv_queue_messages gauge).
    queue_depth_seconds: float = Field(default=15.0, gt=0)

    shutdown_timeout: float = 10.0  # seconds after SIGTERM for the work in hand

    # The event loop of uvloop (libuv) where it is installed: measurably more requests per CPU second for
    # the gateway's proxy hop and the services (bench/README.md); off falls back to asyncio's own loop.
    uvloop: bool = True

    # The sender of every mail and the organiser of every calendar invitation; the right-hand side of
    # every Message-ID and calendar UID. Shared: booking offers the invitation for download too, and a
    # calendar recognises its entry by the UID.
    mail_from: str = "Jobcenter Bremen <termine@jobcenter-bremen.example>"
    # ... the domain of Message-IDs and calendar UIDs. Never change it once mails went out: a calendar
    # matches a cancellation or a new time to its entry by the UID, so after a change the customers'
    # entries would stay and a second one appear.
    mail_domain: str = "otv.jobcenter-bremen"
    # The jobcenter's hotline (the service centre), where the pages cannot help further and at the foot of
    # every mail; the same number the catalog's demo locations and finder give (services/catalog/demo_data.py,
    # SERVICE_CENTRE). Shared: the gateway's pages and the notifier's mails. Linked as a global `tel:+49…`
    # number (shared/phone.py); one that cannot be made global is shown without a link.
    hotline: str = "0421 566-0"

    # Secret shared by gateway and services to sign the verified staff identity (issue 7).
    internal_secret: str = Field(default="otv-dev-internal-secret-change-me", min_length=16)
    # A second secret whose signatures are accepted too, never signed with, for a rotation of
    # OTV_INTERNAL_SECRET without refused staff requests while the Deployments roll: the new secret in the
    # first phase, the previous one in the second, unset otherwise (deploy/README.md, "Rotating secrets").
    internal_secret_accepted: str | None = Field(default=None, min_length=16)

    # R34: personal data of an appointment are erased this many days after its end. Every service that
    # keeps a copy runs its own retention job with this setting, at most once per interval across replicas.
    # RabbitMQ's operator policy otv-retention (scripts/broker-policy.sh) gives the queues this message TTL.
    retention_days: int = Field(default=28, ge=1)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)  # ... how often that job runs

    # Production (the k8s ConfigMap sets it): refuse to start while a secret is still its development
    # default or a placeholder of deploy/k8s/secrets.example.yaml ("REPLACE-..."); the defaults are public.
    refuse_dev_defaults: bool = False

    @model_validator(mode="after")
    def _database_tls(self) -> Self:
        stale = [
            name for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY") if os.environ.get(name)
        ]
        if stale:
            # Read by asyncpg once (deploy/README.md said so); now OTV passes the TLS settings itself, so
            # they would be ignored silently: a check of the certificate would end without a word.
            raise ValueError(
                f"{' and '.join(stale)} are not read by OTV: set OTV_DB_SSLMODE, OTV_DB_SSLROOTCERT, "
                "OTV_DB_SSLCERT and OTV_DB_SSLKEY instead (docs/configuration.md)"
            )
        if self.db_sslmode in ("verify-ca", "verify-full") and not self.db_sslrootcert:
            raise ValueError(
                f"OTV_DB_SSLMODE={self.db_sslmode} checks the database's certificate against a CA: set "
                "OTV_DB_SSLROOTCERT to the CA certificate file (PEM) or to `system` for the system's CAs"
            )
        if self.db_sslrootcert and self.db_sslmode in ("disable", "prefer"):
            # Whoever names a CA expects a check; these modes would make none without a word.
            raise ValueError(
                f"OTV_DB_SSLROOTCERT is set, but OTV_DB_SSLMODE={self.db_sslmode} checks no certificate: "
                "set OTV_DB_SSLMODE=verify-full (or verify-ca), or leave OTV_DB_SSLROOTCERT empty"
            )
        if bool(self.db_sslcert) != bool(self.db_sslkey):
            raise ValueError("OTV_DB_SSLCERT and OTV_DB_SSLKEY go together: the certificate and its key")
        if self.db_sslcert and self.db_sslmode in ("disable", "prefer"):
            raise ValueError(
                f"OTV_DB_SSLCERT is set, but OTV_DB_SSLMODE={self.db_sslmode} may connect without TLS: "
                "set OTV_DB_SSLMODE=verify-full (or require)"
            )
        if self.db_sslrootcert or self.db_sslcert:
            self.database_ssl()  # an unreadable or broken file stops the start, not every connection
        return self

    def database_ssl(self) -> ssl.SSLContext | Literal["prefer", False]:
        """The `ssl` argument of asyncpg's connect and create_pool for OTV_DB_SSLMODE. An SSLContext makes
        asyncpg insist on TLS (no fall-back to plain)."""
        if self.db_sslmode == "disable":
            return False
        if self.db_sslmode == "prefer":
            return "prefer"  # asyncpg's own: TLS if offered, unchecked, else plain
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.db_sslmode == "verify-full"
        if self.db_sslcert:
            try:
                context.load_cert_chain(self.db_sslcert, self.db_sslkey)
            except (OSError, ssl.SSLError) as exc:
                problem = (
                    "does not match OTV_DB_SSLKEY" if "KEY_VALUES_MISMATCH" in str(exc) else "cannot be read"
                )
                raise ValueError(
                    f"OTV_DB_SSLCERT {self.db_sslcert} {problem} (OTV_DB_SSLKEY {self.db_sslkey}): {exc}"
                ) from None
        if not self.db_sslrootcert:  # require without a CA: encrypted, the certificate unchecked (as libpq)
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.db_sslrootcert == "system":
            context.load_default_certs()
        else:
            path = Path(self.db_sslrootcert)
            try:
                context.load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"OTV_DB_SSLROOTCERT {path} is no readable PEM file of CA certificates: {exc}"
                ) from None
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    @model_validator(mode="after")
    def _no_development_secrets(self) -> Self:
        if not self.refuse_dev_defaults:
            return self
        weak = [
            name
            for name, field in type(self).model_fields.items()
            if (
                isinstance(field.default, str)
                and "change-me" in field.default
                and getattr(self, name) == field.default
            )
            or "REPLACE-" in str(getattr(self, name))
        ]
        if "guest:guest@" in self.broker_url:
            weak.append("broker_url")
        if self.db_password == self.db_user or "REPLACE-" in self.db_password:
            weak.append("db_password")
        if self.secrets_used is not None:
            weak = [name for name in weak if name in self.secrets_used]
        if weak:
            # Names only, never the values.
            env_names = {"db_password": f"{self.service_name}_db_password"}
            names = ", ".join(sorted(f"OTV_{env_names.get(name, name).upper()}" for name in set(weak)))
            raise ValueError(
                f"OTV_REFUSE_DEV_DEFAULTS is set, but these still hold a development default: {names}"
            )
        return self

    @property
    def db_user(self) -> str:
        return f"otv_{self.service_name}"

    @property
    def db_password(self) -> str:
        # Per-service password (production: from a secret); the role name is the development default.
        return os.environ.get(f"OTV_{self.service_name.upper()}_DB_PASSWORD", self.db_user)

    @property
    def database_url(self) -> str:
        return (
            f"postgresql://{quote(self.db_user)}:{quote(self.db_password)}"
            f"@{self.db_host}:{self.db_port}/{self.db_name}"
        )

    @property
    def db_schema(self) -> str:
        return self.service_name
