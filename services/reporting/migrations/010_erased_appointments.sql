-- Appointments whose personal data were erased (on request, or by booking's retention) before reporting
-- had a row of them: an event that arrives later (a replayed dead letter, a backlog drained out of order)
-- is then stored without personal data, as the erasure demands (I6). Kept for the retention period, as
-- long as such an event can still come (inbox and dead letters go at the same age).
CREATE TABLE erased_appointments (
    id         uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
CREATE INDEX erased_appointments_erased ON erased_appointments (erased_at);
