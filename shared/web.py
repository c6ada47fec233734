"""Web basics every service shares: app keys, middlewares (correlation id, error body, metrics), the
health/readiness/metrics routes, request parsing with pydantic, and running with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pydantic
import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import errors
from shared.broker import broker_ready, connection_in_background
from shared.clock import Clock, SystemClock
from shared.config import CommonSettings
from shared.db import DatabaseConnectTimeout, create_pool
from shared.identity import HEADER as IDENTITY_HEADER
from shared.identity import StaffIdentity, request_target, verify
from shared.logging import correlation_id_var, new_correlation_id
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.migrate import missing_migrations

log = structlog.get_logger(__name__)

SETTINGS = web.AppKey("settings", CommonSettings)
CLOCK = web.AppKey("clock", Clock)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", AbstractRobustConnection)
READY_CHECKS = web.AppKey("ready_checks", list)
# Checks whose failure leaves the service ready (it still serves its requests), named in /readyz's body.
DEGRADED_CHECKS = web.AppKey("degraded_checks", list)

ReadyCheck = Callable[[web.Application], Awaitable[str | None]]
M = TypeVar("M", bound=pydantic.BaseModel)

CORRELATION_HEADER = "X-Correlation-ID"
_CID_SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> web.Response:
    return web.json_response(errors.error_body(code, message, details), status=status)


@web.middleware
async def correlation_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    given = request.headers.get(CORRELATION_HEADER, "")
    cid = given if _CID_SHAPE.fullmatch(given) else new_correlation_id()
    token = correlation_id_var.set(cid)
    try:
        response = await handler(request)
        response.headers[CORRELATION_HEADER] = cid
        return response
    finally:
        correlation_id_var.reset(token)


# Database errors that only a caller's input can cause (asyncpg passes the value through unchanged).
UNSTORABLE_INPUT: tuple[type[Exception], ...] = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
    asyncpg.StringDataRightTruncationError,
    asyncpg.NumericValueOutOfRangeError,
)

# The database cannot be reached or takes no more connections (a restart, a failover, a full pooler):
# the service is unavailable for a moment, not broken; the client may retry.
DATABASE_UNAVAILABLE = (
    ConnectionRefusedError,  # not every ConnectionError: a client that hung up is no database outage
    DatabaseConnectTimeout,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
)
UNAVAILABLE_MESSAGE = "The service is unavailable for a moment. Please try again shortly."

UNSTORABLE_MESSAGE = (
    "The input holds a value that cannot be stored (a NUL character, or a number or text too large)."
)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.OTVError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, errors.UnavailableError) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "error" if exc.status < 500 else "internal_error")
        response = error_response(exc.status, code, exc.reason)
        for header in ("Allow", "Retry-After"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except asyncio.CancelledError:
        raise
    except UNSTORABLE_INPUT as exc:
        # The database refused a value of the input (the last line of defence behind the models): the
        # caller's mistake, answered as such; nothing was stored, the transaction rolled back.
        log.warning("input_not_storable", error_type=type(exc).__name__, route=route_of(request))
        return error_response(422, "validation_error", UNSTORABLE_MESSAGE)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("database_unavailable", error_type=type(exc).__name__, route=route_of(request))
        response = error_response(503, "unavailable", UNAVAILABLE_MESSAGE)
        response.headers["Retry-After"] = "5"
        return response
    except Exception as exc:  # noqa: BLE001 -- the client gets the error body, never a stack trace
        log_unhandled(request, exc)
        return error_response(500, "internal_error", "Internal error. Please try again later.")


def route_of(request: web.Request) -> str:
    """What a log line or a metric label says about a request's address: the matched route's pattern
    (`/manage/{appointment_id}`, `/api/v1/admin/accounts/{account_id}`), never the path or the query. A
    path can hold a staff username (the deprecated `/api/v1/admin/accounts/<username>` and old bookmarks
    of `/staff/admin/accounts/<username>`) and a query a manage token, an e-mail address or a street."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def log_unhandled(request: web.Request, exc: BaseException) -> None:
    """An unexpected failure, logged as `unhandled_error`: only the type and where, since an exception's
    message can carry personal data (a driver's DETAIL)."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    log.error(
        "unhandled_error",
        error_type=type(exc).__name__,
        where=[f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in frames],
        route=route_of(request),
    )


def metrics_middleware(service: str) -> Any:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            # A redirect raised by a handler (the pages' steps raise 303 See Other) passes the error
            # middleware as it is: its status is the answer, not the 500 of an unhandled error.
            status = exc.status
            raise
        finally:
            route = route_of(request)
            HTTP_REQUESTS.labels(service, request.method, route, str(status)).inc()
            HTTP_LATENCY.labels(service, route).observe(time.perf_counter() - started)

    return middleware


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    problems: list[str] = []
    for check in request.app[READY_CHECKS]:
        problem = await check(request.app)
        if problem:
            problems.append(problem)
    if problems:
        return web.json_response(
            errors.error_body("not_ready", "; ".join(problems), [{"reason": p} for p in problems]),
            status=503,
        )
    degraded = [p for check in request.app[DEGRADED_CHECKS] if (p := await check(request.app))]
    return web.json_response({"status": "ready", **({"degraded": degraded} if degraded else {})})


async def metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def database_ready(app: web.Application) -> str | None:
    pool = app.get(POOL)
    if pool is None:
        return "database: not connected"
    try:
        async with asyncio.timeout(2):
            await pool.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"database: {type(exc).__name__}"
    return None


MIGRATIONS_FIX = "run the migrations Job of this release (deploy/README.md, '4. Each release')"


class SetUpReadiness:
    """A ready check (READY_CHECKS) for something a release step sets up in the database: None once it is
    in place (remembered: a release step is never taken back); otherwise what is missing and what to do,
    logged once as an error. Subclasses say what they look for (`missing`) and how they say it."""

    missing_event = "set_up_missing"
    complete_event = "set_up_complete"

    def __init__(self) -> None:
        self.ready = False
        self.reported = False

    async def missing(self, conn: asyncpg.Connection) -> list[str]:
        """What is not set up yet; a database error other than the connection's counts as no answer."""
        raise NotImplementedError

    def message(self, missing: list[str]) -> str:
        raise NotImplementedError

    def log_fields(self) -> dict[str, Any]:
        return {}

    async def __call__(self, app: web.Application) -> str | None:
        if self.ready:
            return None
        pool = app.get(POOL)
        if pool is None:
            return None  # not connected: database_ready says so
        try:
            async with asyncio.timeout(2), pool.acquire() as conn:
                missing = await self.missing(conn)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None  # the database does not answer: database_ready says so
        if not missing:
            self.ready = True
            if self.reported:
                log.info(self.complete_event, **self.log_fields())
            return None
        if not self.reported:
            self.reported = True
            log.error(self.missing_event, **self.log_fields(), missing=missing)
        return self.message(missing)


