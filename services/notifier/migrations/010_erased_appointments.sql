-- Appointments whose personal data were erased (on request under Art. 17 GDPR, or by booking's retention)
-- before the notifier had a copy of them: an event that arrives later (a replayed dead letter, a backlog
-- drained out of order) must not plan a mail to the person who asked to be forgotten, nor store their
-- name and address again (I6). A copy that exists keeps the erasure in `appointments.erased_at` (009);
-- a copy made later takes it from here. Deleted by the retention job after the retention period, when
-- the dead letters of that age are gone and no such event can come any more.
CREATE TABLE erased_appointments (
    id         uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
CREATE INDEX erased_appointments_erased ON erased_appointments (erased_at);
