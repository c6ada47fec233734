"""`make run REPLICAS=2`: the Procfile of scripts/procfile.py runs two processes of every service, all of
them become ready, the two gateways share the public port, and the gateway spreads requests over both
replicas of a service.

The test starts the generated commands itself (not through honcho), on ports of its own, against the
test database and this session's exchange and queues (tests/conftest.py puts them into os.environ).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from services.booking.config import Settings as BookingSettings
from services.catalog.config import Settings as CatalogSettings
from services.gateway.config import Settings as GatewaySettings
from services.notifier.config import Settings as NotifierSettings
from services.reporting.config import Settings as ReportingSettings
from shared.config import SERVICE_NAMES, CommonSettings
from tests.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROCFILE_SCRIPT = ROOT / "scripts" / "procfile.py"
REPLICAS = 2
_ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass
class Process:
    name: str
    env: dict[str, str]
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def service(self) -> str:
        return self.name.split("-")[0]

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ReplicaRun:
    base_port: int
    processes: list[Process] = field(default_factory=list)

    def of(self, service: str) -> list[Process]:
        return [p for p in self.processes if p.service == service]

    def port(self, process: Process) -> int:
        if process.service == "mailsink":
            return int(process.env["OTV_MAILSINK_HTTP_PORT"])
        return int(process.env["OTV_PORT"])

    def describe(self) -> str:
        return "\n".join(
            f"--- {p.name} (exit {p.popen.poll() if p.popen else '-'}):\n{p.log_tail()}"
            for p in self.processes
        )


def generate_procfile(replicas: int, path: Path, **ports: int) -> str:
    options = [f"--{key.replace('_', '-')}={value}" for key, value in ports.items()]
    subprocess.run(
        [sys.executable, str(PROCFILE_SCRIPT), str(replicas), "-o", str(path), *options],
        check=True,
        cwd=ROOT,
        timeout=30,
    )
    return path.read_text(encoding="utf-8")


def parse_procfile(text: str, log_dir: Path) -> list[Process]:
    """Honcho's reading: `name: command`, the command run by a shell; ours is `VAR=value ... argv`."""
    processes = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, _, command = raw.partition(":")
        words = shlex.split(command)
        env: dict[str, str] = {}
        while words and _ENV_WORD.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        processes.append(Process(name.strip(), env, words, log_dir / f"{name.strip()}.log"))
    return processes


def ports_are_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def pick_base_port() -> int:
    """A base port whose gateway port, service ports and replica ports (+100) are all free."""
    for _ in range(50):
        base = free_port()
        if base > 60000:
            continue
        wanted = [base] + [base + k + 100 * i for k in range(1, 5) for i in range(REPLICAS)]
        if ports_are_free(wanted):
            return base
    raise AssertionError("found no free block of ports for the replica run")


def listening_socket_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    return inodes


def socket_inodes_of(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def stop_all(processes: list[Process]) -> None:
    running = [p.popen for p in processes if p.popen is not None and p.popen.poll() is None]
    for popen in running:
        popen.send_signal(signal.SIGTERM)
    for popen in running:
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=5)


