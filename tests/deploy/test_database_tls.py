"""TLS towards PostgreSQL (OTV_DB_SSLMODE, OTV_DB_SSLROOTCERT): a managed PostgreSQL or its pooler accepts
only TLS, and only a checked certificate keeps a man in the middle out. The real database here speaks no
TLS, so a front (tests/tls.py) speaks it for it, as a managed server would."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.config import CommonSettings
from shared.db import create_pool
from shared.migrate import migrate
from tests.conftest import db_settings
from tests.tls import ThrowawayCA, TlsFront

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA(tmp_path)


@pytest.fixture
def stranger(tmp_path: Path) -> ThrowawayCA:
    """Another CA: what a man in the middle's certificate is signed by."""
    (tmp_path / "stranger").mkdir()
    return ThrowawayCA(tmp_path / "stranger", name="Somebody else")


@pytest.fixture
async def front(ca: ThrowawayCA) -> AsyncIterator[TlsFront]:
    """The database behind TLS with a certificate for 127.0.0.1, the address the services connect to."""
    real = db_settings("booking")
    async with TlsFront(ca.server_context("127.0.0.1"), real.db_host, real.db_port, postgres=True) as running:
        yield running


def through(front: TlsFront, **tls: Any) -> CommonSettings:
    return db_settings("booking", db_host="127.0.0.1", db_port=front.port, db_connect_timeout=3, **tls)


async def one_query(settings: CommonSettings) -> Any:
    pool = await create_pool(settings, min_size=0, max_size=1)
    try:
        return await pool.fetchval("SELECT current_user")
    finally:
        await pool.close()


async def test_verify_full_connects_to_a_database_whose_certificate_the_configured_ca_issued(
    front: TlsFront, ca: ThrowawayCA
) -> None:
    settings = through(front, db_sslmode="verify-full", db_sslrootcert=str(ca.cert_file))
    assert await one_query(settings) == "otv_booking"
    assert front.tls_sessions == 1


async def test_verify_full_refuses_a_certificate_of_another_ca_a_man_in_the_middle(
    front: TlsFront, stranger: ThrowawayCA
) -> None:
    """Before OTV_DB_SSLMODE, asyncpg's default `prefer` took any certificate: this query went through."""
    settings = through(front, db_sslmode="verify-full", db_sslrootcert=str(stranger.cert_file))
    with pytest.raises(ssl.SSLCertVerificationError):
        await one_query(settings)
    assert front.tls_sessions == 0


async def test_verify_full_refuses_a_certificate_for_another_host_but_verify_ca_takes_it(
    ca: ThrowawayCA,
) -> None:
    real = db_settings("booking")
    async with TlsFront(
        ca.server_context("db.example.internal"), real.db_host, real.db_port, postgres=True
    ) as front:
        full = through(front, db_sslmode="verify-full", db_sslrootcert=str(ca.cert_file))
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            await one_query(full)
        assert await one_query(through(front, db_sslmode="verify-ca", db_sslrootcert=str(ca.cert_file)))
        assert front.tls_sessions == 1


async def test_require_encrypts_without_a_ca_and_disable_cannot_reach_a_tls_only_server(
    front: TlsFront, stranger: ThrowawayCA
) -> None:
    assert await one_query(through(front, db_sslmode="require")) == "otv_booking"
    assert front.tls_sessions == 1
    # With a CA, require checks the certificate as libpq does (like verify-ca).
    with pytest.raises(ssl.SSLCertVerificationError):
        await one_query(through(front, db_sslmode="require", db_sslrootcert=str(stranger.cert_file)))
    assert front.tls_sessions == 1
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await one_query(through(front, db_sslmode="disable"))
    assert front.plain_refused == 1


async def test_disable_and_the_default_prefer_reach_the_plain_database() -> None:
    assert await one_query(db_settings("booking", db_sslmode="disable")) == "otv_booking"
    assert await one_query(db_settings("booking")) == "otv_booking"


