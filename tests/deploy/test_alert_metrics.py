"""The alerting rules of deploy/alerts.yaml against what the services really expose at start.

Prometheus's `increase()` and `rate()` need two samples of a series. prometheus_client creates a labelled
series only when the code first names its labels, so a series that appears with the first event appears
at 1, and that first event is invisible: the first dead letter of a consumer after a pod's start, the
lock of an account, the first mail given up. Each service therefore names, as it starts, every label
combination an alert counts, at 0. This test starts every service as its own fresh process (no series
left by other tests), reads its /metrics once it is ready, and checks every counter an alert counts.

Where deploy/alerts.yaml names a counter whose series cannot all exist at start, EXEMPT says why the
alert does not depend on its first event; a new alert on a lazily created series fails here.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.staff.domain import LoginOutcome
from services.notifier.domain import Outcome
from shared.config import SERVICE_NAMES
from shared.db import create_pool
from shared.events.appointment import Channel
from shared.events.mail import MailKind
from shared.topology import CONSUMERS
from tests.conftest import db_settings, empty_schemas, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "alerts.yaml"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")

SELECTOR = re.compile(r"\b(otv_[a-z0-9_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')

# (alert, metric) -> why the alert does not miss the series' first event.
EXEMPT = {
    ("OTVHighServerErrorRate", "otv_http_requests_total"): (
        "a share of all requests over 5 minutes, for 5 minutes: the series is per route and status, made "
        "by the requests themselves; one request more or less does not decide it"
    ),
    ("OTVApiKeyLimited", "otv_api_key_requests_total"): (
        "a key beyond its allowance in every 5 minutes of ten: the series is per API key, unknown at start "
        "(keys are made at run time); the first limited request does not decide it, the ten minutes do"
    ),
}

Sample = tuple[str, dict[str, str], float]


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in rules["groups"] for rule in group["rules"]]


def counted_selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, label matchers without `job`) of every counter series the expression reads."""
    for name, labels in SELECTOR.findall(expr):
        if not name.endswith("_total"):
            continue  # gauges hold their value, histograms feed quantiles over minutes
        yield name, [m for m in MATCHER.findall(labels or "") if m[0] != "job"]


def matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, value in matchers:
        actual = labels.get(label, "")
        hit = re.fullmatch(value, actual) is not None if op in ("=~", "!~") else actual == value
        if hit != (op in ("=", "=~")):
            return False
    return True


@dataclass
class Started:
    service: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path


async def _empty_system() -> None:
    """Earlier tests of this session leave events in its consumer queues and work in the services' tables
    (due mails, whose deadline passes with the real clock of these processes): a fresh service would act
    on them before its /metrics is read, and its counters would not show the start."""
    pools = {service: await create_pool(db_settings(service)) for service in SERVICE_NAMES}
    try:
        await empty_schemas(pools)
    finally:
        for pool in pools.values():
            await pool.close()


@pytest.fixture(scope="module")
def fresh_metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Sample]]:
    """Every service started as a new process; its /metrics read as soon as it is ready."""
    work = tmp_path_factory.mktemp("alert-metrics")
    # OTV_DB_NAME, OTV_EXCHANGE and OTV_QUEUE_PREFIX of this test session come from os.environ.
    common = {**os.environ, "OTV_LOG_JSON": "true", "OTV_SHUTDOWN_TIMEOUT": "5", "PYTHONUNBUFFERED": "1"}
    asyncio.run(_empty_system())
    started: list[Started] = []
    try:
        for service in SERVICE_NAMES:
            port = free_port()
            log = work / f"{service}.log"
            with log.open("wb") as out:
                popen = subprocess.Popen(
                    [sys.executable, "-m", f"services.{service}"],
                    cwd=ROOT,
                    env={**common, "OTV_PORT": str(port), "OTV_SMTP_PORT": str(free_port())},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append(Started(service, port, popen, log))
        return asyncio.run(_scrape_when_ready(started))
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)


