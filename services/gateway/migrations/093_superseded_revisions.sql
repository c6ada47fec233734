-- Per appointment, the revisions a receiver gets never go down (docs/webhooks.md). Events can reach the
-- gateway out of order (booking's replicas drain a backlog in parallel after a broker outage, retries, a
-- replayed dead letter): an event stored after a newer revision of its appointment is superseded. The
-- feed keeps it (its position is a cursor, its deliveries point at it) but does not hand it out; a
-- subscription's delivery of it is recorded as `superseded` and never sent.

-- The highest revision stored in the feed per appointment (`appointment:<id>`), and per subscription and
-- appointment among the events the subscription wanted. Kept as long as an event of the appointment can
-- still come (the feed's retention period, or the dead letters' where that is longer), after the last one.
CREATE TABLE feed_revisions (
    order_key  text PRIMARY KEY,
    revision   bigint NOT NULL,
    seen_at    timestamptz NOT NULL
);
CREATE INDEX feed_revisions_seen ON feed_revisions (seen_at);

CREATE TABLE webhook_revisions (
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    order_key        text NOT NULL,
    revision         bigint NOT NULL,
    seen_at          timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, order_key)
);
CREATE INDEX webhook_revisions_seen ON webhook_revisions (seen_at);

-- What is stored already counts: only appointment events carry a revision in the feed (other rows: 0), and
-- a delivery without a revision of its own (a callback's) has at most the highest one of its appointment.
INSERT INTO feed_revisions (order_key, revision, seen_at)
SELECT order_key, max(order_seq), max(stored_at) FROM event_feed WHERE order_seq > 0 GROUP BY order_key;
INSERT INTO webhook_revisions (subscription_id, order_key, revision, seen_at)
SELECT subscription_id, order_key, max(order_seq), max(created_at) FROM webhook_deliveries
 WHERE order_seq > 0 GROUP BY subscription_id, order_key;

-- The two changes of existing tables come last and are quick, so that their exclusive locks are held
-- for moments, not during the scans above (the consumer, the feed and the dispatcher keep working while
-- the release rolls): a column with a constant default is not written row by row, and the wider CHECK
-- is not validated (every existing row meets the narrower one it replaces).
-- Stored after a newer revision of its appointment (decided under the feed lock when it is stored).
ALTER TABLE event_feed ADD COLUMN superseded boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'superseded')) NOT VALID;
