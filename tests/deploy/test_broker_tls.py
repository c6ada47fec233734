"""TLS towards RabbitMQ: an `amqps://` OTV_BROKER_URL with the CA file in its query (`?cafile=...`, read
by aiormq) checks the broker's certificate, in the services' robust connection and in the topology step
of the migrations Job alike. The real broker here speaks no TLS, so a front (tests/tls.py) speaks it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

from shared.broker import broker_ready, connection_in_background
from shared.config import CommonSettings
from tests.tls import ThrowawayCA, TlsFront


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA(tmp_path)


@pytest.fixture
async def front(ca: ThrowawayCA) -> AsyncIterator[TlsFront]:
    real = URL(CommonSettings().broker_url)
    assert real.host is not None and real.port is not None
    async with TlsFront(ca.server_context("127.0.0.1"), real.host, real.port) as running:
        yield running


def amqps_url(front: TlsFront, cafile: Path) -> str:
    real = URL(CommonSettings().broker_url)
    return str(
        real.with_scheme("amqps").with_host("127.0.0.1").with_port(front.port).with_query(cafile=str(cafile))
    )


async def test_the_services_connection_reaches_the_broker_over_tls_with_the_ca_of_the_url(
    front: TlsFront, ca: ThrowawayCA
) -> None:
    settings = CommonSettings(broker_url=amqps_url(front, ca.cert_file))
    connection, task = connection_in_background(settings)
    try:
        await asyncio.wait_for(task, timeout=10)
        assert broker_ready(connection)
        channel = await connection.channel()
        await channel.close()
        assert front.tls_sessions >= 1
    finally:
        await connection.close()


async def test_a_broker_certificate_of_another_ca_is_refused(front: TlsFront, tmp_path: Path) -> None:
    (tmp_path / "stranger").mkdir()
    stranger = ThrowawayCA(tmp_path / "stranger", name="Somebody else")
    url = amqps_url(front, stranger.cert_file)
    # The topology step (python -m shared.topology) connects like this and fails the Job.
    refused = aio_pika.RobustConnection(URL(url))  # what aio_pika.connect_robust makes, closed below
    try:
        with pytest.raises(AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await refused.connect()
    finally:
        await refused.close()
    # The services keep trying (and stay not connected) instead of talking to an unchecked broker.
    connection, task = connection_in_background(CommonSettings(broker_url=url))
    try:
        await asyncio.sleep(1.5)
        assert not task.done() and not broker_ready(connection)
    finally:
        task.cancel()
        await connection.close()
    assert front.tls_sessions == 0
