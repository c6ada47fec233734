-- R34, Art. 17 GDPR: the appointments and wishes whose personal data their owner (booking) erased, as
-- this service learnt from the erasure event. A dead letter about one, collected before the event or
-- after it, is kept without the person's data (shared/erasure.py). Deleted with the dead letters of the
-- same age by the retention run (shared/retention.py).
CREATE TABLE erased_subjects (
    id         uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
CREATE INDEX erased_subjects_erased_at ON erased_subjects (erased_at);
