-- The highest feed position deleted at the end of the retention period (one row, from the first purge
-- on): a reader whose cursor lies below it has missed events (the feed's `missed_events`,
-- docs/webhooks.md).
CREATE TABLE event_feed_purged (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    upto  bigint NOT NULL
);
