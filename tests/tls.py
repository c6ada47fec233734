"""TLS for tests without reconfiguring the shared servers: a throw-away CA with server certificates, and a
TLS front for a real server that speaks none: it speaks TLS to the client, like a managed PostgreSQL
(`hostssl` only) or a RabbitMQ's `amqps` port, and forwards the decrypted stream to the real server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import struct
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The first message of a client that wants TLS (PostgreSQL protocol: length 8, request code 80877103).
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class ThrowawayCA:
    """A certificate authority that lives in a directory for one test."""

    def __init__(self, directory: Path, name: str = "OTV test CA") -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(name)
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = directory / f"{name.replace(' ', '-')}.crt"
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, *names: str, client_ca: ThrowawayCA | None = None) -> ssl.SSLContext:
        """A server-side context whose certificate this CA issued for these DNS names or IP addresses; with
        `client_ca`, it asks every client for a certificate that CA issued (a managed PostgreSQL with
        `clientcert=verify-ca`) and turns away a client without one."""
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        cert_file, key_file = self._issue("server", names[0], ExtendedKeyUsageOID.SERVER_AUTH, alt_names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            context.load_verify_locations(cafile=client_ca.cert_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_certificate(self, user: str) -> tuple[Path, Path]:
        """A client certificate for a database user (its common name), as PEM files: certificate, key."""
        return self._issue("client", user, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def _issue(
        self, kind: str, common_name: str, usage: x509.ObjectIdentifier, alt_names: list[x509.GeneralName]
    ) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = self.directory / f"{kind}-{len(list(self.directory.glob(f'{kind}-*.pem')))}"
        cert_file, key_file = stem.with_suffix(".pem"), stem.with_suffix(".key")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_file, key_file


class TlsFront:
    """Listens on 127.0.0.1 and speaks TLS (this context) from the first byte (AMQPS), or, for PostgreSQL,
    after the client's SSLRequest (a client that starts without one is turned away); forwards the rest to
    the real server in plain."""

    def __init__(
        self, context: ssl.SSLContext, target_host: str, target_port: int, *, postgres: bool = False
    ) -> None:
        self.context = context
        self.postgres = postgres
        self.target = (target_host, target_port)
        self.port = 0
        self.tls_sessions = 0  # handshakes that completed
        self.plain_refused = 0  # clients that did not ask for TLS
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> TlsFront:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.postgres:
                if await reader.readexactly(8) != _SSL_REQUEST:
                    self.plain_refused += 1
                    writer.close()
                    return
                writer.write(b"S")
                await writer.drain()
            await writer.start_tls(self.context)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.close()  # the client refused our certificate, or left
            return
        self.tls_sessions += 1
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