async def test_the_migration_runner_checks_the_certificate_too(
    front: TlsFront, ca: ThrowawayCA, stranger: ThrowawayCA
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await migrate(through(front, db_sslmode="verify-full", db_sslrootcert=str(stranger.cert_file)))
    assert front.tls_sessions == 0
    assert await migrate(through(front, db_sslmode="verify-full", db_sslrootcert=str(ca.cert_file))) == []
    assert front.tls_sessions == 1


async def test_a_database_that_asks_for_a_client_certificate_gets_the_configured_one(
    ca: ThrowawayCA, stranger: ThrowawayCA
) -> None:
    """A managed PostgreSQL (or its pooler) may authenticate the service by certificate as well
    (`hostssl ... clientcert=verify-ca`): without one, or with one another CA issued, no connection."""
    real = db_settings("booking")
    cert, key = ca.client_certificate("otv_booking")
    foreign_cert, foreign_key = stranger.client_certificate("otv_booking")
    server = ca.server_context("127.0.0.1", client_ca=ca)
    async with TlsFront(server, real.db_host, real.db_port, postgres=True) as front:
        checked = {"db_sslmode": "verify-full", "db_sslrootcert": str(ca.cert_file)}
        with pytest.raises((ConnectionError, ssl.SSLError, asyncpg.ConnectionDoesNotExistError)):
            await one_query(through(front, **checked))
        with pytest.raises((ConnectionError, ssl.SSLError, asyncpg.ConnectionDoesNotExistError)):
            await one_query(
                through(front, db_sslcert=str(foreign_cert), db_sslkey=str(foreign_key), **checked)
            )
        assert front.tls_sessions == 0
        settings = through(front, db_sslcert=str(cert), db_sslkey=str(key), **checked)
        assert await one_query(settings) == "otv_booking"
        assert await migrate(settings) == []
        # require (the server's certificate unchecked) still presents the service's own.
        assert await one_query(through(front, db_sslmode="require", db_sslcert=str(cert), db_sslkey=str(key)))
        assert front.tls_sessions == 3


def test_a_client_certificate_is_refused_at_the_start_when_it_cannot_be_used(
    ca: ThrowawayCA, tmp_path: Path
) -> None:
    cert, key = ca.client_certificate("otv_booking")
    other_cert, _ = ca.client_certificate("otv_catalog")
    checked = {"db_sslmode": "verify-full", "db_sslrootcert": str(ca.cert_file)}
    with pytest.raises(ValueError, match="OTV_DB_SSLCERT and OTV_DB_SSLKEY go together"):
        db_settings("booking", db_sslcert=str(cert), **checked)
    with pytest.raises(ValueError, match="OTV_DB_SSLCERT and OTV_DB_SSLKEY go together"):
        db_settings("booking", db_sslkey=str(key), **checked)
    with pytest.raises(ValueError, match=r"OTV_DB_SSLCERT .*does not match OTV_DB_SSLKEY"):
        db_settings("booking", db_sslcert=str(other_cert), db_sslkey=str(key), **checked)
    with pytest.raises(ValueError, match=r"OTV_DB_SSLCERT .*missing\.pem"):
        db_settings("booking", db_sslcert=str(tmp_path / "missing.pem"), db_sslkey=str(key), **checked)
    for mode in ("disable", "prefer"):
        with pytest.raises(ValueError, match=f"OTV_DB_SSLCERT is set, but OTV_DB_SSLMODE={mode}"):
            db_settings("booking", db_sslmode=mode, db_sslcert=str(cert), db_sslkey=str(key))


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_checking_mode_without_a_ca_is_refused_with_a_message_naming_the_setting(mode: str) -> None:
    with pytest.raises(ValueError, match=f"OTV_DB_SSLMODE={mode} .* set OTV_DB_SSLROOTCERT"):
        db_settings("booking", db_sslmode=mode)


def test_a_missing_or_broken_ca_file_is_refused_at_the_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"OTV_DB_SSLROOTCERT .*missing\.crt is no readable PEM file"):
        db_settings("booking", db_sslmode="verify-full", db_sslrootcert=str(tmp_path / "missing.crt"))
    broken = tmp_path / "broken.crt"
    broken.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="no readable PEM file"):
        db_settings("booking", db_sslmode="verify-ca", db_sslrootcert=str(broken))


@pytest.mark.parametrize("mode", ["disable", "prefer"])
def test_a_ca_with_a_mode_that_checks_nothing_is_refused_rather_than_ignored(
    mode: str, ca: ThrowawayCA
) -> None:
    with pytest.raises(ValueError, match=f"OTV_DB_SSLROOTCERT is set, but OTV_DB_SSLMODE={mode} checks no"):
        db_settings("booking", db_sslmode=mode, db_sslrootcert=str(ca.cert_file))
    assert db_settings("booking", db_sslmode="require", db_sslrootcert=str(ca.cert_file)).database_ssl()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="db_sslmode"):
        db_settings("booking", db_sslmode="verify_full")


def test_system_takes_the_operating_systems_cas() -> None:
    context = db_settings("booking", db_sslmode="verify-full", db_sslrootcert="system").database_ssl()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == ssl.create_default_context().get_ca_certs()


def test_libpqs_variables_which_asyncpg_used_to_read_stop_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/README.md once said to set PGSSLMODE: now ignored, it would drop the check without a word."""
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    with pytest.raises(ValueError, match="PGSSLMODE are not read by OTV: set OTV_DB_SSLMODE"):
        db_settings("booking")
    monkeypatch.delenv("PGSSLMODE")
    monkeypatch.setenv("PGSSLCERT", "/home/otv/.postgresql/postgresql.crt")
    with pytest.raises(ValueError, match="PGSSLCERT are not read by OTV"):
        db_settings("booking")


def test_a_service_started_with_verify_full_and_no_ca_exits_naming_the_setting() -> None:
    environment = {**os.environ, "OTV_DB_SSLMODE": "verify-full", "OTV_LOG_JSON": "false"}
    environment.pop("OTV_DB_SSLROOTCERT", None)
    done = subprocess.run(
        [sys.executable, "-m", "shared.migrate", "booking"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "OTV_DB_SSLMODE=verify-full" in done.stderr and "OTV_DB_SSLROOTCERT" in done.stderr
