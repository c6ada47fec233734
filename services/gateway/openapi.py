"""The public API's OpenAPI 3.1 document at `GET /api/v1/openapi.json`.

Built by importing the services' own route declarations (`services/<service>/openapi.py`, each from
its own pydantic models) and merging them with the gateway's own routes, rather than fetching the
services' `/openapi.json` at run time: the document then never depends on an upstream being up or on a
cache, is the same on every replica, and is exactly the code that is deployed (all services ship in one
image). The gateway adds what it does itself: 428/429 of the bot defence, 502/504 of the proxy, and the
503 a service answers while its database is unreachable, on every route it forwards.
"""

from __future__ import annotations

from typing import Any

import pydantic
from aiohttp import web

from services.gateway.bot_defence import ALTCHA_HEADER, API_PROTECTED, CHALLENGE_PATH
from services.gateway.routes import PUBLIC_ROUTES
from services.gateway.staff.authz import CHALLENGE
from services.gateway.staff.rules import FORWARDED
from shared.openapi import ApiRoute, add_error_responses, build_document, merge_documents

TITLE = "OTV public API (Jobcenter Bremen online appointments)"
# Semantic versioning of the document within the path's major version `v1` (DESCRIPTION says the rule):
# 1.1.0 added the staff hold's Idempotency-Key and the declared Retry-After and WWW-Authenticate headers;
# 1.2.0 the request limit of each API key (429 `rate_limited` with Retry-After on every route a key calls);
# 1.3.0 the refusals of bad input that staff and admin routes already answered (found by schemathesis):
# 404 for a location id in the path that cannot be one, 422 for one in the query or body, 422 of the
# policy's `on`, of the dead letters' `include_replayed` and of a dead letter id that is not one; and the
# empty value of a query field that reads it as "not given" (`?from=&to=&location=`); the 413 of a body
# over the limit on every operation that takes a body;
# 1.4.0 the refusal of a query parameter given more than once (422 `validation_error` naming it), declared
# on every operation that has query parameters.
# 1.4.0 also an API key's own request limit (`requests_per_minute` when it is created, `PUT
# /api/v1/admin/api-keys/{key_id}/request-limit`, `requests_per_minute` and `allowance` in its answers).
# 1.5.0 the admin API's account routes take the account's id in the path (`/api/v1/admin/accounts/
# {account_id}...` and `.../staff-roles/{account_id}`, R34), and answer it as `id` (`account_id` in a
# location's staff roles); a username in its place still works, deprecated.
# 1.6.0 a group leader's narrower change of a group (its service points) may carry the `expected_version`
# it was made against.
# 1.7.0 a closure's `service_points_left` above the group's service points (for the whole location:
# above its largest group's) is refused with 422 `validation_error` naming the field; so is a mail text
# whose HTML carries a script, frame, form, event handler or `javascript:` link; and `POST
# /api/v1/admin/mail-templates/{kind}/{language}/preview` (the sample mail of texts not saved yet).
# 1.8.0 every answer to the admin API's deprecated username form of an account in the path carries
# `Deprecation` (RFC 9745) and, where the account is known, `Link` with rel="successor-version".
# 1.9.0 a closure whose last day lies before today (Berlin) is refused with 422 `validation_error` naming
# `last` (`details[].type` `in_the_past`).
# 1.10.0 the staff API's mass change refuses as the catalog refuses the closure it stands for: its preview
# a last day before today (422 `validation_error` naming `last`, else `date`; `in_the_past`), its preview
# and its application more `service_points_left` than the group (the whole location: its largest group)
# has (422 `validation_error` naming `service_points_left`; `too_many_service_points`), before anything
# moves.
# 1.11.0 a webhook subscription's `previous_secret_expires_at`: after `rotate-secret` the previous secret
# signs as well for a day (a second signature in `webhook-signature`), so a receiver switches when ready;
# events without personal data keep a callback ticket's `reason` (a code, not a free text); and the event
# feed's page says `missed_events` when events after the cursor were deleted before the reader got them;
# a receiver's 410 Gone pauses its subscription at once (was retried for a day like any other error).
# 1.12.0 the query parameters of the staff day list and call list (`date`, `to`: at most 6 days after
# `date`, `include_cancelled`) and of availability (`from`, `to`: defaults and the 56 days) say their
# ranges and defaults; a `to` out of range is 422 `validation_error` naming `to` (it named `body`). A
# staff cancellation's `reason` must not be blank (`pattern` `\S`; 422 `validation_error` naming it).
# The staff hold declares its 409 `hold_limit_reached` (a hold renewed beyond OTV_HOLD_MAX_MINUTES);
# `hold_id` of a booking or move says what a hold that ran out does; every cookie-authenticated staff and
# admin write declares the optional `X-CSRF-Token` header (a script's alternative to `Origin`); the
# staff search says that a reference is found in any case, with or without its hyphen; the booking's
# `evening_declaration` and `interpreter_language` say what they mean and when one is required, and an
# appointment's `manage_url` when it carries the customer's token.
# 1.13.0 `GET /api/v1/staff/me` answers every valid API key too (its kind `api_key`, channel
# `service_centre`, grants and operations), so a client checks its key before the first caller.
VERSION = "1.13.0"
DESCRIPTION = (
    "Customer booking API of the online appointment booking of Jobcenter Bremen. All times are ISO 8601 "
    'with offset; JSON field names are snake_case. Errors are `{"error": {"code", "message", '
    '"details"}}`. Availability and booking are rate-limited per client (429 `rate_limited` with '
    "Retry-After); when a client's traffic looks abnormal a proof-of-work challenge must be solved (428 "
    f"`challenge_required`, the challenge in `error.details[0].challenge`; repeat the request with the "
    f"ALTCHA solution in the `{ALTCHA_HEADER}` header). The staff and service-centre routes under "
    "`/api/v1/staff/` are not: they are authenticated instead, and each API key has an allowance of its "
    "own (OTV_API_KEY_REQUESTS_PER_MINUTE, or the key's own limit an administrator set; beyond it 429 "
    "`rate_limited` with Retry-After, see the `apiKey` "
    "security scheme). A forwarded route may answer 502 "
    "`upstream_unavailable` (the service could not be reached), 503 `unavailable` (its database is not "
    "reachable; Retry-After) or 504 `upstream_timeout` (no answer in time: a change may still have been "
    "made, so repeat a booking only with its `Idempotency-Key`; a cancellation or a move may simply be "
    "repeated). Versions: `v1` in the path is the major version. Within it every change is additive (new "
    "routes, new optional parameters, headers and request fields, new fields in answers, new error codes "
    "under a status a route already declares), and this document's `info.version` counts them (semantic "
    "versioning); so a client ignores answer fields it does not know and handles an unknown `error.code` "
    "by its status. A change that is not additive would come as `/api/v2/`. Every answer carries "
    "`X-Correlation-ID`; a client may send its own (1 to 64 of `A-Za-z0-9._:-`), which then follows the "
    "request through every service's log, event and mail (R51): quote it to the operators. On any route a "
    "body over 256 KiB is 413 `payload_too_large` and a method the path does not have 405 "
    "`method_not_allowed` (with `Allow`). Every query parameter takes one value: one given more than once "
    "(`?to=2026-12-01&to=2026-12-31`) is 422 `validation_error` naming it in `error.details` (`field`, "
    "type `repeated_parameter`), on any route; no value of it is used."
)


