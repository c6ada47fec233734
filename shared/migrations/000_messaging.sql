-- Messaging tables every service has in its own schema (I3, I4).

-- Transactional outbox: written in the same transaction as the state change; the relay publishes it.
CREATE TABLE outbox (
    seq            bigserial PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    type           text NOT NULL,
    envelope       jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Wake the relay at once instead of waiting for its next poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Inbox: one row per (consumer, event) written with the event's effect, so a redelivery has none.
CREATE TABLE inbox (
    consumer       text NOT NULL,
    event_id       uuid NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Dead letters, collected from the consumers' dead-letter queues so that staff can see and replay them.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    consumer       text NOT NULL,
    queue          text NOT NULL,
    event_id       text,
    event_type     text,
    reason         text NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    body           bytea NOT NULL,
    headers        jsonb NOT NULL DEFAULT '{}'::jsonb,
    dead_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (dead_at) WHERE replayed_at IS NULL;