@pytest.fixture(scope="module")
def replica_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaRun]:
    work = tmp_path_factory.mktemp("replicas")
    base = pick_base_port()
    text = generate_procfile(
        REPLICAS, work / "Procfile.run", base_port=base, smtp_port=free_port(), mail_http_port=free_port()
    )
    run = ReplicaRun(base_port=base, processes=parse_procfile(text, work))
    # OTV_DB_NAME, OTV_EXCHANGE and OTV_QUEUE_PREFIX of this test session come from os.environ.
    common = {**os.environ, "OTV_LOG_JSON": "true", "OTV_SHUTDOWN_TIMEOUT": "5", "PYTHONUNBUFFERED": "1"}
    try:
        for process in run.processes:
            with process.log.open("wb") as log:
                process.popen = subprocess.Popen(
                    process.argv,
                    cwd=ROOT,
                    env={**common, **process.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        yield run
    finally:
        stop_all(run.processes)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection for every request, so that the kernel may hand each to either gateway.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def status_of(http: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with http.get(url) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def wait_until_ready(run: ReplicaRun, http: aiohttp.ClientSession) -> None:
    async def all_ready() -> bool:
        exited = [p.name for p in run.processes if p.popen is None or p.popen.poll() is not None]
        if exited:
            raise AssertionError(f"processes exited: {exited}\n{run.describe()}")
        # The gateways share one port, so one ready gateway answers for both: each must hold a socket of it.
        listening = listening_socket_inodes(run.base_port)
        for gateway in run.of("gateway"):
            assert gateway.popen is not None
            if not socket_inodes_of(gateway.popen.pid) & listening:
                return False
        for process in run.processes:
            path = "/healthz" if process.service == "mailsink" else "/readyz"
            if await status_of(http, f"http://127.0.0.1:{run.port(process)}{path}") != 200:
                return False
        return True

    try:
        await wait_for(all_ready, timeout=90, interval=0.5, what="every process of the replica run ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run.describe()}") from None


def requests_counted(metrics_text: str, service: str) -> float:
    """Requests a process served, its own health, readiness and metrics routes left out."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith("otv_http_requests_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        if f'service="{service}"' not in labels:
            continue
        if any(f'route="{own}"' in labels for own in ("/healthz", "/readyz", "/metrics")):
            continue
        total += float(value)
    return total


async def request_counts(run: ReplicaRun, http: aiohttp.ClientSession, service: str) -> list[float]:
    counts = []
    for process in run.of(service):
        async with http.get(f"http://127.0.0.1:{run.port(process)}/metrics") as response:
            assert response.status == 200
            counts.append(requests_counted(await response.text(), service))
    return counts


def test_the_generated_procfile_for_one_replica_is_the_repositorys_procfile(tmp_path: Path) -> None:
    generated = generate_procfile(1, tmp_path / "Procfile.run")
    assert generated == (ROOT / "Procfile").read_text(encoding="utf-8")


@pytest.mark.parametrize("replicas", [1, REPLICAS])
def test_an_otv_port_given_to_make_run_moves_the_gateway_and_no_other_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replicas: int
) -> None:
    """honcho hands the caller's environment to every process: `OTV_PORT=9000 make run` must not send
    the catalog, booking, notifier and reporting to port 9000 too (they would fail to bind, and honcho
    would stop everything). Each service's line names its own port; the gateway's takes the caller's."""
    processes = parse_procfile(generate_procfile(replicas, tmp_path / "Procfile.run"), tmp_path)
    settings: dict[str, type[CommonSettings]] = {
        "gateway": GatewaySettings,
        "catalog": CatalogSettings,
        "booking": BookingSettings,
        "reporting": ReportingSettings,
        "notifier": NotifierSettings,
    }
    for process in processes:
        if process.service == "mailsink":
            continue
        with monkeypatch.context() as env:
            env.setenv("OTV_PORT", "9000")  # the operator's `OTV_PORT=9000 make run`
            for key, value in process.env.items():
                env.setenv(key, value)
            port = settings[process.service]().port
        if process.service == "gateway":
            assert port == 9000, process.name
        else:
            index = int(process.name.rsplit("-", 1)[1]) if replicas > 1 else 1
            usual = settings[process.service].model_fields["port"].default
            assert port == usual + 100 * (index - 1), process.name


def test_the_procfile_for_two_replicas_runs_two_of_every_service_on_distinct_ports(tmp_path: Path) -> None:
    processes = parse_procfile(generate_procfile(REPLICAS, tmp_path / "Procfile.run"), tmp_path)
    default_ports = {
        "catalog": CatalogSettings().port,
        "booking": BookingSettings().port,
        "reporting": ReportingSettings().port,
        "notifier": NotifierSettings().port,
    }
    for service in SERVICE_NAMES:
        replicas = [p for p in processes if p.service == service]
        assert len(replicas) == REPLICAS, service
        assert all(p.argv[-2:] == ["-m", f"services.{service}"] for p in replicas)
    assert [p.name for p in processes if p.service == "mailsink"] == ["mailsink"]  # one sink for all
    gateways = [p for p in processes if p.service == "gateway"]
    assert all(g.env["OTV_REUSE_PORT"] == "true" and "OTV_PORT" not in g.env for g in gateways)
    for service, port in default_ports.items():
        ports = [int(p.env.get("OTV_PORT", port)) for p in processes if p.service == service]
        assert ports == [port, port + 100]
        # Every gateway knows every replica; the first is the service's usual address.
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        assert all(g.env[f"OTV_{service.upper()}_URLS"] == ",".join(urls) for g in gateways)
    assert GatewaySettings().port == 8080


@pytest.mark.req("R51")
async def test_every_process_of_a_two_replica_run_becomes_ready(
    replica_run: ReplicaRun, http: aiohttp.ClientSession
) -> None:
    await wait_until_ready(replica_run, http)
    assert len(replica_run.processes) == REPLICAS * len(SERVICE_NAMES) + 1
    # Both gateways hold a listening socket on the one public port (SO_REUSEPORT), neither failed to bind.
    listening = listening_socket_inodes(replica_run.base_port)
    for gateway in replica_run.of("gateway"):
        assert gateway.popen is not None
        assert socket_inodes_of(gateway.popen.pid) & listening, f"{gateway.name} does not listen"
    for service in SERVICE_NAMES:
        ports = {replica_run.port(p) for p in replica_run.of(service)}
        assert len(ports) == (1 if service == "gateway" else REPLICAS), service


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("catalog", "/api/v1/locations"),
        ("booking", f"/api/v1/appointments/{uuid.UUID(int=0)}"),
    ],
)
async def test_the_gateway_spreads_requests_over_both_replicas_of_a_service(
    replica_run: ReplicaRun, http: aiohttp.ClientSession, service: str, path: str
) -> None:
    await wait_until_ready(replica_run, http)
    before = await request_counts(replica_run, http, service)
    sent = 12
    statuses = await asyncio.gather(
        *(status_of(http, f"http://127.0.0.1:{replica_run.base_port}{path}") for _ in range(sent))
    )
    # The replica's answer (a 404 while the route is not built yet is fine), never the gateway's 502.
    assert all(s is not None and s < 500 for s in statuses), statuses
    after = await request_counts(replica_run, http, service)
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(served) == sent, served
    assert all(n >= 1 for n in served), f"each replica of {service} served: {served}"