class ChallengeParameters(pydantic.BaseModel):
    algorithm: str
    nonce: str
    salt: str
    cost: int
    keyLength: int
    keyPrefix: str
    expiresAt: int | None = None


class Challenge(pydantic.BaseModel):
    """An ALTCHA (v2) proof-of-work challenge."""

    parameters: ChallengeParameters
    signature: str


GATEWAY_ROUTES = (
    ApiRoute(
        "GET",
        CHALLENGE_PATH,
        "A proof-of-work challenge (bot defence, R39)",
        response=Challenge,
        tags=("bot defence",),
        description=f"Solve it (ALTCHA v2) and send the base64 solution in the `{ALTCHA_HEADER}` header.",
    ),
    ApiRoute(
        "GET",
        "/api/v1/openapi.json",
        "This document",
        raw_response_schema={"type": "object"},
        tags=("meta",),
    ),
)


def document() -> dict[str, Any]:
    from services.booking.openapi import document as booking_document
    from services.catalog.openapi import document as catalog_document
    from services.gateway.integrations import openapi as integrations_openapi
    from services.gateway.staff import openapi as staff_openapi
    from services.notifier.openapi import document as notifier_document
    from services.reporting.openapi import document as reporting_document

    merged = merge_documents(
        [
            catalog_document(),
            booking_document(),
            notifier_document(),
            reporting_document(),
            build_document(GATEWAY_ROUTES, title="Gateway"),
            staff_openapi.document(),
            integrations_openapi.document(),
        ],
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
    )
    proxied = {(r.method.lower(), r.path) for r in PUBLIC_ROUTES} | {
        (r.method.lower(), r.path) for r in FORWARDED if r.path.startswith("/api/")
    }
    protected = {(m.lower(), p) for m, p in API_PROTECTED}
    for path, operations in merged["paths"].items():
        for method, operation in operations.items():
            if (method, path) in proxied:
                add_error_responses(
                    operation["responses"], ["upstream_unavailable", "unavailable", "upstream_timeout"]
                )
                operation["responses"]["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
            if (method, path) in protected:
                add_error_responses(operation["responses"], ["challenge_required", "rate_limited"])
                operation.setdefault("parameters", []).append(
                    {
                        "name": ALTCHA_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "The solved proof-of-work challenge, when a 428 asked for one.",
                        "schema": {"type": "string"},
                    }
                )
                operation["responses"]["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    # Staff and admin routes: how they are authenticated and what their rule needs (issue 7).
    staff_openapi.annotate(merged)
    integrations_openapi.annotate(merged)
    # Every 429 the gateway answers (the bot defence, the sign-in's and the refused keys' limits) says
    # when to try again; a client generated from the document should find the header declared.
    # ... and every 401 of an authenticated route the scheme to authenticate with (RFC 9110 15.5.2).
    for operations in merged["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:  # any body over the limit (DESCRIPTION), before any check
                add_error_responses(operation["responses"], ["payload_too_large"])
            if "401" in operation["responses"] and operation.get("security"):
                operation["responses"]["401"].setdefault("headers", {})["WWW-Authenticate"] = {
                    "description": f"`{CHALLENGE}`: authenticate with an API key (or sign in).",
                    "schema": {"type": "string"},
                }
            if "429" in operation["responses"]:
                operation["responses"]["429"].setdefault("headers", {})["Retry-After"] = {
                    "description": "Seconds to wait before the next try.",
                    "schema": {"type": "integer"},
                }
    # Last: on every answer of those routes, the ones declared just above included.
    staff_openapi.declare_deprecation(merged)
    return merged


_built: list[dict[str, Any]] = []


async def openapi_json(_request: web.Request) -> web.Response:
    if not _built:
        _built.append(document())
    return web.json_response(_built[0], headers={"Cache-Control": "public, max-age=300"})
