"""Security of the customer pages: response headers, CSRF tokens, and the dialogue's sealed state.

- Headers on every response of the gateway (pages, static files, API): a Content-Security-Policy without
  inline scripts and with `frame-ancestors` from `OTV_FRAME_ANCESTORS` (R36), `nosniff`,
  `Referrer-Policy: no-referrer` (the manage link's token never reaches a third party, R41). A part of
  the gateway that sets its own policy (staff pages) keeps it.
- CSRF: signed double submit. The `otv_csrf` cookie (`__Host-otv_csrf` behind TLS, so that no other host
  of the domain can plant a value whose token it knows: `services.gateway.cookies`) holds a random
  value; every form carries HMAC(secret, cookie). Where a browser withholds the cookie (cookies off, or
  third-party cookies blocked in the framed dialogue), a request the browser marks as coming from our own
  pages is accepted instead (`origins.provenance`: `Origin`, or `Sec-Fetch-Site` where `no-referrer`
  makes the Origin "null").
- The dialogue's state (location, concern, mode, the held slot, the booked appointment) travels in the
  URL as one Fernet token (encrypted and authenticated): no cookie is needed inside the iframe, replicas
  share nothing, and neither the concern nor a manage token is readable in a URL or a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from services.gateway.cookies import cookie_name
from services.gateway.origins import Provenance, origin_of, provenance

CSRF_COOKIE = "otv_csrf"  # the bare name; `Csrf.cookie` is the one in use
CSRF_FIELD = "csrf_token"
NEW_CSRF_COOKIE = web.RequestKey("otv_new_csrf_cookie", str)
STATE_TTL_SECONDS = 24 * 3600
# No state the pages seal comes near this (a few hundred characters): a longer `s` is not opened at all.
MAX_SEALED_LENGTH = 2000

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; worker-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors {ancestors}"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _derive(secret: str, label: bytes) -> bytes:
    return hmac.new(secret.encode(), label, hashlib.sha256).digest()


class Sealer:
    """Encrypts small JSON states for URLs; a tampered or stale token reads as None."""

    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"otv-web-state")))

    def seal(self, data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return self._fernet.encrypt(raw).decode()

    def open(self, token: str | None) -> dict[str, Any] | None:
        if not token or len(token) > MAX_SEALED_LENGTH:
            return None
        try:
            raw = self._fernet.decrypt(token.encode(), ttl=STATE_TTL_SECONDS)
            data = json.loads(raw)
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None


class Csrf:
    def __init__(self, secret: str, public_base_url: str) -> None:
        self._key = _derive(secret, b"otv-web-csrf")
        self._origins = frozenset({origin_of(public_base_url)})
        self.cookie = cookie_name(CSRF_COOKIE, public_base_url)

    def token_for(self, cookie_value: str) -> str:
        return hmac.new(self._key, cookie_value.encode(), hashlib.sha256).hexdigest()

    def ensure_cookie(self, request: web.Request) -> str:
        """The request's CSRF cookie value; a new one is remembered for the response."""
        value = _our_cookie(request, self.cookie)
        if not value:
            value = request.get(NEW_CSRF_COOKIE) or secrets.token_urlsafe(32)
            request[NEW_CSRF_COOKIE] = value
        return value

    def form_token(self, request: web.Request) -> str:
        return self.token_for(self.ensure_cookie(request))

    def valid(self, request: web.Request, submitted: str | None) -> bool:
        cookie = _our_cookie(request, self.cookie)
        if cookie and submitted:
            return hmac.compare_digest(self.token_for(cookie).encode(), submitted.encode())
        if cookie:
            return False
        # No cookie at all (cookies off, or blocked in a frame): the browser's word on where it comes from.
        return bool(submitted) and provenance(request, self._origins) is Provenance.SAME_ORIGIN

    def set_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        value = request.get(NEW_CSRF_COOKIE)
        if value and not response.prepared:
            # SameSite=None so that the framed dialogue gets it where the browser allows; Secure is needed
            # for that, and browsers accept it on http://127.0.0.1 and localhost.
            response.set_cookie(
                self.cookie, value, path="/", httponly=True, secure=True, samesite="None", max_age=12 * 3600
            )


_COOKIE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def _our_cookie(request: web.Request, name: str) -> str | None:
    """The CSRF cookie if it can be one the gateway set; else none (a value of another shape, also bytes
    that are not UTF-8, which arrive as lone surrogates and made the HMAC of the text raise). Only the
    name in use counts: behind TLS a cookie of the bare name is no cookie (the browser's word on where the
    form comes from decides, as without cookies)."""
    value = request.cookies.get(name)
    return value if value and _COOKIE_SHAPE.fullmatch(value) else None


def security_headers(frame_ancestors: str) -> Any:
    page_csp = PAGE_CSP.format(ancestors=frame_ancestors.strip() or "'self'")

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        content_type = headers.get("Content-Type", "")
        is_page = content_type.startswith("text/html")
        headers.setdefault("Content-Security-Policy", page_csp if is_page else API_CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if is_page:
            headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")

    return on_prepare
