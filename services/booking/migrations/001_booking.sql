-- The booking service: its copy of the catalog, appointments, holds, idempotent requests.
-- btree_gist (schema public) lets one exclusion constraint mix equality on text/integer with range overlap.

-- The catalog's latest snapshot per location (from catalog.location_configured), so that customers can
-- book while the catalog service is down; a snapshot with a revision not higher than this one is stale.
CREATE TABLE locations (
    id           text PRIMARY KEY,
    revision     bigint NOT NULL,
    snapshot     jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- R6: the internal addresses (service centre, jobcenter) that may book any number of times.
CREATE TABLE allow_list (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision     bigint NOT NULL,
    entries      text[] NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE appointments (
    id                    uuid PRIMARY KEY,
    reference             text NOT NULL,
    revision              integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    status                text NOT NULL CHECK (status IN ('booked', 'cancelled', 'passed')),
    location_id           text NOT NULL,
    group_id              text NOT NULL,
    service_point         integer NOT NULL CHECK (service_point >= 1),
    concern_id            text NOT NULL,
    mode                  text NOT NULL CHECK (mode IN ('in_person', 'phone')),
    channel               text NOT NULL CHECK (channel IN ('online', 'service_centre', 'staff')),
    language              text NOT NULL DEFAULT 'de',
    start_at              timestamptz NOT NULL,
    end_at                timestamptz NOT NULL,
    evening               boolean NOT NULL DEFAULT false,
    evening_declared      boolean NOT NULL DEFAULT false,
    interpreter_language  text,
    -- The customer (personal data: never in logs, metrics or URLs).
    first_name            text NOT NULL,
    last_name             text NOT NULL,
    email                 text NOT NULL,
    phone                 text,
    customer_number       text,
    household_number      text,
    -- Keys of the one-appointment rule: the normalised e-mail (R5; NULL for an allow-listed address, R6),
    -- the normalised customer number and household number (R47).
    email_key             text,
    customer_number_key   text,
    household_number_key  text,
    -- R41: only the SHA-256 of the manage token is kept; the token itself is in the customer's link only.
    manage_token_hash     bytea NOT NULL CHECK (octet_length(manage_token_hash) = 32),
    -- What the events need to say about the booking as it was made (names and texts in the customer's
    -- language), so that a later event does not depend on the catalog's later state.
    location_name         text NOT NULL,
    location_address      text NOT NULL,
    concern_name          text NOT NULL,
    documents             jsonb NOT NULL DEFAULT '[]'::jsonb,
    sensitive             boolean NOT NULL DEFAULT false,
    emergency             boolean NOT NULL DEFAULT false,
    booked_at             timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    cancelled_at          timestamptz,
    cancelled_by          text,
    cancel_reason         text,
    passed_at             timestamptz,
    CONSTRAINT appointments_reference_key UNIQUE (reference),
    CONSTRAINT appointments_time_order CHECK (end_at > start_at),
    -- I1: no service point is ever booked twice for overlapping times, whatever the concurrency.
    CONSTRAINT appointments_no_double_booking EXCLUDE USING gist (
        location_id WITH =,
        group_id WITH =,
        service_point WITH =,
        tstzrange(start_at, end_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled')
);

-- I2 / R5, R47: at most one pending appointment per customer, also under concurrent attempts.
CREATE UNIQUE INDEX appointments_one_pending_per_email
    ON appointments (email_key) WHERE status = 'booked' AND email_key IS NOT NULL;
CREATE UNIQUE INDEX appointments_one_pending_per_customer_number
    ON appointments (customer_number_key) WHERE status = 'booked' AND customer_number_key IS NOT NULL;
CREATE UNIQUE INDEX appointments_one_pending_per_household_number
    ON appointments (household_number_key) WHERE status = 'booked' AND household_number_key IS NOT NULL;

-- Availability reads the occupied times of a group in a date range (an index-only scan).
CREATE INDEX appointments_occupancy
    ON appointments (location_id, group_id, start_at) INCLUDE (end_at, service_point)
    WHERE status <> 'cancelled';
-- The passing job finds started appointments that are still booked.
CREATE INDEX appointments_pending_by_start ON appointments (start_at) WHERE status = 'booked';

-- R38 holds (a customer's chosen slot while they type) and R39 cool-downs (a cancelled slot, not
-- bookable for a short while). Both occupy one service point until `expires_at`; expired rows simply
-- stop counting (every query compares expires_at with now), a job only tidies them away.
CREATE TABLE holds (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('hold', 'cooldown')),
    location_id    text NOT NULL,
    group_id       text NOT NULL,
    service_point  integer NOT NULL CHECK (service_point >= 1),
    concern_id     text,
    mode           text,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL CHECK (end_at > start_at),
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX holds_occupancy ON holds (location_id, group_id, start_at) INCLUDE (end_at, service_point, expires_at);
CREATE INDEX holds_expiry ON holds (expires_at);

-- R39: a repeated request with the same Idempotency-Key answers with the first result. The key is kept
-- only as a hash, and the stored answer (it holds the manage link) is encrypted under a key derived from
-- the client's Idempotency-Key, so the table alone does not reveal a manage token (R41).
CREATE TABLE idempotent_requests (
    key_hash      bytea PRIMARY KEY,
    fingerprint   bytea NOT NULL,
    status        integer,
    response      bytea,
    created_at    timestamptz NOT NULL
);
CREATE INDEX idempotent_requests_age ON idempotent_requests (created_at);
