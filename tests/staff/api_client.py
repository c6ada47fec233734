"""A service centre's client written from the published OpenAPI document alone (R50): every request it
sends is checked against the documented request schema, and every answer against the documented
status, schema and error codes, strictly (a field the document does not name is a finding too)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS31Validator, oas31_format_checker

_CODE = re.compile(r"`([a-z_]+)`")


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])


@dataclass
class DocumentedClient:
    """Calls the gateway by the document's path templates; collects every departure from the document."""

    client: TestClient[web.Request, web.Application]
    document: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def _validator(self, schema: dict[str, Any]) -> Any:
        # The document's own components travel with the schema, so that its "#/components/..." resolve.
        rooted = {**schema, "components": self.document["components"]}
        return OAS31Validator(rooted, format_checker=oas31_format_checker)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def _undocumented(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        """Fields of `value` that its schema does not name (where it does not allow others)."""
        schema = self._resolve(schema)
        for branch_kind in ("anyOf", "oneOf"):
            if branch_kind in schema:
                for branch in schema[branch_kind]:
                    if self._validator(branch).is_valid(value):
                        return self._undocumented(branch, value, where)
                return []
        if isinstance(value, dict) and "properties" in schema:
            found = []
            if schema.get("additionalProperties") is not True:
                found += [f"{where}.{name}" for name in value if name not in schema["properties"]]
            for name, sub in schema["properties"].items():
                if name in value:
                    found += self._undocumented(sub, value[name], f"{where}.{name}")
            return found
        if isinstance(value, list) and isinstance(schema.get("items"), dict):
            return [
                f
                for n, item in enumerate(value)
                for f in self._undocumented(schema["items"], item, f"{where}[{n}]")
            ]
        return []

    def _check(self, what: str, schema: dict[str, Any], value: Any) -> None:
        for error in self._validator(schema).iter_errors(value):
            self.findings.append(f"{what}: {error.json_path}: {error.message[:160]}")
        for name in self._undocumented(schema, value, "$"):
            self.findings.append(f"{what}: undocumented field {name}")

    async def call(
        self,
        method: str,
        template: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        wrong: bool = False,
        **path: str,
    ) -> Answer:
        """`wrong`: a request that breaks the document on purpose (to see the error it gets)."""
        operation = self.document["paths"][template][method.lower()]
        what = f"{method} {template}"
        documented_params = {p["name"].lower() for p in operation.get("parameters", [])}
        # Authorization is the document's security scheme, not a parameter.
        for name in [*(params or {}), *path, *(h for h in headers or {} if h != "Authorization")]:
            if name.lower() not in documented_params:
                self.findings.append(f"{what}: parameter {name} is not documented")
        if json is not None and not wrong:
            body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
            self._check(f"{what} request", body_schema, json)
        url = template.format(**path)
        response = await self.client.request(
            method, url, params=params, json=json, headers={**self.headers, **(headers or {})}
        )
        return await self._answer(what, operation, response)

    async def _answer(self, what: str, operation: dict[str, Any], response: aiohttp.ClientResponse) -> Answer:
        status = str(response.status)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        answer = Answer(response.status, body, dict(response.headers))
        documented = operation["responses"].get(status)
        if documented is None:
            self.findings.append(f"{what}: status {status} is not documented ({str(body)[:120]})")
            return answer
        content = documented.get("content", {}).get("application/json")
        if content is None:
            self.findings.append(f"{what} {status}: a JSON answer where the document has none")
            return answer
        self._check(f"{what} {status}", content["schema"], body)
        if response.status >= 400 and isinstance(body, dict) and "error" in body:
            codes = set(_CODE.findall(documented.get("description", "")))
            if answer.code not in codes:
                self.findings.append(f"{what} {status}: code `{answer.code}` is not among {sorted(codes)}")
        for header in documented.get("headers", {}):
            # These are promised whenever declared; others (X-Result-Truncated) only at times.
            if header in {"Retry-After", "WWW-Authenticate"} and header not in response.headers:
                self.findings.append(f"{what} {status}: documented header {header} is missing")
        return answer
