-- The waiting list's figures (R45, issue 11): how many wishes were registered, confirmed, offered a slot,
-- booked, withdrawn and expired, per day, location and concern. Counts only, no personal data (R34).
CREATE TABLE waiting_counts (
    day          date NOT NULL,
    location_id  text NOT NULL,
    concern_id   text NOT NULL,
    event        text NOT NULL,
    count        integer NOT NULL,
    PRIMARY KEY (day, location_id, concern_id, event)
);
