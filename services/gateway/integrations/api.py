"""JSON handlers of integrations: webhook subscriptions and deliveries for administrators, the event
feed for API keys with `events:read` (R50). Who may call what is decided in the staff middleware from
the rule table (`staff/rules.py`) before a handler runs."""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.integrations import service
from services.gateway.integrations.db import DeliveryFilter
from services.gateway.integrations.keys import INTEGRATIONS
from services.gateway.proxy import client_ip
from services.gateway.staff import service as staff_service
from services.gateway.staff.keys import IDENTITY, STAFF
from services.gateway.staff.service import Actor
from shared import dead_letters
from shared.db import BIGINT_MAX
from shared.errors import NotFoundError
from shared.logging import current_correlation_id
from shared.web import parse_json, parse_query

routes = web.RouteTableDef()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class SubscriptionIn(_In):
    name: str = Field(min_length=1, max_length=120)
    url: str = Field(min_length=8, max_length=2000, description="https://...; checked after DNS resolution")
    event_types: list[str] = Field(min_length=1, max_length=20, examples=[["appointment.*", "callback.*"]])
    locations: list[str] = Field(min_length=1, max_length=50, description="location ids, or ['*'] for all")
    include_personal_data: bool = Field(
        default=False, description="false: the customer's data and free texts are removed from every event"
    )


class SubscriptionPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=20)
    locations: list[str] | None = Field(default=None, min_length=1, max_length=50)
    include_personal_data: bool | None = None


class DeliveryQuery(_In):
    subscription_id: uuid.UUID | None = None
    status: str | None = Field(default=None, pattern="^(pending|delivered|failed|superseded)$")
    event_type: str | None = Field(default=None, max_length=80)
    appointment_id: uuid.UUID | None = None
    before: int | None = Field(default=None, ge=1, le=BIGINT_MAX)
    limit: int = Field(default=50, ge=1, le=500)


class FeedQuery(_In):
    after: int = Field(
        default=0,
        ge=0,
        le=BIGINT_MAX,
        description="the `next_cursor` of the previous page (0: from the start)",
    )
    limit: int = Field(default=100, ge=1, le=1000)
    types: str | None = Field(default=None, max_length=500, description="comma-separated event types")


def actor(request: web.Request) -> Actor:
    return Actor.of(request[IDENTITY], client_ip(request), current_correlation_id())


def _id(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFoundError("No such webhook subscription.") from None


@routes.get("/api/v1/admin/gateway/dead-letters")
async def list_dead_letters(request: web.Request) -> web.Response:
    """The integrations consumer's dead letters (I4); the other services' are forwarded to them."""
    return await dead_letters.listing(request)


@routes.post("/api/v1/admin/gateway/dead-letters/{dead_letter_id}/replay")
async def replay_dead_letter(request: web.Request) -> web.Response:
    """Replays one to the integrations consumer, with the audit entry of the change."""
    response = await dead_letters.replay(request)
    await staff_service.record(
        request.app[STAFF],
        actor(request),
        action="replay",
        entity="dead_letter",
        entity_id=request.match_info["dead_letter_id"],
        status=response.status,
        method="POST",
        route="/api/v1/admin/gateway/dead-letters/{dead_letter_id}/replay",
        changes={"fields": []},
    )
    return response


@routes.get("/api/v1/admin/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response(await service.list_subscriptions(request.app[INTEGRATIONS]))


@routes.post("/api/v1/admin/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    data = await parse_json(request, SubscriptionIn)
    created, secret = await service.create_subscription(
        request.app[INTEGRATIONS],
        actor(request),
        name=data.name,
        url=data.url,
        event_types=data.event_types,
        locations=data.locations,
        include_personal_data=data.include_personal_data,
    )
    # The secret is in this answer only (and after a rotation): receivers keep it to verify signatures.
    return web.json_response({**created, "secret": secret}, status=201)


@routes.get("/api/v1/admin/webhooks/{subscription_id}")
async def get_webhook(request: web.Request) -> web.Response:
    return web.json_response(
        await service.get_subscription(request.app[INTEGRATIONS], _id(request, "subscription_id"))
    )


@routes.patch("/api/v1/admin/webhooks/{subscription_id}")
async def patch_webhook(request: web.Request) -> web.Response:
    data = await parse_json(request, SubscriptionPatch)
    changes = data.model_dump(exclude_none=True)
    return web.json_response(
        await service.change_subscription(
            request.app[INTEGRATIONS], actor(request), _id(request, "subscription_id"), changes
        )
    )


async def _action(request: web.Request, action: str) -> web.Response:
    return web.json_response(
        await service.change_subscription(
            request.app[INTEGRATIONS], actor(request), _id(request, "subscription_id"), {}, action
        )
    )


@routes.post("/api/v1/admin/webhooks/{subscription_id}/pause")
async def pause_webhook(request: web.Request) -> web.Response:
    return await _action(request, "pause")


@routes.post("/api/v1/admin/webhooks/{subscription_id}/resume")
async def resume_webhook(request: web.Request) -> web.Response:
    return await _action(request, "resume")


@routes.post("/api/v1/admin/webhooks/{subscription_id}/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    return await _action(request, "rotate_secret")


@routes.delete("/api/v1/admin/webhooks/{subscription_id}")
async def delete_webhook(request: web.Request) -> web.Response:
    await service.delete_subscription(
        request.app[INTEGRATIONS], actor(request), _id(request, "subscription_id")
    )
    return web.json_response({"status": "deleted"})


@routes.get("/api/v1/admin/webhook-deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    q = parse_query(request, DeliveryQuery)
    rows = await service.list_deliveries(
        request.app[INTEGRATIONS],
        DeliveryFilter(
            subscription_id=q.subscription_id,
            status=q.status,
            event_type=q.event_type,
            order_key=f"appointment:{q.appointment_id}" if q.appointment_id else None,
            before_id=q.before,
            limit=q.limit,
        ),
    )
    next_before = rows[-1]["id"] if len(rows) == q.limit else None
    return web.json_response({"deliveries": rows, "next_before": next_before})


@routes.post("/api/v1/admin/webhook-deliveries/{delivery_id}/resend")
async def resend_delivery(request: web.Request) -> web.Response:
    raw = request.match_info["delivery_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFoundError("No such delivery.")
    return web.json_response(
        await service.resend_delivery(request.app[INTEGRATIONS], actor(request), int(raw))
    )


@routes.get("/api/v1/staff/events")
async def event_feed(request: web.Request) -> web.Response:
    q = parse_query(request, FeedQuery)
    types = [t.strip() for t in q.types.split(",") if t.strip()] if q.types else None
    page = await service.read_feed(
        request.app[INTEGRATIONS], request[IDENTITY], after=q.after, limit=q.limit, types=types
    )
    return web.json_response(page)
