"""Prometheus metrics every service shares (R51). Labels never carry personal data.

A labelled series exists only once the code names its labels; one that first appears with its first
event appears at 1, and Prometheus's increase() and rate() do not see that event (they need a sample
before it). So whatever a service counts for an alert (deploy/alerts.yaml) it names at 0 as it starts:
`count_from_zero`, called where the label values are known (the consumers, the notifier's mail kinds,
the gateway's lock-outs, booking's channels).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "otv_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "otv_http_request_duration_seconds",
    "HTTP request duration",
    ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PUBLISHED = Counter("otv_outbox_published_total", "Events published from the outbox", ["service"])
OUTBOX_PUBLISH_ERRORS = Counter(
    "otv_outbox_publish_errors_total", "Failed attempts to publish outbox events", ["service"]
)
OUTBOX_LAG = Gauge("otv_outbox_lag_seconds", "Age of the oldest unpublished outbox event", ["service"])
OUTBOX_PENDING = Gauge("otv_outbox_pending", "Unpublished outbox events", ["service"])
CONSUMED = Counter(
    "otv_events_consumed_total",
    "Events taken from a queue, by outcome (applied, duplicate, ignored, retried, deferred, dead)",
    ["consumer", "outcome"],
)
CONSUMED_OUTCOMES = ("applied", "duplicate", "ignored", "retried", "deferred", "dead")
# Queue depth per consumer (I4), from passive declares of its own queues: `queue` is "work" (waiting to be
# handled), "retry" (waiting for its back-off) or "dead" (not yet collected into the dead letters).
QUEUE_MESSAGES = Gauge("otv_queue_messages", "Messages waiting in a consumer's queues", ["consumer", "queue"])
QUEUE_CHECK_ERRORS = Counter(
    "otv_queue_check_errors_total", "Failed looks at a consumer's queue depth", ["consumer"]
)
# R34: when the service's retention run last completed (any replica's; every replica reports the newest
# it knows), so that an alert fires when personal data would outlive the retention period.
RETENTION_LAST_RUN = Gauge(
    "otv_retention_last_run_timestamp_seconds",
    "When the last retention run completed (Unix time)",
    ["service"],
)


def count_from_zero(counter: Counter, *label_values: Iterable[str]) -> None:
    """Create every combination of the given label values at 0 (for each label, in order, its values)."""
    combinations: list[tuple[str, ...]] = [()]
    for values in label_values:
        combinations = [(*combination, str(value)) for combination in combinations for value in values]
    for combination in combinations:
        counter.labels(*combination)
