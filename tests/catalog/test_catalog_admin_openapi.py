"""The catalog's admin reads in the OpenAPI document (R50): real answers, over the demo data with one of
each kind of entry added, read through the documented models (extra fields forbidden), so the document
cannot drift from the serialisers of `admin_api.py`."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from services.catalog import admin_openapi as doc
from tests.catalog.conftest import APPROVAL

Client = TestClient[web.Request, web.Application]


async def read(client: Client, path: str, model: Any, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    body = await response.json()
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(body)
    assert body, path  # a list: the check below needs entries to read
    return [model.__args__[0].model_validate(row) for row in body]


@pytest.mark.req("R50")
async def test_the_admin_reads_answer_what_the_document_declares(demo_client: Client) -> None:
    closure = {"first": "2026-12-28", "last": "2026-12-30", "reason": "Inventur"}
    assert (await demo_client.post("/api/v1/admin/locations/mitte/closures", json=closure)).status == 201
    await demo_client.delete("/api/v1/admin/locations/mitte/concerns/energiesperre")  # a policy finding
    assert (
        await demo_client.post("/api/v1/admin/locations/mitte/policy-approvals", json=APPROVAL)
    ).status == 201
    entry = {"entry": "team.sc@jobcenter-bremen.de", "note": "Servicecenter"}
    assert (await demo_client.post("/api/v1/admin/allow-list", json=entry)).status == 201
    street = {"street": "Musterweg", "first_number": 1, "last_number": 9, "parity": "odd"}
    street["location_id"] = "mitte"
    added = await demo_client.post("/api/v1/admin/finder/streets", json=street)
    assert added.status == 201, await added.text()

    await read(demo_client, "/api/v1/admin/locations", list[doc.LocationOut])
    mitte = await read(demo_client, "/api/v1/admin/locations/mitte", doc.LocationDetailsOut)
    assert mitte.closures and mitte.policy_approvals and mitte.policy_findings and mitte.windows
    concerns = await read(demo_client, "/api/v1/admin/concerns", list[doc.ConcernOut])
    await read(demo_client, f"/api/v1/admin/concerns/{concerns[0].id}", doc.ConcernOut)
    policy = await read(demo_client, "/api/v1/admin/policy", doc.PolicyOut)
    assert policy.complies is False
    await read(demo_client, "/api/v1/admin/locations/mitte/policy", doc.PolicyLocationOut)
    allow = await read(demo_client, "/api/v1/admin/allow-list", doc.AllowListOut)
    assert "team.sc@jobcenter-bremen.de" in [e.entry for e in allow.entries]
    streets = await read(demo_client, "/api/v1/admin/finder/streets", list[doc.StreetOut], q="Musterweg")
    await read(demo_client, "/api/v1/admin/finder/other-jobcenters", list[doc.OtherJobcenterOut])
    changes = await read(demo_client, "/api/v1/admin/changes", list[doc.ChangeOut])
    assert changes[0].entity == "finder_street"  # newest first
    await read(demo_client, "/api/v1/admin/holidays", list[doc.HolidayOut], year="2026")
    deleted = await demo_client.delete(f"/api/v1/admin/finder/streets/{streets[0].id}")
    doc.DeletedOut.model_validate(await deleted.json())
