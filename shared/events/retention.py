"""Events of the scheduled deletion of personal data (R33, R34).

Each service that keeps personal data runs its own retention job with the same setting
(`OTV_RETENTION_DAYS`) and erases its own copy: no service deletes another's data. The events only
make the deletion visible and consistent:
- `appointment.personal_data_erased`: the booking service (the owner of appointments) erased an
  appointment's personal data; a service that keeps a copy erases its own at once, whatever its own
  schedule says.
- `retention.run_completed`: one run of a service's retention job, with counts and never data, so that
  the reporting service can show a deletion report across services without reading their tables.
"""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, Field

from shared.events import EventData, event


@event("appointment.personal_data_erased", 1)
class AppointmentPersonalDataErasedV1(EventData):
    appointment_id: uuid.UUID
    erased_at: AwareDatetime


@event("retention.run_completed", 1)
class RetentionRunCompletedV1(EventData):
    service: str
    # What the run deleted: e.g. "personal_data", "day_list_files".
    job: str
    started_at: AwareDatetime
    finished_at: AwareDatetime
    retention_days: int
    # Data older than this instant were deleted or anonymised (None for jobs without one cutoff).
    cutoff: AwareDatetime | None = None
    # What was deleted or anonymised, by kind ("appointments_anonymised": 12): counts only, never data.
    counts: dict[str, int] = Field(default_factory=dict)
