"""The notifier's admin routes for the OpenAPI document (R50), from the handlers' own models: the mail
texts administrators change per kind and language, and lifting a suppressed address. The gateway merges
this into `/api/v1/openapi.json` and adds how each route is authenticated."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifier.api import (
    MailPreviewIn,
    MailPreviewOut,
    MailTextsIn,
    MailTextsOut,
    ResetQuery,
    SuppressionIn,
)
from services.notifier.texts import KINDS
from shared.languages import TAG_PATTERN
from shared.openapi import ApiRoute, build_document

TAGS = ("admin: mails",)
PARAMS = {
    "kind": {"type": "string", "enum": list(KINDS)},
    # de, de-x-ls, en, and any language with a folder of mail texts (R43: content); 404 for another.
    "language": {"type": "string", "pattern": TAG_PATTERN, "examples": ["de", "de-x-ls", "en"]},
}
TEMPLATE = "/api/v1/admin/mail-templates/{kind}/{language}"


class LiftedOut(BaseModel):
    lifted: bool


ROUTES = (
    ApiRoute(
        "GET", "/api/v1/admin/mail-templates", "Every mail text", response=list[MailTextsOut], tags=TAGS
    ),
    ApiRoute(
        "GET",
        TEMPLATE,
        "The mail text of a kind and language",
        response=MailTextsOut,
        errors=("not_found",),
        path_params=PARAMS,
        tags=TAGS,
    ),
    ApiRoute(
        "PUT",
        TEMPLATE,
        "Change a mail text (Jinja placeholders; checked before it is stored)",
        body=MailTextsIn,
        response=MailTextsOut,
        errors=("validation_error", "not_found", "stale"),
        description="With `expected_version` (the `version` read before) a save or reset made since is "
        "refused with 409 `stale` and nothing changes; without it the text is stored whatever happened "
        "since. A text that does not render with sample data, names the concern in the subject, lacks its "
        "link, or whose HTML carries a script, frame, form, event handler (`on...=`) or `javascript:` link "
        "is refused with 422 `validation_error` naming the field.",
        path_params=PARAMS,
        tags=TAGS,
    ),
    ApiRoute(
        "DELETE",
        TEMPLATE,
        "Back to the built-in mail text",
        query=ResetQuery,
        response=MailTextsOut,
        errors=("validation_error", "not_found", "stale"),
        description="With `expected_version` (the `version` read before) a save made since is refused with "
        "409 `stale` and nothing changes; without it the text is reset whatever happened since.",
        path_params=PARAMS,
        tags=TAGS,
    ),
    ApiRoute(
        "POST",
        TEMPLATE + "/preview",
        "The mail that texts not yet saved make of a sample appointment (nothing is stored)",
        body=MailPreviewIn,
        response=MailPreviewOut,
        errors=("validation_error", "not_found"),
        description="Checked as a save is: a text a save would refuse is refused with 422 "
        "`validation_error` naming the field.",
        path_params=PARAMS,
        tags=TAGS,
    ),
    ApiRoute(
        "POST",
        "/api/v1/admin/mail-suppressions/lift",
        "Lift the suppression of an address that refused mail for good (the address in the body)",
        body=SuppressionIn,
        response=LiftedOut,
        errors=("validation_error",),
        tags=TAGS,
    ),
)


def document() -> dict[str, Any]:
    return build_document(ROUTES, title="Notifier", description="Mail texts and suppressions.")