class SchemaReadiness(SetUpReadiness):
    """The service's schema has every migration this release ships. A release whose migrations Job ran the
    previous image, or did not run, would otherwise go ready and answer 500 to every request that touches
    what the missing migrations add; unready, its rolling update waits with the previous release serving."""

    missing_event = "migrations_missing"
    complete_event = "migrations_complete"

    def __init__(self, schema: str) -> None:
        super().__init__()
        self.schema = schema

    async def missing(self, conn: asyncpg.Connection) -> list[str]:
        return await missing_migrations(conn, self.schema)

    def log_fields(self) -> dict[str, Any]:
        return {"schema": self.schema, "fix": MIGRATIONS_FIX}

    def message(self, missing: list[str]) -> str:
        return f"migrations missing in schema {self.schema}: {', '.join(missing)}; {MIGRATIONS_FIX}"


async def broker_readiness(app: web.Application) -> str | None:
    return None if broker_ready(app.get(BROKER)) else "broker: not connected"


# What every service names itself in `Server`. aiohttp would send "Python/3.x aiohttp/3.y.z", which tells
# a scanner which known weaknesses to try; it adds its own to any response without one, so the header is
# set to this rather than removed.
SERVER_NAME = "OTV"


async def neutral_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def create_base_app(
    settings: CommonSettings,
    *,
    clock: Clock | None = None,
    ready_checks: list[ReadyCheck] | None = None,
    handler_args: dict[str, Any] | None = None,
) -> web.Application:
    # Request lines up to 64 KiB: an over-long query reaches the handler and gets a 422 naming the
    # field instead of the HTTP parser's plain-text 400 (the gateway forwards it unchanged).
    handler_args = {"max_line_size": 65536, "max_field_size": 16384, **(handler_args or {})}
    app = web.Application(
        middlewares=[
            correlation_middleware,
            metrics_middleware(settings.service_name),
            error_middleware,
        ],
        client_max_size=256 * 1024,
        handler_args=handler_args,
    )
    app.on_response_prepare.append(neutral_server_header)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[READY_CHECKS] = list(ready_checks or [])
    app[DEGRADED_CHECKS] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def database_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: the pool of the service's role; a service starts even while the database is down."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        app[POOL] = pool
        schema_ready = SchemaReadiness(settings.db_schema)
        app[READY_CHECKS].extend([database_ready, schema_ready])
        await schema_ready(app)  # a missed migrations Job is logged at the start, not only at the first probe
        yield
        await asyncio.wait_for(pool.close(), timeout=settings.shutdown_timeout)

    return ctx


