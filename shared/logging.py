"""Structured JSON logs through stdlib logging, with the correlation id from contextvars (R51).

Never log personal data: names, e-mail addresses, phone and customer numbers, a person's concern, staff
usernames; nor secrets (tokens, session ids, keys, passwords). A request is named by its route's pattern
(`shared.web.route_of`), never by its path or query.
"""

from __future__ import annotations

import logging
import sys
import traceback
import uuid
from contextvars import ContextVar

import structlog

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id of the work in hand; a new one when there is none."""
    cid = correlation_id_var.get()
    if cid is None:
        cid = new_correlation_id()
        correlation_id_var.set(cid)
    return cid


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def _add_correlation_id(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    cid = correlation_id_var.get()
    if cid is not None:
        event_dict.setdefault("correlation_id", cid)
    return event_dict


class _NoRequestData(logging.Filter):
    """aiohttp's own lines about a request that failed outside our handlers ("Error handling request from
    <client address>" with the parser's exception) quote the raw request line or header: a manage link's
    token, a finder's street, an e-mail address in a query, a username in a path. Such a line keeps the
    fact, the error type and where, as `unhandled_error` does (shared/web.py), and neither the client's
    address nor the exception's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("aiohttp.") and record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(exc.__traceback__)[-5:]
            record.msg = "request_failed_in_server"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.error_type = type(exc).__name__
            record.where = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in frames]
        return True


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Our own lines are rendered by structlog and written at once, without stdlib logging on the way:
    # about a tenth of the cost per line, which counts on the request path (issue 10, bench/README.md).
    structlog.configure(
        processors=[*shared_processors, structlog.processors.format_exc_info, renderer],
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        cache_logger_on_first_use=True,
    )
    # The libraries' stdlib logging (aiohttp, aio-pika, asyncpg) in the same shape.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared_processors,
            structlog.stdlib.ExtraAdder(allow=["error_type", "where"]),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_NoRequestData())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The access log would print URLs, and manage links carry tokens: keep it quiet.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)
