"""OpenAPI 3.1 documents built from route declarations and the pydantic models the handlers use.

Each service declares its public routes in `services/<service>/openapi.py` as `ApiRoute`s naming its
own models (query, body, response) and error codes, and serves `build_document(...)` at
`GET /openapi.json` (`openapi_handler`). The gateway merges the services' documents into
`/api/v1/openapi.json` with `merge_documents`. Nothing is hand-written JSON: a field added to a model is
in the document at the next start.
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from aiohttp import web
from pydantic.json_schema import JsonSchemaMode, models_json_schema

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")

# The error codes of the architecture's contract and their HTTP status.
ERROR_STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    "password_change_required": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "slot_taken": 409,
    "already_booked": 409,
    "booking_closed": 409,
    "too_late": 409,
    "hold_limit_reached": 409,
    "already_waiting": 409,
    "slots_available": 409,
    "conflict": 409,
    "not_changeable": 409,
    "too_early": 409,
    "outcome_recorded": 409,
    "capacity_conflict": 409,
    "approval_required": 409,
    "stale": 409,
    "link_expired": 410,
    "gone": 410,
    "payload_too_large": 413,
    "validation_error": 422,
    "challenge_required": 428,
    "rate_limited": 429,
    "internal_error": 500,
    "upstream_unavailable": 502,
    "unavailable": 503,
    "upstream_timeout": 504,
}
_STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    422: "Validation error (the details name the field)",
    428: "A proof-of-work challenge must be solved first",
    429: "Too many requests (see Retry-After)",
    500: "Internal error",
    502: "An upstream service is unavailable",
    503: "Unavailable",
    504: "An upstream service did not answer in time",
}


class ErrorInfo(pydantic.BaseModel):
    code: str = pydantic.Field(description="Machine-readable error code, e.g. `slot_taken`.")
    message: str = pydantic.Field(description="Human-readable explanation (English).")
    details: list[dict[str, Any]] = pydantic.Field(
        default_factory=list,
        description="Further information; for `validation_error` one entry per field (`field`, `message`).",
    )


class ErrorBody(pydantic.BaseModel):
    """The error body of every service."""

    error: ErrorInfo


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class ApiRoute:
    """One public operation. `response` is a model or `list[Model]`; `errors` are codes of
    `ERROR_STATUS`; `path_params` gives a schema per path parameter (default: a string)."""

    method: str
    path: str
    summary: str
    response: Any = None
    status: int = 200
    query: type[pydantic.BaseModel] | None = None
    body: type[pydantic.BaseModel] | None = None
    # False where the handler takes the request without a body (the customer's cancellation).
    body_required: bool = True
    errors: Sequence[str] = ()
    headers: Sequence[Header] = ()
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: Sequence[str] = ()
    description: str = ""
    response_description: str = "OK"
    response_headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_type: str = "application/json"
    raw_response_schema: dict[str, Any] | None = None

    @property
    def operation_id(self) -> str:
        words = re.sub(r"[{}]", "", self.path).strip("/").replace("api/v1/", "").replace("/", "_")
        return f"{self.method.lower()}_{words.replace('-', '_')}"


def _model_of(annotation: Any) -> tuple[type[pydantic.BaseModel] | None, bool]:
    """(model, is_list) for `Model` or `list[Model]`."""
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return item, True
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation, False
    return None, False


def build_document(
    routes: Iterable[ApiRoute], *, title: str, version: str = "1.0.0", description: str = ""
) -> dict[str, Any]:
    """An OpenAPI 3.1 document of these routes; every model lands in `components.schemas`."""
    routes = list(routes)
    wanted: list[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        model, _ = _model_of(route.response)
        if model is not None:
            wanted.append((model, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, definitions = models_json_schema(unique, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))

    def ref(model: type[pydantic.BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
        if route.description:
            operation["description"] = route.description
        if route.tags:
            operation["tags"] = list(route.tags)
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": route.path_params.get(name, {"type": "string"}),
            }
            for name in _PATH_PARAM.findall(route.path)
        ]
        if route.query is not None:
            parameters.extend(_query_parameters(route.query, schemas))
        parameters.extend(
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": h.schema,
            }
            for h in route.headers
        )
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": {"schema": ref(route.body, "validation")}},
            }
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": route.response_description}
        model, is_list = _model_of(route.response)
        if model is not None:
            schema = ref(model, "serialization")
            success["content"] = {
                route.content_type: {"schema": {"type": "array", "items": schema} if is_list else schema}
            }
        elif route.raw_response_schema is not None:
            success["content"] = {route.content_type: {"schema": route.raw_response_schema}}
        if route.response_headers:
            success["headers"] = {name: {"schema": schema} for name, schema in route.response_headers.items()}
        responses[str(route.status)] = success
        # A query parameter given twice is refused whatever the route (shared.web.refuse_repeated_query).
        query_errors = ["validation_error"] if any(p["in"] == "query" for p in parameters) else []
        add_error_responses(responses, list(dict.fromkeys([*route.errors, *query_errors])))
        operation["responses"] = responses
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if description:
        document["info"]["description"] = description
    return document


def _blank_means_absent(model: type[pydantic.BaseModel]) -> set[str]:
    """The query names of the fields that read an empty value as "not given" (`blank_is_none`)."""
    from shared.web import blank_is_none

    return {
        info.alias or name
        for name, info in model.model_fields.items()
        if any(getattr(m, "func", None) is blank_is_none for m in info.metadata)
    }


def _query_parameters(model: type[pydantic.BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
    schemas.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    blank_means_absent = _blank_means_absent(model)
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        # A query parameter is absent rather than null: keep only the non-null alternatives.
        alternatives = [alt for alt in prop.get("anyOf", []) if alt != {"type": "null"}]
        if "anyOf" in prop and len(alternatives) == 1:
            del prop["anyOf"]
            prop.update(alternatives[0])
        if prop.get("default", 0) is None:
            del prop["default"]
        description = prop.pop("description", None)
        prop.pop("title", None)
        if name in blank_means_absent:
            # `?location=` (a form's "all", a filled-in template) is as if absent: the value's schema, or
            # an empty (or blank) string.
            keep = {key: prop.pop(key) for key in ("default", "examples") if key in prop}
            prop = {"anyOf": [prop, {"type": "string", "pattern": r"^\s*$"}], **keep}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def error_response_object(codes: Iterable[str]) -> dict[str, Any]:
    codes = list(codes)
    return {
        "description": f"{_STATUS_TEXT.get(ERROR_STATUS[codes[0]], 'Error')}: "
        + ", ".join(f"`{c}`" for c in codes),
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorBody")}}},
    }


def add_error_responses(responses: dict[str, Any], codes: Iterable[str]) -> None:
    """Declare these error codes (grouped by status) in an operation's `responses`."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_STATUS[code], []).append(code)
    for status, listed in sorted(by_status.items()):
        existing = responses.get(str(status))
        if existing is not None and "`" in existing.get("description", ""):
            known = re.findall(r"`([a-z_]+)`", existing["description"])
            listed = list(dict.fromkeys([*known, *listed]))
        responses[str(status)] = error_response_object(listed)