def broker_context(settings: CommonSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: the broker connection. A service starts while RabbitMQ is down and stays ready:
    what it publishes waits in its outbox, its consumers start once the broker answers (background.py),
    and `/readyz` names the broker as degraded, not as a reason to take the pod out of the load balancer
    (a booking needs no broker). It waits `broker_connect_wait_seconds` at start for the usual case."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connection, connecting = connection_in_background(settings)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(connecting), timeout=settings.broker_connect_wait_seconds)
        if not connecting.done():
            log.warning("broker_unreachable_at_start", retry="in the background")
        app[BROKER] = connection
        app[DEGRADED_CHECKS].append(broker_readiness)
        yield
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        await connection.close()

    return ctx


async def parse_json(request: web.Request, model: type[M], *, allow_nul: bool = False) -> M:
    """The body as `model`, or a 422 naming the fields. A NUL character in a text is refused too (no text
    column can store one), unless the handler answers it itself (`allow_nul`: a sign-in, which fails
    for a name no account can have like for any other wrong name)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise
    if not raw:
        raise errors.ValidationError(
            "The request needs a JSON body.", details=[{"field": "body", "message": "missing"}]
        )
    try:
        parsed = model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
    if not allow_nul and b"\\u0000" in raw:  # JSON spells a NUL so
        refuse_nul(parsed.model_dump(mode="json"))
    return parsed


async def parse_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The posted form (parsed once: a later `request.post()` gets the same), or a 422 on the field
    `body` when it cannot be read: bytes that are not UTF-8, a charset Python does not know, a multipart
    body without its end (aiohttp raises ValueError or LookupError for them); 413 beyond the size limit.
    Both as the service's error, so that a page can answer them with its own error page."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise errors.PayloadTooLargeError("The form is too large.") from None
    except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError
        raise errors.ValidationError(
            "The form could not be read.", details=[{"field": "body", "message": "not a readable form"}]
        ) from None


def blank_is_none(value: object) -> object:
    """An optional query field sent empty means "not given": an HTML form sends its "alle" option as
    `location=`, and a client that fills the documented template `?location=` leaves it so. Use it as
    `Annotated[X | None, BeforeValidator(blank_is_none)]`."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


# How many repeated parameters a refusal names, and how much of each name: the names are the caller's.
_REPEATED_NAMED = 10
_NAME_SHOWN = 64


def refuse_repeated_query(request: web.Request) -> None:
    """A 422 `validation_error` naming each query parameter given more than once (`?to=2026-12-01&to=x`),
    also when one of the values is empty. No parameter of ours takes a list: a client that repeats one has
    made a mistake (or probes), and taking its first or last value silently would answer a question it did
    not ask. The one check of every service (`single_valued_query`, `parse_query`); a page shows it as
    its error page."""
    query = request.query
    if len(set(query)) == len(query):  # the usual case: no name twice
        return
    repeated = [name for name in dict.fromkeys(query) if len(query.getall(name)) > 1]
    details = [
        {"field": name[:_NAME_SHOWN], "message": "may be given only once", "type": "repeated_parameter"}
        for name in repeated[:_REPEATED_NAMED]
    ]
    fields = ", ".join(d["field"] for d in details[:5])
    raise errors.RepeatedParameterError(f"Invalid input: {fields} given more than once.", details=details)


@web.middleware
async def single_valued_query(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """`refuse_repeated_query` for every route of a service, also those that read the query by hand.
    Appended last by each service's `create_app` (innermost): authentication and the pages' own error
    answers (the staff and customer pages' error page instead of JSON) are middlewares around it."""
    if request.match_info.http_exception is None:  # no route: its 404 or 405 says more
        refuse_repeated_query(request)
    return await handler(request)


def parse_query(request: web.Request, model: type[M]) -> M:
    refuse_repeated_query(request)
    query = dict(request.query)
    refuse_nul(query)
    try:
        return model.model_validate(query)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


def refuse_nul(value: Any, path: str = "") -> None:
    """A 422 naming the first field whose text holds a NUL character: no text column can store one, so
    it is refused at the edge like any other invalid value (not as the database's refusal)."""
    if isinstance(value, str):
        if "\x00" in value:
            field = path or "body"
            detail = {"field": field, "message": "must not contain a NUL character", "type": "string_nul"}
            raise errors.ValidationError(f"Invalid input: {field}.", details=[detail])
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, path or "body")
            refuse_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul(item, f"{path}.{index}" if path else str(index))


def validation_error(exc: pydantic.ValidationError) -> errors.ValidationError:
    details = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(d["field"] for d in details[:5])
    return errors.ValidationError(f"Invalid input: {fields}.", details=details)


# The ids of locations, groups, concerns and the like in a path: readable slugs (`mitte`, `mitte-ez`).
_PATH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def path_id(request: web.Request, name: str, missing: str = "Not found.") -> str:
    """The slug id `name` of the path, or 404 `missing` for anything that cannot be one (a NUL, a
    newline, an over-long string), before it reaches a query."""
    value = request.match_info[name]
    if not _PATH_ID.fullmatch(value):
        raise errors.NotFoundError(missing)
    return value


def json_model(model: pydantic.BaseModel | list[Any], status: int = 200) -> web.Response:
    if isinstance(model, list):
        body = (
            "["
            + ",".join(
                m.model_dump_json()
                if isinstance(m, pydantic.BaseModel)
                else pydantic.TypeAdapter(Any).dump_json(m).decode()
                for m in model
            )
            + "]"
        )
    else:
        body = model.model_dump_json()
    return web.Response(text=body, status=status, content_type="application/json")


def new_event_loop(settings: CommonSettings) -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed and wanted (OTV_UVLOOP), else asyncio's."""
    if settings.uvloop:
        try:
            import uvloop  # optional: the services run on asyncio's loop without it
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(app: web.Application, settings: CommonSettings) -> None:
    """Serve until SIGTERM/SIGINT; then stop taking requests, finish those in flight, run the cleanups."""
    web.run_app(
        app,
        loop=new_event_loop(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=lambda *_: None,
        handle_signals=True,
    )


def staff_identity(request: web.Request) -> StaffIdentity:
    """The staff identity the gateway verified and signed (I5); 401 when missing, forged or expired."""
    settings = request.app[SETTINGS]
    return verify(
        request.headers.get(IDENTITY_HEADER),
        settings.internal_secret,
        request.app[CLOCK].now(),
        target=request_target(settings.service_name, request.method, request.path),
        accepted=settings.internal_secret_accepted,
    )
