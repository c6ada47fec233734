-- Integrations (issue 12, R50): the event feed, webhook subscriptions and their deliveries.

-- Every consumed appointment.* and callback.* event, in the order it was stored; `position` is the feed's
-- cursor. Rows are inserted under a transaction-level advisory lock, so positions commit in order and a
-- reader paging with `after` never skips a row that commits later.
CREATE TABLE event_feed (
    position     bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    type         text NOT NULL,
    version      integer NOT NULL,
    occurred_at  timestamptz NOT NULL,
    -- The location the event belongs to (NULL: none; only keys for every location see it).
    location_id  text,
    -- What order matters within (the appointment), and its revision where the event has one.
    order_key    text NOT NULL,
    order_seq    bigint NOT NULL,
    -- The whole envelope as consumed (personal data are reduced when it is handed out, not here).
    envelope     jsonb NOT NULL,
    stored_at    timestamptz NOT NULL
);
CREATE INDEX event_feed_location ON event_feed (location_id, position);
CREATE INDEX event_feed_stored ON event_feed (stored_at);

CREATE TABLE webhook_subscriptions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    url                    text NOT NULL CHECK (length(url) <= 2000),
    -- Patterns of event types (`appointment.*`, `callback.created`).
    event_types            text[] NOT NULL CHECK (cardinality(event_types) > 0),
    -- Location ids, or '{*}' for all.
    locations              text[] NOT NULL CHECK (cardinality(locations) > 0),
    include_personal_data  boolean NOT NULL DEFAULT false,
    -- The signing secret (`whsec_` + base64). HMAC needs it in the clear; only administrators' API
    -- shows it, once, at creation.
    secret                 text NOT NULL,
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    paused_reason          text,
    paused_at              timestamptz,
    consecutive_failures   integer NOT NULL DEFAULT 0,
    failing_since          timestamptz,
    last_success_at        timestamptz,
    created_at             timestamptz NOT NULL,
    created_by             text NOT NULL,
    updated_at             timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    -- Deliveries go with their feed row when it passes the retention period.
    position         bigint NOT NULL REFERENCES event_feed (position) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    order_key        text NOT NULL,
    order_seq        bigint NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL,
    -- Start of the retry window (creation, or the last re-send by an administrator).
    retry_from       timestamptz NOT NULL,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, order_key, order_seq, id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (subscription_id, id);
