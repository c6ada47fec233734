"""Integrations in the OpenAPI document (R50): the admin routes of webhook subscriptions and deliveries,
the event feed, and (OpenAPI 3.1 `webhooks`) the request OTV sends to a subscriber, with the signature
scheme. Built from the pydantic models, like the staff part (`staff/openapi.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from pydantic.json_schema import models_json_schema

from services.gateway.integrations.api import DeliveryQuery, FeedQuery, SubscriptionIn, SubscriptionPatch
from shared import dead_letters
from shared.openapi import REF_TEMPLATE, ApiRoute, build_document


class SubscriptionOut(BaseModel):
    id: str
    name: str
    url: str
    event_types: list[str]
    locations: list[str]
    include_personal_data: bool
    status: str = Field(description="`active` or `paused`")
    paused_reason: str | None = Field(
        description="why it was paused (by the system after failing, or by hand)"
    )
    paused_at: AwareDatetime | None
    consecutive_failures: int
    failing_since: AwareDatetime | None
    last_success_at: AwareDatetime | None
    created_at: AwareDatetime
    created_by: str
    updated_at: AwareDatetime
    previous_secret_expires_at: AwareDatetime | None = Field(
        description="after a rotation: until when the previous secret signs as well (a second signature "
        "in `webhook-signature`); null when only the current secret signs"
    )


class SubscriptionCreatedOut(SubscriptionOut):
    secret: str = Field(description="`whsec_` + base64 of 32 random bytes: shown in this answer only")


class DeliveryOut(BaseModel):
    id: int
    subscription_id: str
    position: int = Field(description="the event's cursor in the feed")
    event_id: str
    event_type: str
    order_key: str
    webhook_id: str = Field(description="the `webhook-id` header: the same for every attempt")
    status: str = Field(
        description="`pending`, `delivered`, `failed` (given up after the retry window) or `superseded` "
        "(never sent: a newer revision of the appointment was stored for the subscription before it)"
    )
    attempts: int
    next_attempt_at: AwareDatetime
    last_attempt_at: AwareDatetime | None
    last_status: int | None = Field(description="the receiver's HTTP status")
    last_error: str | None
    delivered_at: AwareDatetime | None
    created_at: AwareDatetime


class DeliveryPageOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class StatusOut(BaseModel):
    status: str


class EventOut(BaseModel):
    """The versioned event envelope, as a subscriber or the feed receives it."""

    id: str = Field(description="the event's id (the same in the feed and in every webhook)")
    type: str = Field(examples=["appointment.booked"])
    version: int = Field(description="the version of `data`; a breaking change is a new version")
    occurred_at: AwareDatetime
    correlation_id: str
    producer: str
    data: dict[str, Any] = Field(
        description="the event's data; `appointment.*` carry the whole appointment with its `revision`. "
        "Without personal data in the scope, `customer`, `client_network`, `interpreter_language`, "
        "`language_tag` (the customer's language as a BCP 47 tag; `language` is the nearest of de, de-x-ls "
        "and en) and free texts (`reason`, `note`; a callback ticket's `reason` is a code and stays) are "
        "removed; the manage link never carries its token."
    )


class FeedEventOut(EventOut):
    cursor: int = Field(description="this event's position in the feed")


class FeedPageOut(BaseModel):
    events: list[FeedEventOut]
    next_cursor: int = Field(description="pass as `after` for the next page (the same when nothing new)")
    has_more: bool
    missed_events: bool = Field(
        description="true when events after `after` were deleted at the end of the feed's retention period "
        "before this reader got them (it was away too long): compare your state with the API. Never for "
        "`after=0` (from the start of what is kept)"
    )


SIGNATURE_SCHEME = """Webhooks are signed following the Standard Webhooks specification:

- `webhook-id`: the message id, the same for every attempt of one event to one subscription (drop
  duplicates by it: delivery is at least once);
- `webhook-timestamp`: unix seconds of the attempt (refuse one more than 5 minutes away from now);
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), where
  `key` is the base64-decoded part of the secret after `whsec_`, and `body` the raw request body. For a
  day after a secret rotation the header carries two signatures, space-separated (new secret, then the
  previous one): accept the request when one of them verifies.

