"""The customer pages' answer where no page answers (R42, R43): an address the pages do not have (404), a
method a page does not take (405), and an unexpected failure behind a page (500), each as a page in the
customer's language with the layout, the security headers and a link to the start page, instead of the
JSON error body of the API.

Which answer a request gets is decided by its path first, then by its Accept header:
- JSON (the architecture's error body, from `shared.web.error_middleware`) for what programs call: `/api`
  and below (the public, staff and admin APIs, the OpenAPI document, the challenge), the probes and
  metrics (`/healthz`, `/readyz`, `/metrics`). `/staff` and below is left to the staff part, which answers
  its pages in German itself (`staff/authz.py`).
- The static files (`/static/`): the page, when a browser opens the address itself (it names text/html:
  an old link, a typo); a file a page loads (a stylesheet, a script, an image: text/css, */*, image/*) is
  never shown, so a missing one gets a short plain text with the status and `no-store` (a file a release
  adds is then fetched once it is there), not a page rendered for nobody, nor JSON a browser cannot use.
- Every other path is the customer pages' own: a page, unless the client asks for JSON and not for HTML
  (`Accept: application/json`, a script's fetch); a browser always names text/html, and a client that
  names nothing (`*/*`, or no Accept) gets the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from services.gateway.origins import is_local_target
from services.gateway.web.i18n import _
from services.gateway.web.pages import error_page, settings_of, unavailable
from shared.errors import RepeatedParameterError
from shared.phone import with_phone_links
from shared.web import DATABASE_UNAVAILABLE, log_unhandled, route_of

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MACHINE_PREFIXES = ("/api", "/staff")
MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
STATIC = "/static"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def answers_with_a_page(request: web.Request) -> bool:
    """Whether an error of this request is answered with a customer page (the rule above)."""
    path = request.path
    if path in MACHINE_PATHS or any(_under(path, p) for p in MACHINE_PREFIXES):
        return False
    accept = request.headers.get("Accept", "").lower()
    if _under(path, STATIC):
        return "text/html" in accept
    return "text/html" in accept or "json" not in accept


async def _as_short_text(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A static file's error for what a page loads: its status and reason as plain text."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        response = web.Response(status=exc.status, text=f"{exc.reason}\n")
        response.headers["Cache-Control"] = "no-store"
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


@web.middleware
async def error_page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside the language middleware (the page is in the request's language) and inside the shared error
    middleware, which still answers in JSON should the error page itself fail."""
    if not answers_with_a_page(request):
        if _under(request.path, STATIC):
            return await _as_short_text(request, handler)
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return page_not_found(request)
    except web.HTTPMethodNotAllowed as exc:
        response = wrong_method(request)
        response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    except web.HTTPException:
        raise  # a redirect, or another of aiohttp's answers, as it is
    except RepeatedParameterError:
        # Not the names: they are the caller's text.
        log.info("query_parameter_repeated", route=route_of(request))
        return link_not_valid(request)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("database_unavailable", error_type=type(exc).__name__, route=route_of(request))
        response = unavailable(request)
        response.headers["Retry-After"] = "5"
        return response
    except Exception as exc:  # noqa: BLE001 -- the customer gets a page, never a stack trace
        log_unhandled(request, exc)
        return unavailable(request, 500)


def _address(request: web.Request) -> str | None:
    """Where the page's language links lead: the address asked for (the same page in another language),
    unless a browser would read it as another site's (`//evil.example`, `/\\evil.example`); then the start."""
    return None if is_local_target(str(request.rel_url)) else "/"


def page_not_found(request: web.Request) -> web.Response:
    return error_page(
        request,
        404,
        _("Page not found"),
        with_phone_links(
            _(
                "There is no page at this address. Perhaps it was mistyped, or the link is out of date. "
                "Please start again on the start page. If you need help, call us: %(hotline)s."
            ),
            hotline=settings_of(request).hotline,
        ),
        address=_address(request),
    )


def link_not_valid(request: web.Request) -> web.Response:
    """An address that names a parameter twice (`?lang=en&lang=de`): a link put together wrongly, or one
    that was tampered with; which value was meant is not the page's to guess (shared.web)."""
    return error_page(
        request,
        400,
        _("This link is not valid"),
        with_phone_links(
            _("Please start again on the start page. If you need help, call us: %(hotline)s."),
            hotline=settings_of(request).hotline,
        ),
    )


def wrong_method(request: web.Request) -> web.Response:
    return error_page(
        request,
        405,
        _("This page cannot be opened this way"),
        with_phone_links(
            _("Please start again on the start page. If you need help, call us: %(hotline)s."),
            hotline=settings_of(request).hotline,
        ),
        address=_address(request),
    )
