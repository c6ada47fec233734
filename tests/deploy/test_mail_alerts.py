"""The mail alerts of deploy/alerts.yaml, evaluated by Prometheus' own rule tester (promtool) on series as
the notifier exports them (otv_mails_total{kind, outcome}): a relay that refuses the notifier itself pages
at once; mail refused, rejected or suppressed counts as failing mail; a mail given up is a ticket."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (the Prometheus package) is not installed")


def alert_expr(name: str) -> str:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yaml").read_text(encoding="utf-8"))
    [rule] = [r for group in rules["groups"] for r in group["rules"] if r.get("alert") == name]
    expr: str = rule["expr"]
    return expr


def mails(outcome: str, values: str, kind: str = "confirmation") -> dict[str, str]:
    return {"series": f'otv_mails_total{{job="otv", kind="{kind}", outcome="{outcome}"}}', "values": values}


def fires(alert: str, at: str) -> dict[str, Any]:
    """The alert's condition holds at `at` (its `for` aside): one series or more."""
    one = [{"labels": "{}", "value": 1}]
    return {"expr": f"count({alert_expr(alert)})", "eval_time": at, "exp_samples": one}


def quiet(alert: str, at: str) -> dict[str, Any]:
    return {"expr": f"count({alert_expr(alert)})", "eval_time": at, "exp_samples": []}


def promtool_passes(tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    test = {
        "rule_files": [str(ROOT / "deploy" / "alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "mail-alerts-test.yaml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.req("R51")
def test_a_relay_refusing_the_notifier_pages_at_once_and_counts_as_failing_mail(tmp_path: Path) -> None:
    promtool_passes(
        tmp_path,
        [mails("relay_config", "0 0 0 0 0 1+1x40"), mails("sent", "0+5x45")],
        [
            quiet("OTVMailRelayRefusesNotifier", "4m"),
            fires("OTVMailRelayRefusesNotifier", "6m"),
            fires("OTVMailFailures", "30m"),  # 1 in 6 of the attempts
        ],
    )


@pytest.mark.req("R51")
@pytest.mark.parametrize("outcome", ["rejected", "suppressed", "refused", "temporary"])
def test_mail_rejected_suppressed_refused_or_failing_for_now_counts_as_failing_mail(
    tmp_path: Path, outcome: str
) -> None:
    promtool_passes(
        tmp_path,
        [mails(outcome, "0+1x40"), mails("sent", "0+4x40")],  # one mail in five
        [fires("OTVMailFailures", "30m"), quiet("OTVMailRelayRefusesNotifier", "30m")],
    )


@pytest.mark.req("R51")
def test_a_mail_given_up_opens_a_ticket_naming_its_kind(tmp_path: Path) -> None:
    promtool_passes(
        tmp_path,
        [mails("expired", "0 0 0 0 0 1 1 1 1 1 1 1 1 1 1", kind="reminder"), mails("sent", "0+5x15")],
        [
            quiet("OTVMailsGivenUp", "4m"),
            {
                "expr": alert_expr("OTVMailsGivenUp"),
                "eval_time": "10m",
                "exp_samples": [{"labels": '{kind="reminder"}', "value": 1}],
            },
        ],
    )
