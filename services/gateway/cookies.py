"""The names of the gateway's own cookies (the staff session, the customer forms' CSRF value).

Behind TLS, that is with an https public address (`OTV_PUBLIC_BASE_URL`: the ingress terminates TLS and
the gateway itself is reached over http, so the request's own scheme says nothing), each carries the
`__Host-` prefix. A browser takes such a cookie only with Secure, Path=/ and no Domain, and only from the
host itself: another host of the registrable domain (a sibling subdomain, the framing homepage) can then
neither plant one (a session of its own, a CSRF value whose token it knows) nor overwrite ours. A cookie
of the former bare name is not read at all: its browser is asked to sign in again (or gets a new CSRF
value), nothing fails. A plain-HTTP run (`make run`) keeps the bare names.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HOST_PREFIX = "__Host-"


def behind_tls(public_base_url: str) -> bool:
    return urlsplit(public_base_url.strip()).scheme.lower() == "https"


def cookie_name(name: str, public_base_url: str, *, secure: bool = True) -> str:
    """`name` with the `__Host-` prefix behind TLS; a cookie without Secure cannot carry it."""
    return HOST_PREFIX + name if secure and behind_tls(public_base_url) else name
