"""`make bench`: load benchmarks of OTV against real service processes, printed as a table and written as
JSON to bench/results/.

    bash bench/run.sh                 # what `make bench` runs: creates the database otv_bench, then this
    .venv/bin/python -m bench [--db otv_bench] [--quick]

What it measures (issue 10), each against its target:
  (a) the raw limit: pgbench runs the booking transaction's SQL (the advisory lock of a service point, one
      appointment row under the exclusion constraint and the one-per-customer indexes, one outbox row);
  (b) bookings per second through the gateway, as a share of (a), with p50/p95/p99;
  (c) availability reads at 50 concurrent clients on a location with 10,000 booked appointments;
  (d) the rush: 5,000 customers try to book 1,000 free slots of one location within 60 seconds: every slot
      booked once, every other customer a clean 409, no 5xx, every confirmation mail in the mail sink;
  (e) the resident memory (RSS) of each service, idle and at its peak under the load.

The services run as they do in production: `python -m services.<name>` on free loopback ports, with the
mail sink (`python -m tools.mailsink`) as the SMTP server, against the dedicated database (otv_bench,
emptied first) and exchange and queues of their own (deleted afterwards). The load comes from
`bench.load` in a separate process. OTV_BOT_DEFENCE=off, as for every load test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from bench.booking_bench import seed_appointments
from bench.booking_bench import snapshot as avail_snapshot
from services.booking.config import Settings as BookingSettings
from services.booking.consumer import apply_location_configured
from services.booking.domain import LocationConfig, available_slots
from shared.clock import BERLIN, SystemClock
from shared.config import SERVICE_NAMES, CommonSettings
from shared.db import create_pool
from shared.events import make_envelope
from shared.events.appointment import (
    AppointmentBookedV1,
    AppointmentSnapshot,
    AppointmentStatus,
    Channel,
    CustomerData,
)
from shared.events.catalog import (
    Address,
    ConcernOffer,
    GroupKind,
    GroupSnapshot,
    LeadTime,
    LocationConfiguredV1,
    Mode,
    WindowSnapshot,
)
from shared.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
# The rush counts the confirmation of each booking (the German subject: the bench books in German).
CONFIRMATION_SUBJECT = "Terminbestätigung"

TARGETS = {
    "booking_share": 0.30,  # (b) >= 30 % of (a)
    "availability_p95_ms": 25.0,  # (c)
    "rush_p99_ms": 500.0,  # (d)
    "mail_p95_s": 2.0,  # (d)
    "rss_mb": 150.0,  # (e)
}


# --- the machine ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    cpu = ""
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text(encoding="utf-8"))
        cpu = found.group(1).strip() if found else ""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    rss_idle_mb: float = 0.0
    rss_peak_mb: dict[str, float] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return self.name.split("-")[0]

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 -- our own interpreter and modules
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def rss_mb(self) -> float:
        if self.popen is None or self.popen.poll() is not None:
            return 0.0
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text(encoding="utf-8")
        except OSError:
            return 0.0
        found = re.search(r"VmRSS:\s+(\d+)\s+kB", status)
        return int(found.group(1)) / 1024 if found else 0.0

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far (/proc/<pid>/stat)."""
        if self.popen is None or self.popen.poll() is not None:
            return 0.0
        try:
            stat = Path(f"/proc/{self.popen.pid}/stat").read_text(encoding="utf-8")
            fields = stat.rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


# Processes of the infrastructure, by their command name in /proc/<pid>/stat: their CPU seconds are part
# of each booking's cost on the same machine.
INFRASTRUCTURE = {"postgres": "postgresql", "beam.smp": "rabbitmq"}