A 2xx answer within 10 seconds acknowledges; anything else is retried with exponential back-off for a day.
Events of one appointment arrive in order (a later one waits while an earlier one is pending), and its
`data.appointment.revision` never goes down: an event that reaches OTV after a newer revision of its
appointment was stored for the subscription is not sent (its delivery is `superseded`). Callback events
come in the order they reached OTV, not held back by their ticket's own `data.callback.revision`: keep
the highest per ticket. Any answer but 2xx is retried alike, except 410 Gone, which pauses the
subscription at once. A subscription that keeps failing for a day is paused, with the reason in its
`paused_reason`. See docs/webhooks.md for a verification
example."""

TAG_WEBHOOKS = ("integration: webhooks",)
TAG_FEED = ("integration: event feed",)

ROUTES = (
    ApiRoute(
        "GET",
        "/api/v1/admin/webhooks",
        "Webhook subscriptions",
        response=list[SubscriptionOut],
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/webhooks",
        "Register a webhook subscription (the secret is in this answer only)",
        body=SubscriptionIn,
        response=SubscriptionCreatedOut,
        status=201,
        errors=("validation_error",),
        tags=TAG_WEBHOOKS,
        description="The URL must be https to a public address, checked after DNS resolution and again at "
        "every connection (private, loopback, link-local, multicast and reserved addresses are refused).\n\n"
        + SIGNATURE_SCHEME,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/webhooks/{subscription_id}",
        "One subscription, with its state",
        response=SubscriptionOut,
        errors=("not_found",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "PATCH",
        "/api/v1/admin/webhooks/{subscription_id}",
        "Change a subscription's name, target or scope",
        body=SubscriptionPatch,
        response=SubscriptionOut,
        errors=("not_found", "validation_error"),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "DELETE",
        "/api/v1/admin/webhooks/{subscription_id}",
        "Delete a subscription and its deliveries",
        response=StatusOut,
        errors=("not_found",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/webhooks/{subscription_id}/pause",
        "Pause a subscription (events are kept for it)",
        response=SubscriptionOut,
        errors=("not_found",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/webhooks/{subscription_id}/resume",
        "Resume a subscription: what waited is sent, in order",
        response=SubscriptionOut,
        errors=("not_found",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/webhooks/{subscription_id}/rotate-secret",
        "A new signing secret (in this answer only); the previous one signs as well for a day",
        response=SubscriptionCreatedOut,
        errors=("not_found",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/admin/webhook-deliveries",
        "Deliveries and their results, newest first, with filters",
        query=DeliveryQuery,
        response=DeliveryPageOut,
        errors=("validation_error",),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/webhook-deliveries/{delivery_id}/resend",
        "Send a delivery again (with the same webhook-id); not one of an older revision than the newest",
        response=DeliveryOut,
        errors=("not_found", "conflict"),
        tags=TAG_WEBHOOKS,
    ),
    ApiRoute(
        "GET",
        "/api/v1/staff/events",
        "The event feed: appointment and callback events after a cursor",
        query=FeedQuery,
        response=FeedPageOut,
        errors=("validation_error",),
        tags=TAG_FEED,
        description="For systems that cannot receive webhooks: the same events, oldest first, in a stable "
        "order; page with `after=<next_cursor>`. Per appointment, `data.appointment.revision` never goes "
        "down: an event stored after a newer revision of its appointment (events can reach OTV out of "
        "order) is superseded and not listed, whatever `types` are asked for; the newer one carries the "
        "whole appointment. An API key sees the events of its locations only; the customer's data only "
        "with the operation `events:personal`. Events are kept for a limited time.",
    ),
)


# Dead letters (I4): the gateway answers its own and forwards the others' (`staff/rules.py`).
DEAD_LETTER_ROUTES = tuple(
    route
    for service in ("booking", "notifier", "reporting", "gateway")
    for route in dead_letters.api_routes(service)
)


def document() -> dict[str, Any]:
    return build_document((*ROUTES, *DEAD_LETTER_ROUTES), title="Integrations")


def annotate(merged: dict[str, Any]) -> None:
    """The request a subscriber receives, as an OpenAPI 3.1 `webhooks` entry."""
    refs, definitions = models_json_schema([(EventOut, "serialization")], ref_template=REF_TEMPLATE)
    merged.setdefault("components", {}).setdefault("schemas", {}).update(definitions.get("$defs", {}))
    headers = [
        ("webhook-id", "the message id (stable across attempts)"),
        ("webhook-timestamp", "unix seconds of the attempt"),
        (
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256>`; for a day after a rotation two, space-separated (the new secret's "
            "first, then the previous one's): accept the request when one of them verifies",
        ),
    ]
    merged["webhooks"] = {
        "otvEvent": {
            "post": {
                "summary": "An appointment or callback event, signed (Standard Webhooks)",
                "description": SIGNATURE_SCHEME,
                "tags": list(TAG_WEBHOOKS),
                "parameters": [
                    {
                        "name": n,
                        "in": "header",
                        "required": True,
                        "description": d,
                        "schema": {"type": "string"},
                    }
                    for n, d in headers
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": dict(refs[(EventOut, "serialization")])}},
                },
                "responses": {"2XX": {"description": "Received; any other answer is retried"}},
            }
        }
    }
