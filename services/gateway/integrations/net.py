"""The edge to the outside network: name resolution (injectable, so tests need no real DNS) and the
HTTP client of the webhook sender, whose connections go only to the addresses that were checked.

Against DNS rebinding the check and the connection use the same resolution: the client's resolver is
`CheckedResolver`, which resolves, refuses private addresses and hands aiohttp exactly the addresses it
checked (no DNS cache, so every connection is checked again). IP literals never reach a resolver in
aiohttp; they are checked before the request.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from services.gateway.integrations.domain import (
    PARALLEL_PER_TARGET,
    address_refusal,
    check_url_shape,
    literal_address,
    refused_url,
)


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to (empty: it does not resolve)."""
        ...


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return []
        return sorted({str(info[4][0]) for info in infos})


class AddressRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def checked_addresses(resolver: Resolver, host: str, port: int, *, allow_loopback: bool) -> list[str]:
    """The host's addresses if every one of them may be called; `AddressRefused` otherwise (one
    private address among public ones is enough to refuse: the client might pick it)."""
    literal = literal_address(host)
    addresses = [str(literal)] if literal is not None else await resolver.resolve(host, port)
    if not addresses:
        raise AddressRefused("does not resolve")
    for address in addresses:
        reason = address_refusal(address, allow_loopback=allow_loopback)
        if reason is not None:
            raise AddressRefused(reason)
    return addresses


async def check_target(resolver: Resolver, url: str, *, allow_loopback: bool) -> None:
    """For registration: a 422 naming `url` when the URL or any of its addresses is not allowed."""
    _, host, port = check_url_shape(url, allow_loopback=allow_loopback)
    try:
        await checked_addresses(resolver, host, port, allow_loopback=allow_loopback)
    except AddressRefused as refused:
        raise refused_url(refused.reason) from None


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver for webhook connections: only checked addresses are returned."""

    def __init__(self, resolver: Resolver, *, allow_loopback: bool) -> None:
        self._resolver = resolver
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await checked_addresses(
                self._resolver, host, port, allow_loopback=self._allow_loopback
            )
        except AddressRefused as refused:
            raise OSError(f"address refused: {refused.reason}") from None
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def webhook_session(resolver: Resolver, *, allow_loopback: bool, timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(resolver, allow_loopback=allow_loopback),
        use_dns_cache=False,
        limit=50,
        limit_per_host=PARALLEL_PER_TARGET,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0)),
        # A receiver's cookies or proxies from the environment have no business here.
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )
