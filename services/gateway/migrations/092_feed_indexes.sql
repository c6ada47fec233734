-- An appointment's events in the feed (the erasure strips them, under the feed lock that every stored event
-- waits for), and a feed row's deliveries (the purge's ON DELETE CASCADE looks them up for every row it
-- deletes): without these indexes both scan the whole table, once per erasure and once per purged row.
CREATE INDEX IF NOT EXISTS event_feed_order_key ON event_feed (order_key);
CREATE INDEX IF NOT EXISTS webhook_deliveries_position ON webhook_deliveries (position);