def merge_documents(
    documents: Iterable[dict[str, Any]], *, title: str, version: str = "1.0.0", description: str = ""
) -> dict[str, Any]:
    """One document of several services' documents. A schema name two services use for different
    schemas is renamed (prefixed with the document's title) and its references rewritten."""
    merged: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": {},
        "components": {"schemas": {}},
    }
    if description:
        merged["info"]["description"] = description
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for original in documents:
        document = copy.deepcopy(original)
        own = document.get("components", {}).get("schemas", {})
        prefix = re.sub(r"[^A-Za-z0-9]", "", document.get("info", {}).get("title", "Service").title())
        renames = {
            name: f"{prefix}{name}"
            for name, schema in own.items()
            if name in schemas and schemas[name] != schema
        }
        if renames:
            document = _rewrite_refs(document, renames)
            own = document.get("components", {}).get("schemas", {})
            own = {renames.get(name, name): schema for name, schema in own.items()}
        schemas.update(own)
        for path, operations in document.get("paths", {}).items():
            target = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                if method in target:
                    raise ValueError(f"two documents declare {method.upper()} {path}")
                target[method] = operation
    return merged


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = REF_TEMPLATE.format(model=renames.get(name, name))
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def openapi_handler(
    document: Callable[[], dict[str, Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler serving the document, built once on first use."""
    built: list[dict[str, Any]] = []

    async def handler(_request: web.Request) -> web.Response:
        if not built:
            built.append(document())
        return web.json_response(built[0], headers={"Cache-Control": "public, max-age=300"})

    return handler
