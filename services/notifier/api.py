"""HTTP handlers of the notifier: the administrators' mail texts (R10) and the suppression list.

These live under `/api/v1/admin/` and are reached through the gateway, which authenticates and
authorises administrators and forwards the signed identity; the notifier checks it again (I5, defence
in depth), so a call that did not pass the gateway is refused with 401.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.notifier import service
from services.notifier.config import Settings
from services.notifier.texts import KINDS, TemplateSet, languages
from shared.identity import Role, StaffIdentity
from shared.versions import MAX_VERSION_LENGTH
from shared.web import CLOCK, POOL, SETTINGS, json_model, parse_json, parse_query, staff_identity

routes = web.RouteTableDef()

_MAX_TEMPLATE = 20_000


def _expected_version() -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
        description="The text's `version` as the client read it. Given, a save or reset of the text made "
        "since refuses this one with 409 `stale` and nothing changes: read it again and decide anew. "
        "Absent: the change is made whatever happened since.",
    )


class MailTextsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=_MAX_TEMPLATE)
    html: str = Field(min_length=1, max_length=_MAX_TEMPLATE)
    expected_version: str | None = _expected_version()


class ResetQuery(BaseModel):
    """A reset has no body: the version it was made against is a query parameter."""

    model_config = ConfigDict(extra="forbid")

    expected_version: str | None = _expected_version()


class MailTextsOut(BaseModel):
    kind: str
    language: str
    subject: str
    text: str
    html: str
    customised: bool
    updated_at: datetime | None
    version: str = Field(
        description="a short hash of the text as it is now; send it back as `expected_version` of the PUT, "
        "so that a save made since is not overwritten unseen (409 `stale`)"
    )


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)


def require_admin(request: web.Request) -> StaffIdentity:
    identity = staff_identity(request)
    identity.require(Role.ADMIN)
    return identity


def _out(texts: service.MailTexts) -> MailTextsOut:
    return MailTextsOut(
        kind=texts.kind,
        language=texts.language,
        subject=texts.templates.subject,
        text=texts.templates.text,
        html=texts.templates.html,
        customised=texts.customised,
        updated_at=texts.updated_at,
        version=texts.version,
    )


@routes.get("/api/v1/admin/mail-templates")
async def list_mail_texts(request: web.Request) -> web.Response:
    require_admin(request)
    pool = request.app[POOL]
    found = [await service.get_mail_texts(pool, kind, lang) for kind in KINDS for lang in languages()]
    return json_model([_out(t) for t in found])


@routes.get("/api/v1/admin/mail-templates/{kind}/{language}")
async def get_mail_texts(request: web.Request) -> web.Response:
    require_admin(request)
    found = await service.get_mail_texts(
        request.app[POOL], request.match_info["kind"], request.match_info["language"]
    )
    return json_model(_out(found))


@routes.put("/api/v1/admin/mail-templates/{kind}/{language}")
async def put_mail_texts(request: web.Request) -> web.Response:
    require_admin(request)
    body = await parse_json(request, MailTextsIn)
    changed = await service.change_mail_texts(
        request.app[POOL],
        request.match_info["kind"],
        request.match_info["language"],
        TemplateSet(subject=body.subject, text=body.text, html=body.html),
        clock=request.app[CLOCK],
        expected_version=body.expected_version,
    )
    return json_model(_out(changed))


class MailPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=_MAX_TEMPLATE)
    html: str = Field(min_length=1, max_length=_MAX_TEMPLATE)


class MailPreviewOut(BaseModel):
    subject: str
    text: str
    html: str


@routes.post("/api/v1/admin/mail-templates/{kind}/{language}/preview")
async def preview_mail_texts(request: web.Request) -> web.Response:
    """The mail these (unsaved) texts make of a sample appointment; the checks of a save first, so that
    a preview never shows what could not be saved. Nothing is stored."""
    require_admin(request)
    body = await parse_json(request, MailPreviewIn)
    rendered = service.preview_mail_texts(
        request.match_info["kind"],
        request.match_info["language"],
        TemplateSet(subject=body.subject, text=body.text, html=body.html),
    )
    return json_model(MailPreviewOut(subject=rendered.subject, text=rendered.text, html=rendered.html))


@routes.delete("/api/v1/admin/mail-templates/{kind}/{language}")
async def reset_mail_texts(request: web.Request) -> web.Response:
    require_admin(request)
    query = parse_query(request, ResetQuery)
    reset = await service.reset_mail_texts(
        request.app[POOL],
        request.match_info["kind"],
        request.match_info["language"],
        expected_version=query.expected_version,
    )
    return json_model(_out(reset))


@routes.post("/api/v1/admin/mail-suppressions/lift")
async def lift_suppression(request: web.Request) -> web.Response:
    """Mail to an address refused for good is suppressed; once the customer's mailbox works again an
    administrator lifts it. The address travels in the body, never in the URL."""
    require_admin(request)
    body = await parse_json(request, SuppressionIn)
    settings = request.app[SETTINGS]
    assert isinstance(settings, Settings)  # noqa: S101 -- the notifier's app holds its own settings
    lifted = await service.lift_suppression(request.app[POOL], body.email, settings=settings)
    return web.json_response({"lifted": lifted})
