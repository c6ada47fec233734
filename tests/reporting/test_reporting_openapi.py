"""Reporting's routes are declared for the OpenAPI document from the same pydantic models that answer."""

from __future__ import annotations

from services.reporting.openapi import ROUTES, document


def test_every_reporting_route_is_in_the_openapi_document_with_its_models() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    assert {(r.method.lower(), r.path) for r in ROUTES} == {
        (method, path) for path, operations in doc["paths"].items() for method in operations
    }
    summary = doc["paths"]["/api/v1/staff/statistics/summary"]["get"]
    assert [p["name"] for p in summary["parameters"]] == ["from", "to", "location"]
    schema = doc["components"]["schemas"]["StatisticsSummary"]
    assert set(schema["properties"]) == {
        "appointments",
        "cancellations",
        "no_shows",
        "by_location",
        "by_concern",
        "by_channel",
    }
    day_list = doc["paths"]["/api/v1/staff/locations/{location_id}/day-list"]["get"]
    assert (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        in day_list["responses"]["200"]["content"]
    )
    assert {"401", "403", "422"} <= set(day_list["responses"])
