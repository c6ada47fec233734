"""Settings of the gateway (OTV_* environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from shared.config import CommonSettings
from shared.networks import check_office_networks


class Settings(CommonSettings):
    service_name: ClassVar[str] = "gateway"

    port: int = 8080
    # Where customers reach the pages: links, and the only origin that forms and staff requests may come from.
    # An https address (TLS at the ingress) also names the session and CSRF cookies `__Host-...`, which no
    # other host of the domain can set; switching to https signs staff in again once.
    public_base_url: str = "http://127.0.0.1:8080"

    # Upstreams: one URL per replica, comma-separated; the gateway balances across them.
    catalog_urls: str = "http://127.0.0.1:8081"
    booking_urls: str = "http://127.0.0.1:8082"  # ... of the booking service
    reporting_urls: str = "http://127.0.0.1:8083"  # ... of the reporting service
    notifier_urls: str = "http://127.0.0.1:8084"  # ... of the notifier
    upstream_timeout: float = 10.0  # seconds for a whole answer, then 504
    upstream_connect_timeout: float = 2.0  # seconds to connect, then the next replica
    # Reverse proxies in front of the gateway (an ingress), as comma-separated networks: from these the
    # client's address is taken from X-Forwarded-For; from anyone else that header is ignored. Cover only
    # the ingress controller's pods and the proxies themselves, never client or office networks: a client
    # inside these ranges can name any address in that header and so escape every per-address limit
    # (bot defence, the staff sign-in lock-out and throttle).
    trusted_proxies: str = ""

    # Customer web pages (issue 6). The secret signs CSRF tokens, encrypts the booking dialogue's state
    # and signs the proof-of-work challenges; set it in production (>= 32 characters).
    web_secret: str = Field(default="otv-dev-web-secret-change-me-in-production", min_length=16)
    # Further languages of the customer pages (R43), as content: a folder holding
    # `<language>/LC_MESSAGES/messages.po` (and `waiting.po` for the waiting list's pages) per language,
    # named by its BCP 47 tag (`tr`, `pt-BR`). Each is offered beside the built-in German, Leichte Sprache
    # and English (one named like these replaces it); customers book in it, and what has no text in it
    # (mails, concern names) comes in German. Empty: only the built-in languages.
    translations_dir: str = ""
    # Who may frame the customer pages (R36): the CSP `frame-ancestors` sources, space-separated.
    frame_ancestors: str = "'self'"
    # Where customers send accessibility feedback (BITV 2.0 statement): an e-mail address (the page links
    # it with mailto:; an empty one would reach nobody).
    accessibility_contact: str = Field(
        default="barrierefreiheit@jobcenter-bremen.example", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    # The privacy notice (Art. 13 GDPR): the controller's postal address and the data protection officer.
    privacy_controller: str = "Jobcenter Bremen, Doventorsteinweg 44, 28195 Bremen"
    privacy_contact: str = "datenschutz@jobcenter-bremen.example"  # ... the data protection officer
    # The imprint (Impressum, § 5 DDG) of the jobcenter's homepage, linked from the customer pages' footer
    # when set: the booking usually sits inside that homepage, whose imprint covers it.
    imprint_url: str = Field(default="", pattern=r"^(https?://\S+)?$")

    # Bot defence (R39): token buckets per client IP (IPv6: per /64), in memory per replica. `burst`
    # requests at once, refilled at `rate` per second; beyond `soft` recent requests a proof-of-work
    # challenge is needed. Off (tests and load tests only, never in production) also lifts the request limit
    # of API keys (OTV_API_KEY_REQUESTS_PER_MINUTE).
    bot_defence: bool = True
    bot_availability_rate: float = 1.0  # ... availability reads: `rate`
    bot_availability_burst: int = 120  # ... availability reads: `burst`
    bot_availability_soft: int = 60  # ... availability reads: `soft`
    bot_booking_rate: float = 0.05  # ... holds and bookings: `rate`
    bot_booking_burst: int = 20  # ... holds and bookings: `burst`
    bot_booking_soft: int = 8  # ... holds and bookings: `soft`
    bot_challenge_cost: int = 5000  # ... the challenge's difficulty (ALTCHA's maximum number)
    bot_challenge_ttl_seconds: int = 600  # ... how long a challenge may be solved
    bot_pass_seconds: int = 900  # ... how long a solved challenge lifts `soft`
    # Known networks with many customers behind one address (the public NAT address of a jobcenter office
    # with its self-service PCs, the service centre), as comma-separated networks of the address the
    # gateway sees (behind the ingress: from X-Forwarded-For, so OTV_TRUSTED_PROXIES must be right): their
    # clients get `trusted_factor` times every `rate`, `burst` and `soft` above, still a limit. At most an
    # IPv4 /16 or an IPv6 /48 each (an IPv6 network at least a /64): never a provider's network or the whole
    # internet.
    bot_trusted_networks: str = ""
    bot_trusted_factor: float = Field(default=20.0, ge=1, le=1000)  # ... `trusted_factor`

    # Staff access (issue 7): sessions end after `idle` minutes without a request and at the latest after
    # `absolute` hours. `max_failures` wrong passwords within `lockout` minutes lock an account for the
    # client network (an IPv4 address, an IPv6 /56: a German provider's line) they came from only;
    # `account_max_failures` within `lockout` minutes over all networks (a distributed guess) lock it for
    # `lockout` minutes for every network the account has not signed in from within `known` days, so a
    # stranger cannot lock out a caseworker who signs in from a network they used before (an
    # administrator's new start password unlocks it).
    staff_session_idle_minutes: int = Field(default=30, ge=1)
    staff_session_absolute_hours: float = Field(default=10.0, gt=0)  # ... `absolute`
    staff_login_max_failures: int = Field(default=5, ge=1)  # ... `max_failures`
    staff_login_lockout_minutes: int = Field(default=15, ge=1)  # ... `lockout`
    staff_login_account_max_failures: int = Field(default=20, ge=1)  # ... `account_max_failures`
    # ... `known`: also how long the networks an account signed in from are kept (personal data of the
    # staff member); longer than the longest absence (holidays, a course) spares more caseworkers a lock.
    staff_login_known_network_days: int = Field(default=30, ge=1, le=366)
    # Failed sign-ins from one client address (an IPv6 /64; whatever the names) within 15 minutes before it
    # must wait; against password spraying. Behind a proxy the address is the one the gateway sees (see
    # proxy.py).
    staff_login_ip_max_failures: int = Field(default=50, ge=1)
    # Password checks (argon2id: 64 MiB of memory each) running at once in one gateway process; the
    # gateway's memory limit in deploy/k8s/gateway.yaml allows for this many (raise both together). Further
    # sign-ins and password changes wait their turn for up to `wait` seconds, then are answered 503
    # `unavailable` with Retry-After, counted as no failed sign-in.
    staff_password_checks: int = Field(default=2, ge=1, le=16)
    staff_password_wait_seconds: float = Field(default=10.0, gt=0, le=60)  # ... `wait`
    # Refused API keys (each one an audit row) from one client address (an IPv6 /64) within a minute, per
    # gateway replica; beyond that 429 `rate_limited`, counted in otv_api_key_refusals_total but not audited.
    staff_key_refusals_per_minute: int = Field(default=10, ge=1)
    # Refused staff requests (403 `forbidden`, each one an audit row) of one staff account or API key within
    # a minute, per gateway replica (n replicas audit up to n times as many); beyond that the same 403
    # `forbidden` (the request can never succeed: not 429, which a client would retry), counted in
    # otv_staff_refusals_total{outcome="throttled"} but not audited, so that a script run with one valid
    # session cannot bury the audit log (R46).
    staff_refusals_per_minute: int = Field(default=20, ge=1)
    # Requests of one valid API key (the service centre's CRM, another system) a minute in the long run, and
    # `burst` of them at once, per gateway replica (n replicas allow up to n times as many; a token bucket
    # like the bot defence's). Beyond that 429 `rate_limited` with Retry-After, counted in
    # otv_api_key_requests_total{outcome="limited"} by the key's id: a runaway integration with a good key
    # must not starve the service centre's agents and the booking service. A busy service centre (tens of
    # agents, a few requests a call) stays far below. This is the default: an administrator may give a key
    # a limit of its own (API keys page, PUT /api/v1/admin/api-keys/{key_id}/request-limit; 1 to 60000 a
    # minute, with a burst of the same share of a minute as `burst` is of this), which every replica
    # applies from the key's next request on. Staff signed in through the browser have no such limit;
    # OTV_BOT_DEFENCE=off switches it off with the other rate limits.
    api_key_requests_per_minute: int = Field(default=600, ge=1)
    api_key_burst: int = Field(default=120, ge=1)  # ... `burst`
    # The client address of an audit entry (R46 "from where") is personal data: deleted after this many days
    # by the gateway's retention job (every OTV_RETENTION_INTERVAL_SECONDS); the entry itself stays. At
    # least 7: the database refuses to delete younger ones (the gateway must not hide its recent writes).
    audit_address_retention_days: int = Field(default=90, ge=7)
    # The session cookie is always HttpOnly and SameSite=Lax; Secure unless switched off for a plain-HTTP
    # host other than localhost/127.0.0.1 (browsers accept Secure cookies there over http). Off, it keeps
    # its bare name even with an https public address (a `__Host-` cookie must be Secure).
    staff_cookie_secure: bool = True
    # Password of the demo logins that `load-demo` creates (never used by anything else).
    demo_password: str = "otv-demo"  # noqa: S105 -- the documented demo password, for demo data only

    # Integrations (issue 12, R50): the consumer `gateway.integrations` and the webhook sender (off: only
    # the API). Off, the consumer's queues are removed with what they hold (by the gateway at its start, and
    # by the set-up's `python -m shared.topology` where it sees the setting too), so that no queue collects
    # appointment events nobody reads (R34). Webhook targets must be https with public addresses; plain
    # http to 127.0.0.1 only where `webhook_allow_loopback` is on (development and tests, never production).
    integrations: bool = True
    webhook_allow_loopback: bool = False  # ... never in production
    # Seconds a receiver may take to answer. A round of POSTs runs inside the transaction that holds its
    # deliveries, which the database ends after 60 s without a statement (the bootstrap's idle timeout).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    webhook_send_interval_seconds: float = Field(default=1.0, gt=0)  # how often due deliveries are sent
    # A delivery is retried with exponential back-off for this long; a subscription failing this long is
    # paused. Optionally also after this many failed attempts in a row (off by default: every attempt of
    # every waiting delivery counts, so a busy subscriber down for a quarter of an hour would reach 500).
    webhook_give_up_hours: float = Field(default=24.0, gt=0)
    webhook_pause_after_hours: float = Field(default=24.0, gt=0)  # ... a failing subscription is paused after
    webhook_pause_after_failures: int | None = Field(default=None, ge=1)  # ... or after this many; unset: off
    # The event feed keeps events (and their deliveries) this long (R34: not longer than needed).
    event_feed_retention_days: int = Field(default=7, ge=1)

    @field_validator("bot_trusted_networks")
    @classmethod
    def _known_networks(cls, spec: str) -> str:
        return check_office_networks(spec)

    def extra_translations(self) -> Path | None:
        return Path(self.translations_dir) if self.translations_dir.strip() else None

    def upstreams(self) -> dict[str, list[str]]:
        table = {
            "catalog": self.catalog_urls,
            "booking": self.booking_urls,
            "reporting": self.reporting_urls,
            "notifier": self.notifier_urls,
        }
        return {
            name: [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
            for name, urls in table.items()
        }
