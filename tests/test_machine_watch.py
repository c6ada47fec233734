"""The watch that tells, at the end of a run, when the broker stopped answering (tests/machine_watch.py)."""

from __future__ import annotations

import socket

from shared.config import CommonSettings
from tests.machine_watch import MachineWatch


def test_a_broker_that_accepts_but_never_answers_is_reported_as_a_stall_during_the_running_test() -> None:
    with socket.socket() as silent:  # the kernel accepts; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        watch = MachineWatch(f"amqp://guest:guest@127.0.0.1:{port}/", answer_timeout=0.3)
        watch.test = "tests/web/test_a.py::test_one"
        watch.probe_once()
        watch.test = "tests/web/test_b.py::test_two"
        watch.probe_once()

    report = "\n".join(watch.report())
    assert "2 broker probes" in report
    assert "did not answer" in report
    assert "until the end of the run (2 probes)" in report
    assert "during tests/web/test_a.py::test_one … tests/web/test_b.py::test_two" in report


def test_the_real_broker_answers_and_a_stall_that_ended_says_until_when() -> None:
    watch = MachineWatch(CommonSettings().broker_url)
    watch.probe_once()
    assert watch.stalls == []
    assert "did not answer" not in "\n".join(watch.report())

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        real = watch.broker_url
        watch.broker_url, watch.answer_timeout = f"amqp://127.0.0.1:{silent.getsockname()[1]}/", 0.3
        watch.probe_once()
        watch.broker_url = real
        watch.probe_once()

    assert len(watch.stalls) == 1
    assert watch.stalls[0].ended  # answered again
    assert "until the end of the run" not in "\n".join(watch.report())


def test_an_outage_a_test_made_on_purpose_is_named_as_such() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        watch = MachineWatch(f"amqp://127.0.0.1:{silent.getsockname()[1]}/", answer_timeout=0.3)
        watch.test = "tests/test_messaging.py::test_restart"
        watch.planned = 1  # as `broker_stopped` sets it
        watch.probe_once()

    report = watch.report()
    assert len(report) == 2
    assert report[1].endswith(
        "during tests/test_messaging.py::test_restart; the test had stopped it on purpose"
    )
