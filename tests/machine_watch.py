"""A watch on the broker and the machine during a test run, printed at its end.

Two CI runs failed late with RabbitMQ answering nothing for minutes (no heartbeat in 183 s), while
PostgreSQL and the browser went on; the machine was gone before anyone could look. This thread asks
the broker for the start of an AMQP handshake every few seconds and reads what the machine has left
(RabbitMQ's open files, memory, disk, load), so that the next such run says when the broker stopped
answering, during which test, and what was short at the time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROBE_EVERY = 5.0  # seconds between two probes
SLOW = 2.0  # seconds: an answer slower than this counts as a stall
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
BROKER_DATA = Path("/var/lib/rabbitmq")
BROKER_LOG = Path("/var/log/rabbitmq")
NOISE = (
    "connection",
    "AMQP",
    "heartbeat",
    "client unexpectedly",
    "not_found",
)  # the stall's symptoms, not its cause


@dataclass
class Stall:
    began: str  # UTC, HH:MM:SS
    test: str
    ended: str = ""
    last_test: str = ""
    probes: int = 1
    planned: bool = False  # begun while a test had stopped the broker on purpose (`broker_stopped`)


@dataclass
class MachineWatch:
    broker_url: str
    answer_timeout: float = 15.0  # seconds a probe waits for the broker's first byte
    test: str = "(before the first test)"
    planned: int = 0  # tests that have stopped the broker on purpose, now
    probes: int = 0
    slowest: float = 0.0
    stalls: list[Stall] = field(default_factory=list)
    broker_files_max: int = 0
    memory_available_min: float = float("inf")  # GB
    disk_free_min: float = float("inf")  # GB
    load_max: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_EVERY + 15)
        self.probe_once()  # a short run has a figure too, and a stall open till the end shows as such

    def _run(self) -> None:
        while not self._stop.wait(PROBE_EVERY):
            self.probe_once()

    def probe_once(self) -> None:
        answered, seconds = self._ask_broker()
        self.probes += 1
        self.slowest = max(self.slowest, seconds)
        now = time.strftime("%H:%M:%S", time.gmtime())  # as RabbitMQ's log writes it
        open_stall = self.stalls[-1] if self.stalls and not self.stalls[-1].ended else None
        if not answered or seconds > SLOW:
            if open_stall is None:
                self.stalls.append(Stall(began=now, test=self.test, planned=self.planned > 0))
            else:
                open_stall.probes += 1
                open_stall.last_test = self.test
        elif open_stall is not None:
            open_stall.ended = now
        self._read_machine()

    def _ask_broker(self) -> tuple[bool, float]:
        """Whether the broker began a handshake (Connection.Start is a method frame, type 1) in time."""
        parts = urlsplit(self.broker_url)
        began = time.monotonic()
        try:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 5672), timeout=self.answer_timeout
            ) as s:
                s.sendall(AMQP_HEADER)
                first = s.recv(1)
        except OSError:
            return False, time.monotonic() - began
        return first == b"\x01", time.monotonic() - began

    def _read_machine(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.load_max = max(self.load_max, os.getloadavg()[0])
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    self.memory_available_min = min(self.memory_available_min, int(line.split()[1]) / 1e6)
        with contextlib.suppress(OSError):
            stat = os.statvfs(BROKER_DATA if BROKER_DATA.exists() else "/")
            self.disk_free_min = min(self.disk_free_min, stat.f_bavail * stat.f_frsize / 1e9)
        self.broker_files_max = max(self.broker_files_max, _broker_open_files())

    def report(self) -> list[str]:
        lines = [
            f"machine watch: {self.probes} broker probes, slowest answer {self.slowest:.2f} s; "
            f"RabbitMQ open files at most {self.broker_files_max}; memory available at least "
            f"{self.memory_available_min:.1f} GB; disk free at least {self.disk_free_min:.1f} GB; "
            f"load at most {self.load_max:.1f}"
        ]
        for stall in self.stalls:
            until = f"until {stall.ended}" if stall.ended else "until the end of the run"
            lines.append(
                f"  the broker did not answer within {SLOW:.0f} s from {stall.began} {until} "
                f"({stall.probes} probes), during {stall.test}"
                + (f" … {stall.last_test}" if stall.last_test and stall.last_test != stall.test else "")
                + ("; the test had stopped it on purpose" if stall.planned else "")
            )
            if stall.planned:
                continue
            lines.extend(f"    {line}" for line in broker_complaints(stall.began))
        return lines


def broker_complaints(around: str, limit: int = 6) -> list[str]:
    """RabbitMQ's warnings and errors of the minute before a stall began (HH:MM:SS, UTC), if readable."""
    began = time.strptime(around, "%H:%M:%S")
    since = time.strftime(
        "%H:%M:%S", time.gmtime(max(0, began.tm_hour * 3600 + began.tm_min * 60 + began.tm_sec - 60))
    )
    found: list[str] = []
    entries: set[str] = (
        set()
    )  # a report of several lines repeats its time and process on each: keep its first
    for log in sorted(BROKER_LOG.glob("rabbit@*.log")) if BROKER_LOG.is_dir() else []:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                stamp = line[11:19]  # 2026-12-07 10:46:13.718512+00:00 [error] ...
                complaint = any(f"[{level}]" in line for level in ("warning", "error", "critical"))
                entry = line.split("> ", 1)[0]
                if complaint and since <= stamp <= around and entry not in entries:
                    entries.add(entry)
                    if not any(word in line for word in NOISE):
                        found.append(line[:200])
    return found[-limit:]


_broker_process: list[Path] = []  # the Erlang VM of RabbitMQ, once found


def _broker_open_files() -> int:
    """Open files of the Erlang VM of RabbitMQ (0 where it cannot be read: not root, or not local)."""
    for _attempt in range(2):
        if not _broker_process:
            _broker_process.extend(_find_broker_process())
        for proc in _broker_process:
            with contextlib.suppress(OSError):
                return sum(1 for _ in (proc / "fd").iterdir())
        _broker_process.clear()  # gone (restarted): look once more
    return 0


def _find_broker_process() -> list[Path]:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if b"beam" in (proc / "comm").read_bytes() and b"rabbit" in (proc / "cmdline").read_bytes():
                    return [proc]
    return []