async def _scrape_when_ready(started: list[Started]) -> dict[str, list[Sample]]:
    scraped: dict[str, list[Sample]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for process in started:

            async def ready(process: Started = process) -> bool:
                if process.popen.poll() is not None:
                    tail = process.log.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise AssertionError(f"{process.service} exited:\n{tail}")
                try:
                    async with http.get(f"http://127.0.0.1:{process.port}/readyz") as response:
                        return response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    return False

            await wait_for(ready, timeout=60, interval=0.3, what=f"{process.service} ready")
            async with http.get(f"http://127.0.0.1:{process.port}/metrics") as response:
                text = await response.text()
            scraped[process.service] = [
                (sample.name, dict(sample.labels), sample.value)
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            ]
    return scraped


def series(samples: list[Sample], name: str, **labels: str) -> list[float]:
    return [value for n, got, value in samples if n == name and labels.items() <= got.items()]


def metrics_in_code() -> dict[str, set[str]]:
    """Every otv_* metric the code declares (prometheus_client's Counter, Gauge, Histogram), with the
    names of its labels."""
    declared: dict[str, set[str]] = {}
    for folder in ("shared", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (
                    isinstance(node, ast.Call) and ast.unparse(node.func) in ("Counter", "Gauge", "Histogram")
                ):
                    continue
                if not (node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                name = str(node.args[0].value)
                labels = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg == "labelnames":
                        labels = keyword.value
                declared[name] = set(ast.literal_eval(labels)) if labels is not None else set()
    return declared


# Labels the scrape job adds to every series (README.md, "Monitoring"), not the code.
TARGET_LABELS = {"job", "namespace", "pod", "component", "instance"}


def test_every_alert_selects_a_metric_of_the_code_by_labels_the_metric_has() -> None:
    """A label the metric does not have selects nothing, and the alert never fires."""
    declared = metrics_in_code()
    assert {"otv_mails_total", "otv_events_consumed_total", "otv_staff_login_lockouts_total"} <= set(declared)
    for rule in alert_rules():
        for name, labels in SELECTOR.findall(rule["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in declared or base in declared, f"{rule['alert']}: {name} is no metric of the code"
            own = declared.get(name, declared.get(base, set()))
            for label, _, _ in MATCHER.findall(labels or ""):
                assert label in own | TARGET_LABELS, f"{rule['alert']}: {name} has no label {label}"


@pytest.mark.req("R51")
def test_every_counter_an_alert_counts_exists_at_zero_when_the_service_starts(
    fresh_metrics: dict[str, list[Sample]],
) -> None:
    everything = [sample for samples in fresh_metrics.values() for sample in samples]
    checked = 0
    for rule in alert_rules():
        for name, matchers in counted_selectors(rule["expr"]):
            if (rule["alert"], name) in EXEMPT:
                continue
            found = [v for n, labels, v in everything if n == name and matches(labels, matchers)]
            assert found, f"{rule['alert']}: no series {name}{matchers} at start; its first event is lost"
            assert all(v == 0 for v in found), f"{rule['alert']}: {name}{matchers} = {found} at start"
            checked += 1
    assert checked >= 10
    for alert, _ in EXEMPT:
        assert alert in {r["alert"] for r in alert_rules()}, f"EXEMPT names {alert}, which is gone"


def test_every_consumer_reports_every_outcome_from_its_start(fresh_metrics: dict[str, list[Sample]]) -> None:
    """OTVDeadLetters counts by consumer: each consumer's first dead letter after a pod's start counts."""
    outcomes = ("applied", "duplicate", "ignored", "retried", "deferred", "dead")
    for consumer in CONSUMERS:
        samples = fresh_metrics[consumer.split(".")[0]]
        for outcome in outcomes:
            assert series(samples, "otv_events_consumed_total", consumer=consumer, outcome=outcome) == [
                0.0
            ], (
                consumer,
                outcome,
            )
        assert series(samples, "otv_queue_check_errors_total", consumer=consumer) == [0.0], consumer


def test_every_mail_kind_reports_every_outcome_from_the_notifiers_start(
    fresh_metrics: dict[str, list[Sample]],
) -> None:
    """OTVMailsGivenUp and OTVMailOutcomeUnknown count by kind: the first reminder given up counts."""
    samples = fresh_metrics["notifier"]
    for kind in MailKind:
        for outcome in [*Outcome, "expired", "superseded", "suppressed"]:
            assert series(samples, "otv_mails_total", kind=kind.value, outcome=str(outcome)) == [0.0], (
                kind,
                outcome,
            )


def test_the_gateway_reports_both_lockouts_and_every_refusal_from_its_start(
    fresh_metrics: dict[str, list[Sample]],
) -> None:
    """OTVStaffAccountLockedForUnknownNetworks: the one lock it reports is usually the only one."""
    samples = fresh_metrics["gateway"]
    for scope in ("network", "account"):
        assert series(samples, "otv_staff_login_lockouts_total", scope=scope) == [0.0], scope
    for reason in LoginOutcome:
        assert series(samples, "otv_staff_logins_refused_total", reason=reason.value) == [0.0], reason


def test_booking_reports_a_booked_count_for_every_channel_from_its_start(
    fresh_metrics: dict[str, list[Sample]],
) -> None:
    """OTVBookingsFailing compares against the booked rate: after a release in which no booking succeeds,
    the new pods must still have a booked series (at 0), not none."""
    samples = fresh_metrics["booking"]
    for channel in Channel:
        assert series(samples, "otv_booking_requests_total", channel=channel.value, outcome="booked") == [0.0]


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    """The operators' situations of alerts.test.yaml: a component without any pod to scrape pages, a
    release in which no booking succeeds pages, the first dead letter after a pod's start is a ticket."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/setup.sh installs it for `make test`)")
    result = subprocess.run(
        [promtool, "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_component_with_no_pod_to_scrape_pages_for_every_component() -> None:
    """`up` exists only for a pod with an address: with every pod Pending there is no series to sum."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "OTVServiceNotScraped"]
    assert rule["labels"]["severity"] == "page"
    absent = set(re.findall(r'absent\(up\{job="otv", component="([a-z]+)"\}\)', rule["expr"]))
    assert absent == set(SERVICE_NAMES)
    # The component label is the pods' app.kubernetes.io/component (README.md, "Monitoring").
    for service in SERVICE_NAMES:
        manifest = (ROOT / "deploy" / "k8s" / f"{service}.yaml").read_text(encoding="utf-8")
        assert f"app.kubernetes.io/component: {service}" in manifest
    notes = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert "OTVServiceNotScraped" in notes[notes.index("### Runbook") :]
