-- Appointments whose personal data were erased (their feed key, `appointment:<id>`): an event of such an
-- appointment that is stored later (a replayed dead letter, a backlog drained out of order) keeps no
-- personal data either, in the feed and in every webhook delivery (docs/webhooks.md, I6). Kept as long as
-- such an event can still come: the feed's retention period, or the dead letters' where that is longer.
CREATE TABLE erased_appointments (
    order_key  text PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
CREATE INDEX erased_appointments_erased ON erased_appointments (erased_at);
