-- R24, directive 3.4: an entrance-zone appointment that ends with a follow-up booked in the responsible
-- team records that as its outcome ("follow_up"), so that it is no longer counted as passed without one.
ALTER TABLE appointments DROP CONSTRAINT appointments_outcome_check;
ALTER TABLE appointments ADD CONSTRAINT appointments_outcome_check
    CHECK (outcome IN ('resolved', 'placement', 'callback', 'no_show', 'follow_up'));