def infrastructure_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of PostgreSQL's and RabbitMQ's processes, children already reaped included
    (a backend that ended is counted in its parent's cutime/cstime)."""
    totals = dict.fromkeys(INFRASTRUCTURE.values(), 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="utf-8")
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        kind = INFRASTRUCTURE.get(name)
        if kind is None:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        totals[kind] += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return totals


class RssSampler:
    """Samples every process's resident set a few times a second while a phase runs; keeps the peak."""

    def __init__(self, procs: list[Proc], phase: str) -> None:
        self._procs, self._phase = procs, phase
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in self._procs:
                proc.rss_peak_mb[self._phase] = max(proc.rss_peak_mb.get(self._phase, 0.0), proc.rss_mb())
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class System:
    procs: list[Proc]
    gateway_url: str
    mail_api: str
    log_dir: Path

    def of(self, service: str) -> list[Proc]:
        return [p for p in self.procs if p.service == service]


def build_system(run_id: str, db_name: str, replicas: int, log_dir: Path) -> System:
    env = {
        **os.environ,
        "OTV_DB_NAME": db_name,
        "OTV_EXCHANGE": f"otv.bench.{run_id}.events",
        "OTV_QUEUE_PREFIX": f"otv.bench.{run_id}",
        "OTV_BOT_DEFENCE": "off",
        "OTV_LOG_JSON": "true",
        "OTV_LOG_LEVEL": "INFO",
        "OTV_SHUTDOWN_TIMEOUT": "5",
        "PYTHONUNBUFFERED": "1",
    }
    smtp_port, mail_http = free_port(), free_port()
    gateway_port = free_port()
    public = f"http://127.0.0.1:{gateway_port}"
    procs = [
        Proc(
            "mailsink",
            [PYTHON, "-m", "tools.mailsink"],
            {**env, "OTV_SMTP_PORT": str(smtp_port), "OTV_MAILSINK_HTTP_PORT": str(mail_http)},
            mail_http,
            log_dir / "mailsink.log",
        )
    ]
    urls: dict[str, list[str]] = {}
    for service in ("catalog", "booking", "notifier", "reporting"):
        for i in range(1, replicas + 1):
            port = free_port()
            name = service if replicas == 1 else f"{service}-{i}"
            urls.setdefault(service, []).append(f"http://127.0.0.1:{port}")
            procs.append(
                Proc(
                    name,
                    [PYTHON, "-m", f"services.{service}"],
                    {
                        **env,
                        "OTV_PORT": str(port),
                        "OTV_PUBLIC_BASE_URL": public,
                        "OTV_SMTP_PORT": str(smtp_port),
                    },
                    port,
                    log_dir / f"{name}.log",
                )
            )
    gateway_env = {
        **env,
        "OTV_PORT": str(gateway_port),
        "OTV_PUBLIC_BASE_URL": public,
        **{f"OTV_{s.upper()}_URLS": ",".join(u) for s, u in urls.items()},
    }
    if replicas > 1:
        gateway_env["OTV_REUSE_PORT"] = "true"
    for i in range(1, replicas + 1):
        name = "gateway" if replicas == 1 else f"gateway-{i}"
        procs.append(
            Proc(name, [PYTHON, "-m", "services.gateway"], gateway_env, gateway_port, log_dir / f"{name}.log")
        )
    return System(procs, public, f"http://127.0.0.1:{mail_http}/api/messages", log_dir)


async def wait_ready(system: System, timeout: float = 90.0) -> None:  # noqa: ASYNC109 -- a deadline
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        pending = list(system.procs)
        while pending:
            for proc in list(pending):
                if proc.popen is None or proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited; see {proc.log}")
                path = "/healthz" if proc.service == "mailsink" else "/readyz"
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{proc.port}{path}") as response:
                        if response.status == 200:
                            pending.remove(proc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {[p.name for p in pending]}")
            await asyncio.sleep(0.3)


# --- the database -----------------------------------------------------------------------------------------


def settings_of(service: str, db_name: str, **overrides: Any) -> CommonSettings:
    cls = type(f"{service.capitalize()}BenchSettings", (CommonSettings,), {"service_name": service})
    settings: CommonSettings = cls(db_name=db_name, **overrides)
    return settings


async def empty_database(db_name: str) -> None:
    """Every service's tables emptied (otv_bench belongs to the benchmark alone)."""
    for service in SERVICE_NAMES:
        settings = settings_of(service, db_name)
        await migrate(settings)
        conn = await asyncpg.connect(settings.database_url)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'",
                service,
            )
            if tables:
                names = ", ".join(f'{service}."{t["tablename"]}"' for t in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            if service == "booking":
                await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()


def location(location_id: str, points: int, concerns: dict[str, int]) -> LocationConfiguredV1:
    """A location with one group of `points` service points, open Monday to Friday 07:00 to 19:00."""
    group = "ez"
    return LocationConfiguredV1(
        location_id=location_id,
        revision=int(time.time() * 1000),
        name=f"Benchmark {location_id}",
        address=Address(street="Messweg 1", postcode="28195"),
        hotline="0421 0000000",
        lead_time=LeadTime(min_minutes=0, max_days=56),
        groups=[
            GroupSnapshot(id=group, kind=GroupKind.ENTRANCE_ZONE, name={"de": "EZ"}, service_points=points)
        ],
        windows=[
            WindowSnapshot(
                group_id=group, weekday=d, start=wall_time(7), end=wall_time(19), service_points=points
            )
            for d in range(5)
        ],
        concerns=[
            ConcernOffer(
                concern_id=concern,
                group_id=group,
                name={"de": f"Anliegen {concern}"},
                duration_minutes=minutes,
                modes=[Mode.IN_PERSON, Mode.PHONE],
            )
            for concern, minutes in concerns.items()
        ],
    )


def free_starts(snapshot: LocationConfiguredV1, concern: str, today: date) -> list[datetime]:
    """The bookable starts of `concern` from tomorrow on, as the booking service's own rules see them."""
    config = LocationConfig.of(snapshot)
    offer = config.concern(concern)
    assert offer is not None  # noqa: S101 -- our own snapshot offers it
    now = datetime.now(BERLIN)
    first = today + timedelta(days=1)
    last = today + timedelta(days=55)
    return [slot.start for slot in available_slots(config, offer, first, last, now, {})]


async def block_all_but(
    pool: asyncpg.Pool, location_id: str, starts: list[datetime], points: int, minutes: int
) -> None:
    """Book every given start on every point (as if booked long ago), so that only the rest stays free."""
    now = datetime.now(BERLIN)
    records = []
    for n, start in enumerate(starts):
        for point in range(1, points + 1):
            k = n * points + point
            records.append(
                (
                    uuid.uuid4(),
                    f"BX{k:07d}",
                    "booked",
                    location_id,
                    "ez",
                    point,
                    "kurz",
                    "in_person",
                    "online",
                    "de",
                    start,
                    start + timedelta(minutes=minutes),
                    "Bench",
                    "Blocker",
                    f"blocker{k}@{location_id}.invalid",
                    f"blocker{k}@{location_id}.invalid",
                    os.urandom(32),
                    "Benchmark",
                    "Messweg 1, 28195 Bremen",
                    "kurz",
                    now,
                    now,
                )
            )
    await pool.copy_records_to_table(
        "appointments",
        records=records,
        columns=[
            "id",
            "reference",
            "status",
            "location_id",
            "group_id",
            "service_point",
            "concern_id",
            "mode",
            "channel",
            "language",
            "start_at",
            "end_at",
            "first_name",
            "last_name",
            "email",
            "email_key",
            "manage_token_hash",
            "location_name",
            "location_address",
            "concern_name",
            "booked_at",
            "updated_at",
        ],
    )


# --- (a) pgbench ------------------------------------------------------------------------------------------

PGBENCH_SCRIPT = """\
BEGIN;
SELECT nextval('bench_pgbench_seq') AS n \\gset
SELECT pg_advisory_xact_lock(1330927202, hashtext('pgbench' || :n));
INSERT INTO appointments (
    id, reference, status, location_id, group_id, service_point, concern_id, mode, channel, language,
    start_at, end_at, evening, evening_declared, interpreter_language,
    first_name, last_name, email, phone, customer_number, household_number,
    email_key, customer_number_key, household_number_key, manage_token_hash,
    location_name, location_address, concern_name, documents, sensitive, emergency,
    booked_at, updated_at, client_network
)
SELECT gen_random_uuid(), 'PGB' || :n, 'booked', 'pgbench', 'ez', 1 + :n % 40, 'kurz', 'in_person', 'online',
       'de', '2040-01-01'::timestamptz + (:n / 40) * interval '15 minutes',
       '2040-01-01'::timestamptz + (:n / 40 + 1) * interval '15 minutes', false, false, NULL,
       'Bench', 'Mark', 'pgbench' || :n || '@bench.invalid', NULL, '000B' || :n, NULL,
       'pgbench' || :n || '@bench.invalid', '000B' || :n, NULL, sha256(('t' || :n)::bytea),
       'Benchmark', 'Messweg 1, 28195 Bremen', 'Anliegen kurz', '[]'::jsonb, false, false,
       now(), now(), '127.0.0.0/24'
WHERE NOT EXISTS (
    SELECT 1 FROM holds h
     WHERE h.location_id = 'pgbench' AND h.group_id = 'ez' AND h.service_point = 1 + :n % 40
       AND h.start_at < '2040-01-01'::timestamptz + (:n / 40 + 1) * interval '15 minutes'
       AND h.end_at > '2040-01-01'::timestamptz + (:n / 40) * interval '15 minutes'
       AND h.expires_at > now()
);
INSERT INTO outbox (id, type, envelope) VALUES (gen_random_uuid(), 'appointment.booked', :envelope);
END;
"""


def sample_envelope() -> str:
    """An `appointment.booked` envelope as the booking service writes it (its size matters to the WAL)."""
    now = datetime.now(BERLIN)
    snap = AppointmentSnapshot(
        id=uuid.uuid4(),
        reference="ABCDEFGH",
        revision=1,
        status=AppointmentStatus.BOOKED,
        location_id="pgbench",
        location_name="Benchmark",
        location_address="Messweg 1, 28195 Bremen",
        group_id="ez",
        service_point=1,
        concern_id="kurz",
        concern_name="Anliegen kurz",
        start=now,
        end=now + timedelta(minutes=15),
        mode=Mode.IN_PERSON,
        channel=Channel.ONLINE,
        customer=CustomerData(
            first_name="Bench", last_name="Mark", email="pgbench@bench.invalid", customer_number="000B1"
        ),
        manage_url=f"http://127.0.0.1:8080/manage/{uuid.uuid4()}?token={'x' * 43}",
        booked_at=now,
        client_network="127.0.0.0/24",
    )
    envelope = make_envelope(AppointmentBookedV1(appointment=snap), producer="booking", clock=SystemClock())
    return envelope.model_dump_json()


def pgbench_binary() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    return str(candidates[0]) if candidates else None


async def run_pgbench(db_name: str, seconds: int, clients: int, work: Path) -> dict[str, Any]:
    binary = pgbench_binary()
    if binary is None:
        return {"error": "pgbench not found (Debian: apt-get install postgresql-contrib)"}
    settings = BookingSettings(db_name=db_name)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("CREATE SEQUENCE IF NOT EXISTS bench_pgbench_seq")
        script = work / "booking.pgbench"
        # pgbench substitutes :envelope as a literal word; quote it as an SQL string once.
        script.write_text(PGBENCH_SCRIPT, encoding="utf-8")
        logs = work / "pgbench-log"
        env = {**os.environ, "PGPASSWORD": settings.db_password, "PGOPTIONS": "-c search_path=booking,public"}
        envelope = sample_envelope().replace("'", "''")
        argv = [
            binary,
            "-n",
            "-h",
            settings.db_host,
            "-p",
            str(settings.db_port),
            "-U",
            settings.db_user,
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-D",
            f"envelope='{envelope}'",
            "-f",
            str(script),
            "-l",
            f"--log-prefix={logs}",
            db_name,
        ]
        done = await asyncio.to_thread(
            subprocess.run, argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        if done.returncode != 0:
            return {"error": f"pgbench failed: {done.stderr.strip()[-500:]}"}
        tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
        latencies = []
        for log in await asyncio.to_thread(lambda: list(work.glob("pgbench-log*"))):
            for line in log.read_text(encoding="utf-8").splitlines():
                cols = line.split()
                if len(cols) >= 3:
                    latencies.append(int(cols[2]) / 1e6)
        return {
            "tps": tps,
            "clients": clients,
            "seconds": seconds,
            "transactions": len(latencies),
            **percentiles(latencies),
        }
    finally:
        await conn.execute("DELETE FROM appointments WHERE location_id = 'pgbench'")
        await conn.execute(
            "DELETE FROM outbox WHERE envelope->'data'->'appointment'->>'location_id' = 'pgbench'"
        )
        await conn.execute("DROP SEQUENCE IF EXISTS bench_pgbench_seq")
        await conn.execute("VACUUM ANALYZE appointments")
        await conn.close()


# --- helpers ----------------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000, 1)

    return {"p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": round(ordered[-1] * 1000, 1)}


async def load(spec: dict[str, Any], work: Path, procs: list[Proc], phase: str) -> dict[str, Any]:
    spec_path, result_path = work / f"{phase}.spec.json", work / f"{phase}.result.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    profilers = await start_profilers(procs, phase, work)
    cpu_before = {p.name: p.cpu_seconds() for p in procs}
    infra_before = infrastructure_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with RssSampler(procs, phase):
        process = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "bench.load", str(spec_path), str(result_path), cwd=ROOT
        )
        await asyncio.wait_for(process.wait(), timeout=300)
    cpu = {p.name: round(p.cpu_seconds() - cpu_before[p.name], 2) for p in procs}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu["load-client"] = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2)
    infra_after = infrastructure_cpu_seconds()
    cpu.update({kind: round(infra_after[kind] - infra_before[kind], 2) for kind in infra_after})
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
        await profiler.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the load client of {phase} failed ({process.returncode})")
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    result["cpu_seconds"] = cpu
    return result


async def start_profilers(procs: list[Proc], phase: str, work: Path) -> list[asyncio.subprocess.Process]:
    """With BENCH_PROFILE=booking,gateway (and py-spy installed): sample those services during each phase
    into collapsed stacks (work/profile-<service>-<phase>.txt; summarise with bench.profile)."""
    wanted = {name for name in os.environ.get("BENCH_PROFILE", "").split(",") if name}
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(PYTHON).parent))
    if not wanted or spy is None:
        return []
    started = []
    for proc in procs:
        if proc.name in wanted and proc.popen is not None:
            out = work / f"profile-{proc.name}-{phase}.txt"
            argv = [spy, "record", "--pid", str(proc.popen.pid), "--rate", "250", "--format", "raw"]
            started.append(
                await asyncio.create_subprocess_exec(
                    *argv, "--output", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
    await asyncio.sleep(0.5)
    return started


def summarise(result: dict[str, Any], what: str) -> dict[str, Any]:
    records = [r for r in result["records"] if r[0] == what]
    statuses: dict[str, int] = {}
    for _what, status, _latency, _end in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies = [r[2] for r in records]
    span = max(r[3] for r in records) - min(r[3] - r[2] for r in records) if records else 0.0
    return {
        "requests": len(records),
        # CPU seconds each process spent during the phase: where the machine's time went.
        "cpu_seconds": result.get("cpu_seconds", {}),
        "per_second": round(len(records) / span, 1) if span > 0 else 0.0,
        "statuses": statuses,
        "client_errors": result.get("errors", {}),
        **percentiles(latencies),
    }


def iso_days(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range(count)]


async def mails_sent(pool: asyncpg.Pool, kind: str = "confirmation") -> int:
    return int(await pool.fetchval("SELECT count(*) FROM mails WHERE kind = $1 AND status = 'sent'", kind))


async def delete_broker_objects(run_id: str, broker_url: str) -> None:
    prefix = f"otv.bench.{run_id}"
    listed = await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "-q", "list_queues", "name"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        for name in listed.stdout.split():
            if name.startswith(prefix):
                await channel.queue_delete(name)
        for name in (f"{prefix}.events", f"{prefix}.events.dlx"):
            await channel.exchange_delete(name)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    pgbench_seconds: int = 15
    pgbench_clients: int = 10
    availability_seconds: int = 15
    availability_clients: int = 50
    avail_appointments: int = 10_000
    bookings: int = 4_000
    booking_clients: int = 20
    booking_max_seconds: int = 30
    rush_customers: int = 5_000
    rush_slots: int = 1_000
    rush_points: int = 5
    rush_arrival_seconds: float = 50.0
    mail_wait_seconds: float = 60.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan()
    if args.quick:
        plan = Plan(
            pgbench_seconds=5,
            availability_seconds=5,
            avail_appointments=10_000,
            bookings=600,
            rush_customers=1_000,
            rush_slots=200,
            rush_arrival_seconds=10.0,
            mail_wait_seconds=30.0,
        )
    if args.db == "otv":
        raise SystemExit("refusing the live database otv: the benchmark empties its database")
    run_id = uuid.uuid4().hex[:8]
    report: dict[str, Any] = {
        "run_id": run_id,
        "started_at": datetime.now(BERLIN).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": args.db,
        "replicas": args.replicas,
        "plan": plan.__dict__,
        "targets": TARGETS,
    }
    work = Path(tempfile.mkdtemp(prefix=f"otv-bench-{run_id}-"))
    print(f"[bench] run {run_id}; logs in {work}", flush=True)
    print(f"[bench] machine: {report['machine']}", flush=True)

    phases = set(args.phases)
    await empty_database(args.db)
    if "a" in phases:
        print(f"[bench] (a) pgbench, {plan.pgbench_clients} clients, {plan.pgbench_seconds} s", flush=True)
        report["a_pgbench"] = await run_pgbench(args.db, plan.pgbench_seconds, plan.pgbench_clients, work)
        print(f"[bench]     {report['a_pgbench']}", flush=True)

    booking = BookingSettings(db_name=args.db)
    pool = await create_pool(booking)
    notifier_pool = await create_pool(settings_of("notifier", args.db))
    today = datetime.now(BERLIN).date()
    avail_id, book_id, rush_id = f"bench-avail-{run_id}", f"bench-book-{run_id}", f"bench-rush-{run_id}"
    rush_snapshot = location(rush_id, plan.rush_points, {"kurz": 15})
    book_snapshot = location(book_id, 40, {"kurz": 15})
    async with pool.acquire() as conn, conn.transaction():
        await apply_location_configured(conn, None, avail_snapshot(avail_id))
        await apply_location_configured(conn, None, book_snapshot)
        await apply_location_configured(conn, None, rush_snapshot)
    print(f"[bench] seeding {plan.avail_appointments} appointments at {avail_id} ...", flush=True)
    await seed_appointments(pool, avail_id, plan.avail_appointments, today)
    print("[bench] seeding the rush location ...", flush=True)
    rush_all = free_starts(rush_snapshot, "kurz", today)
    rush_count = plan.rush_slots // plan.rush_points
    rush_starts = rush_all[:rush_count]
    await block_all_but(pool, rush_id, rush_all[rush_count:], plan.rush_points, 15)
    await pool.execute("VACUUM ANALYZE appointments")
    book_starts = free_starts(book_snapshot, "kurz", today)
    print("[bench] starting the services ...", flush=True)

    system = build_system(run_id, args.db, args.replicas, work)
    try:
        # The queues first, so that no event of the first bookings is routed nowhere.
        # Other test runs on the machine may be restarting the broker: wait for it up to a minute.
        topology_env = {**system.procs[1].env}
        for attempt in range(30):
            declared = await asyncio.to_thread(
                subprocess.run,
                [PYTHON, "-m", "shared.topology"],
                cwd=ROOT,
                env=topology_env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            if declared.returncode == 0:
                break
            if attempt == 29:
                raise RuntimeError("RabbitMQ did not answer for a minute")
            await asyncio.sleep(2.0)
        for proc in system.procs:
            proc.start()
        await wait_ready(system)
        await asyncio.sleep(2.0)
        for proc in system.procs:
            proc.rss_idle_mb = proc.rss_mb()
        print("[bench] services ready: " + ", ".join(f"{p.name}:{p.port}" for p in system.procs), flush=True)

        if "c" in phases:
            await measure_availability(report, plan, system, work, avail_id, today)
        if "b" in phases:
            await measure_bookings(report, plan, system, work, book_id, book_starts, notifier_pool, run_id)
        if "d" in phases:
            await measure_rush(report, plan, system, work, rush_id, rush_starts, pool, notifier_pool, run_id)
        report["e_memory"] = {
            p.name: {
                "idle_mb": round(p.rss_idle_mb, 1),
                "peak_mb": round(max(p.rss_peak_mb.values(), default=0.0), 1),
            }
            for p in system.procs
        }
    finally:
        for proc in reversed(system.procs):
            proc.stop()
        await pool.close()
        await notifier_pool.close()
        with contextlib.suppress(Exception):
            await delete_broker_objects(run_id, booking.broker_url)
    report["verdicts"] = verdicts(report)
    return report


async def measure_availability(
    report: dict[str, Any], plan: Plan, system: System, work: Path, avail_id: str, today: date
) -> None:
    days = iso_days(today + timedelta(days=1), 50)
    warm = {
        "scenario": "availability",
        "base": system.gateway_url,
        "location": avail_id,
        "days": days,
        "concerns": ["kurz", "lang"],
        "concurrency": 10,
        "duration": 2,
    }
    await load(warm, work, system.procs, "warm-up")
    print(f"[bench] (c) availability, {plan.availability_clients} clients ...", flush=True)
    spec = {**warm, "concurrency": plan.availability_clients, "duration": plan.availability_seconds}
    result = await load(spec, work, system.procs, "availability")
    report["c_availability"] = summarise(result, "availability")
    print(f"[bench]     {report['c_availability']}", flush=True)


async def measure_bookings(
    report: dict[str, Any],
    plan: Plan,
    system: System,
    work: Path,
    book_id: str,
    book_starts: list[datetime],
    notifier_pool: asyncpg.Pool,
    run_id: str,
) -> None:
    print(f"[bench] (b) {plan.bookings} bookings, {plan.booking_clients} clients ...", flush=True)
    spec = {
        "scenario": "bookings",
        "base": system.gateway_url,
        "location": book_id,
        "concern": "kurz",
        "starts": [s.isoformat() for s in book_starts],
        "per_start": 40,
        "count": plan.bookings,
        "concurrency": plan.booking_clients,
        "max_seconds": plan.booking_max_seconds,
        "tag": f"b{run_id}",
    }
    result = await load(spec, work, system.procs, "bookings")
    bookings = summarise(result, "booking")
    pg = report.get("a_pgbench", {}).get("tps") or 0
    bookings["share_of_pgbench"] = round(bookings["per_second"] / pg, 3) if pg else None
    report["b_bookings"] = bookings
    print(f"[bench]     {bookings}", flush=True)
    # Let the mails of (b) go out, so that they do not slow down the rush's.
    await wait_until(lambda: mails_sent(notifier_pool), bookings["statuses"].get("201", 0), 60)


async def measure_rush(
    report: dict[str, Any],
    plan: Plan,
    system: System,
    work: Path,
    rush_id: str,
    rush_starts: list[datetime],
    pool: asyncpg.Pool,
    notifier_pool: asyncpg.Pool,
    run_id: str,
) -> None:
    print(
        f"[bench] (d) rush: {plan.rush_customers} customers, {plan.rush_slots} slots,"
        f" arriving over {plan.rush_arrival_seconds:.0f} s ...",
        flush=True,
    )
    before_mails = await mails_sent(notifier_pool)
    spec: dict[str, Any] = {
        "scenario": "rush",
        "base": system.gateway_url,
        "location": rush_id,
        "concern": "kurz",
        "starts": [s.isoformat() for s in rush_starts],
        "per_start": plan.rush_points,
        "customers": plan.rush_customers,
        "arrival_seconds": plan.rush_arrival_seconds,
        "from": rush_starts[0].date().isoformat(),
        "to": rush_starts[-1].date().isoformat(),
        "tag": f"r{run_id}",
        "connections": 500,
    }
    began = time.time()
    result = await load(spec, work, system.procs, "rush")
    rush = summarise(result, "rush-booking")
    rush["availability"] = summarise(result, "rush-availability")
    rush["wall_seconds"] = round(result["wall_seconds"], 1)
    booked_at = {n: end for n, status, _code, end in result["outcomes"] if status == 201}
    codes: dict[str, int] = {}
    for _n, status, code, _end in result["outcomes"]:
        if status >= 400:
            codes[code] = codes.get(code, 0) + 1
    rush["error_codes"] = codes
    wanted = before_mails + len(booked_at)
    with RssSampler(system.procs, "rush-mails"):
        await wait_until(lambda: mails_sent(notifier_pool), wanted, plan.mail_wait_seconds)
    rush.update(await rush_checks(pool, rush_id, system, spec["tag"], booked_at, plan, began))
    report["d_rush"] = rush
    print(f"[bench]     {rush}", flush=True)


async def wait_until(count: Any, wanted: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await count() >= wanted:
            return True
        await asyncio.sleep(0.25)
    return False


async def rush_checks(
    pool: asyncpg.Pool,
    location_id: str,
    system: System,
    tag: str,
    booked_at: dict[int, float],
    plan: Plan,
    began: float,
) -> dict[str, Any]:
    rows = await pool.fetch(
        "SELECT start_at, service_point, count(*) AS n FROM appointments"
        " WHERE location_id = $1 AND status = 'booked' AND email LIKE $2"
        " GROUP BY start_at, service_point",
        location_id,
        f"{tag}-%",
    )
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.get(system.mail_api) as response,
    ):
        messages = await response.json()
    mail_at: dict[int, list[float]] = {}
    other_mails = 0
    pattern = re.compile(rf"^{re.escape(tag)}-(\d+)@bench\.invalid$")
    for message in messages:
        confirmation = str(message.get("subject", "")).startswith(CONFIRMATION_SUBJECT)
        for rcpt in message["to"]:
            found = pattern.match(rcpt)
            if found and not confirmation:
                # A reminder falls due when a run starts about 24 h before the rush's slots: no duplicate.
                other_mails += 1
            elif found:
                received = datetime.fromisoformat(message["received_at"]).timestamp()
                mail_at.setdefault(int(found.group(1)), []).append(received)
    delays = [min(mail_at[n]) - t for n, t in booked_at.items() if n in mail_at]
    last_mail = max((max(v) for v in mail_at.values()), default=began)
    return {
        "slots_booked": len(rows),
        "slots_booked_twice": sum(1 for r in rows if r["n"] > 1),
        "slots_free_left": plan.rush_slots - len(rows),
        "mails": sum(len(v) for v in mail_at.values()),
        "mails_duplicate": sum(len(v) - 1 for v in mail_at.values()),
        "mails_missing": sum(1 for n in booked_at if n not in mail_at),
        "mails_to_losers": sum(1 for n in mail_at if n not in booked_at),
        "other_mails": other_mails,
        "mail_delay": {k.replace("_ms", "_s"): round(v / 1000, 2) for k, v in percentiles(delays).items()},
        "last_mail_after_start_s": round(last_mail - began, 1),
    }


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    b = report.get("b_bookings", {})
    if b.get("share_of_pgbench") is not None:
        out["b"] = b["share_of_pgbench"] >= TARGETS["booking_share"]
    if "c_availability" in report:
        c = report["c_availability"]
        out["c"] = c["p95_ms"] <= TARGETS["availability_p95_ms"] and set(c["statuses"]) == {"200"}
    if "d_rush" in report:
        d = report["d_rush"]
        bad = {s: n for s, n in d["statuses"].items() if s not in ("201", "409")}
        out["d"] = (
            not bad
            and d["slots_booked_twice"] == 0
            and d["slots_free_left"] == 0
            and d["statuses"].get("201", 0) == report["plan"]["rush_slots"]
            and set(d["error_codes"]) <= {"slot_taken"}
            and d["p99_ms"] <= TARGETS["rush_p99_ms"]
            and d["mails_missing"] == 0
            and d["mails_duplicate"] == 0
            and d["mail_delay"]["p95_s"] <= TARGETS["mail_p95_s"]
        )
    if "e_memory" in report:
        out["e"] = all(m["peak_mb"] <= TARGETS["rss_mb"] for m in report["e_memory"].values())
    return out


def table(report: dict[str, Any]) -> str:
    m = report["machine"]
    ok = report["verdicts"]

    def mark(key: str) -> str:
        return "" if key not in ok else ("yes" if ok[key] else "**no**")

    lines = [
        f"Run {report['run_id']} at {report['started_at']}: {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gb']} GB, load average at start {', '.join(map(str, m['load_average_at_start']))}; "
        f"Python {m['python']}; {report['replicas']} process(es) per service.",
        "",
        "| figure | result | target | met |",
        "|---|---|---|---|",
    ]
    a = report.get("a_pgbench", {})
    if "tps" in a:
        lines.append(
            f"| (a) raw limit: pgbench, booking transaction | {a['tps']:.0f} tx/s ({a['clients']} clients; "
            f"p50 {a['p50_ms']} / p95 {a['p95_ms']} / p99 {a['p99_ms']} ms) | reference | |"
        )
    else:
        lines.append(f"| (a) raw limit | {a.get('error', 'not run')} | reference | |")
    b = report.get("b_bookings")
    if b:
        share = b.get("share_of_pgbench")
        lines.append(
            f"| (b) bookings through the gateway | {b['per_second']:.0f} /s = "
            f"{(share or 0) * 100:.0f} % of (a); p50 {b['p50_ms']} / p95 {b['p95_ms']} / "
            f"p99 {b['p99_ms']} ms; "
            f"{_statuses(b['statuses'])} | >= 30 % of (a) | {mark('b')} |"
        )
    c = report.get("c_availability")
    if c:
        lines.append(
            f"| (c) availability, 50 clients, 10,000 booked | p50 {c['p50_ms']} / p95 {c['p95_ms']} / "
            f"p99 {c['p99_ms']} ms; {c['per_second']:.0f} req/s; {_statuses(c['statuses'])} | p95 <= 25 ms "
            f"| {mark('c')} |"
        )
    d = report.get("d_rush")
    if d:
        lines.append(
            f"| (d) rush: {report['plan']['rush_customers']} customers, {report['plan']['rush_slots']} slots "
            f"| {_statuses(d['statuses'])} ({_statuses(d['error_codes'])}); booked twice "
            f"{d['slots_booked_twice']}, left free {d['slots_free_left']}; booking p50 {d['p50_ms']} / "
            f"p95 {d['p95_ms']} / p99 {d['p99_ms']} ms; mails {d['mails']} (missing {d['mails_missing']}, "
            f"duplicate {d['mails_duplicate']}), mail delay p50 {d['mail_delay']['p50_s']} / "
            f"p95 {d['mail_delay']['p95_s']} s, last mail {d['last_mail_after_start_s']} s after the first "
            f"customer | no errors, p99 <= 500 ms, mail p95 <= 2 s | {mark('d')} |"
        )
    e = report.get("e_memory")
    if e:
        worst = ", ".join(f"{name} {v['idle_mb']:.0f}/{v['peak_mb']:.0f}" for name, v in e.items())
        lines.append(f"| (e) RSS idle/peak, MB | {worst} | <= 150 MB each | {mark('e')} |")
    return "\n".join(lines)


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n}x {s}" for s, n in sorted(counts.items())) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="otv_bench", help="database (emptied first; default otv_bench)")
    parser.add_argument("--replicas", type=int, default=1, help="processes per service (default 1)")
    parser.add_argument("--quick", action="store_true", help="a short run (smaller numbers) for trying")
    parser.add_argument("--phases", default="abcde", help="which figures to measure (default abcde)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(BERLIN).strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    text = table(report)
    print()
    print(text)
    print(f"\n[bench] written: {RESULTS / (stamp + '.json')}")
    return 0 if all(report["verdicts"].values()) else 1
