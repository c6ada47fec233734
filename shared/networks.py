"""Networks named in settings: parsing, membership, and the rule for office networks.

`OTV_BOT_TRUSTED_NETWORKS` names the known offices with many customers behind one address (a jobcenter's
self-service PCs, the service centre): the gateway gives them a larger allowance (bot defence, R39), and
the booking-pattern report (R48) marks their many bookings as an office's rather than a script's.
"""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

OFFICE_NETWORKS = "OTV_BOT_TRUSTED_NETWORKS"


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated networks (or addresses) as networks; the caller has checked them."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def within(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether an address (IPv4 also in its IPv6-mapped form, as a dual-stack socket gives it) lies in one
    of the networks; anything that is no address lies in none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def overlaps_any(network: str, networks: tuple[Network, ...]) -> bool:
    """Whether a network (a report's /24 or /48 prefix) shares addresses with one of the networks."""
    try:
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
    return any(net.version == other.version and net.overlaps(other) for other in networks)


def check_office_networks(spec: str) -> str:
    """The setting as given, or a ValueError naming the part that is no office's network: at most an IPv4
    /16 or an IPv6 /48 each (never a provider's network or the whole internet), an IPv6 network at least a
    /64 (the limits count an IPv6 /64 as one client)."""
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"{OFFICE_NETWORKS}: {part!r} is no network (e.g. 192.0.2.0/28)") from None
        if network.prefixlen < (16 if network.version == 4 else 48):
            raise ValueError(
                f"{OFFICE_NETWORKS}: {part} is wider than an IPv4 /16 or an IPv6 /48: name the offices' own "
                "addresses"
            )
        if network.version == 6 and network.prefixlen > 64:
            raise ValueError(f"{OFFICE_NETWORKS}: {part} is narrower than an IPv6 /64")
    return spec
