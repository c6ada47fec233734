"""Where a browser's write comes from (OWASP's origin check), one answer for the customer forms and the
staff part alike.

- Ours are the origin of the configured public base URL (behind the TLS-terminating ingress the gateway
  itself is reached over http, so the request's own scheme is not the one the browser names) and the
  request's own scheme and host (direct access, development, tests).
- A browser names the page's origin in `Origin`. Under `Referrer-Policy: no-referrer` (the customer
  pages, R41) it sends "null" instead, even for a same-origin form. Then `Sec-Fetch-Site` decides: the
  browser sets it itself and no page can forge it.
- A request that says neither (an old browser, a script) is of unknown provenance; the caller decides
  whether something else (a token) is enough.
"""

from __future__ import annotations

import unicodedata
from enum import Enum
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL


class Provenance(Enum):
    SAME_ORIGIN = "same-origin"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-case (an Origin header has exactly this form)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


# `same-site` is another host of the registrable domain (the framing homepage itself, say): not ours.
_FOREIGN_SITES = frozenset({"cross-site", "same-site"})


def provenance(request: web.Request, configured: frozenset[str]) -> Provenance:
    """Whether the request comes from a page of ours; `configured` holds the public base URL's origin."""
    origin = request.headers.get("Origin", "").strip()
    if origin and origin != "null":
        own = configured | {f"{request.scheme}://{request.host}".lower()}
        return Provenance.SAME_ORIGIN if origin.lower() in own else Provenance.FOREIGN
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site == "same-origin":
        return Provenance.SAME_ORIGIN
    if site in _FOREIGN_SITES:
        return Provenance.FOREIGN
    return Provenance.UNKNOWN


def has_control_or_space(text: str) -> bool:
    """A control character (C0, DEL, C1) or whitespace of any kind: never part of a target we redirect to."""
    return any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in text)


def is_local_target(target: str, prefix: str = "/") -> bool:
    """Whether a redirect target (a form's `next`, a Referer's page) stays on this site, under `prefix`.

    Judged on the target as it will go out, not only as it came in: aiohttp passes a Location through
    yarl, which (like a browser's URL parser) drops TAB, CR and LF, so "/<TAB>/evil.example" leaves as
    "//evil.example", another site. Hence no control character and no whitespace at all, no backslash
    (a browser reads it as "/"), and after normalising still a path under `prefix`, not "//" (no host)."""
    if "\\" in target or has_control_or_space(target):
        return False
    try:
        normalised = URL(target)
    except ValueError:
        return False
    shown = str(normalised)
    return (
        not normalised.absolute
        and not normalised.scheme
        and target.startswith(prefix)
        and not target.startswith("//")
        and shown.startswith(prefix)
        and not shown.startswith("//")
    )
