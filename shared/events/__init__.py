"""The event envelope and the registry of `(type, version)` data models.

Every event is `{id, type, version, occurred_at, correlation_id, producer, data}`. A breaking change of
`data` is a new `version`; consumers apply no version they do not know (with a log line): they put it
back for a replica of a newer release, and after a bounded number of tries into the dead letters
(shared/consumer.py). Where order matters, `data` carries a per-aggregate `revision` so that a consumer
can drop a stale update.

The data models live in the modules beside this one (`shared.events.catalog`, `.appointment`, ...);
importing `shared.events.all` registers every one of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.clock import Clock
from shared.logging import current_correlation_id


class EventData(BaseModel):
    """Base of every event's `data`. Unknown fields are ignored: adding a field is not a breaking change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int]


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    type: str
    version: int
    occurred_at: AwareDatetime
    correlation_id: str
    producer: str
    data: dict[str, Any]


_REGISTRY: dict[tuple[str, int], type[EventData]] = {}

D = TypeVar("D", bound=type[EventData])


def event(event_type: str, version: int) -> Any:
    """Class decorator: registers a data model under its type and version."""

    def register(cls: D) -> D:
        key = (event_type, version)
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise RuntimeError(f"event {key} registered twice")
        cls.event_type = event_type
        cls.event_version = version
        _REGISTRY[key] = cls
        return cls

    return register


def model_for(event_type: str, version: int) -> type[EventData] | None:
    return _REGISTRY.get((event_type, version))


def known_versions(event_type: str) -> list[int]:
    return sorted(v for (t, v) in _REGISTRY if t == event_type)


def make_envelope(
    data: EventData,
    *,
    producer: str,
    clock: Clock,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    return Envelope(
        id=uuid.uuid4(),
        type=data.event_type,
        version=data.event_version,
        occurred_at=occurred_at or clock.now(),
        correlation_id=correlation_id or current_correlation_id(),
        producer=producer,
        data=data.model_dump(mode="json"),
    )
