-- The waiting list's mails (R45, issue 11). A waiting-list mail is about a wish: its id stands in
-- `mails.appointment_id` (ids are UUIDs, they never collide), one mail of a kind per wish revision.
ALTER TABLE mails DROP CONSTRAINT mails_kind_check;
ALTER TABLE mails ADD CONSTRAINT mails_kind_check CHECK (kind IN (
    'confirmation', 'reminder', 'reschedule', 'cancellation',
    'waiting_opt_in', 'waiting_confirmed', 'waiting_offer', 'waiting_offer_expired', 'waiting_expired',
    'waiting_withdrawn'
));

-- The wish's page link with its secret token, from `waiting.registered` (booking keeps only a hash of
-- the token), so that every later mail carries a working withdraw link. Wiped when the wish ends.
CREATE TABLE waiting_wishes (
    id          uuid PRIMARY KEY,
    revision    integer NOT NULL,
    page_url    text,
    updated_at  timestamptz NOT NULL
);
