-- The waiting list (R45, issue 11): wishes, the offers of freed slots, and the queue of freed capacity.
--
-- Guarantees held by the database, not by Python checks:
-- * one active wish per customer (partial unique indexes on the keys of the one-appointment rule, R5, R47;
--   NULL for an allow-listed address, R6), and never an active wish beside a booked appointment: joining
--   checks the appointments under an advisory lock per key, and every new appointment closes the active
--   wish of its customer under the same locks (trigger below), so the two can never pass each other;
-- * exactly one open offer per freed slot (the exclusion constraint of open offers per service point, and
--   the offer's hold row, which normal bookings respect), and at most one open offer per wish.

CREATE TABLE wishes (
    id                    uuid PRIMARY KEY,
    reference             text NOT NULL,
    revision              integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    status                text NOT NULL
                          CHECK (status IN ('pending_opt_in', 'waiting', 'offered', 'booked', 'withdrawn', 'expired')),
    location_id           text NOT NULL,
    group_id              text NOT NULL,
    concern_id            text NOT NULL,
    mode                  text NOT NULL CHECK (mode IN ('in_person', 'phone')),
    -- What suits the customer: days of the week (0 = Monday), times of day (Berlin wall clock, NULL: open),
    -- the latest date; an evening slot (R12) only with the declaration.
    weekdays              smallint[] NOT NULL CHECK (cardinality(weekdays) BETWEEN 1 AND 7),
    earliest              time,
    latest                time,
    latest_date           date NOT NULL,
    evening_declared      boolean NOT NULL DEFAULT false,
    language              text NOT NULL DEFAULT 'de',
    -- The customer (personal data: never in logs, metrics or URLs; erased after the retention period).
    first_name            text NOT NULL,
    last_name             text NOT NULL,
    email                 text NOT NULL,
    phone                 text,
    customer_number       text,
    household_number      text,
    email_key             text,
    customer_number_key   text,
    household_number_key  text,
    -- Only the SHA-256 of the link's token, like the manage token (R41).
    token_hash            bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    location_name         text NOT NULL,
    location_address      text NOT NULL,
    concern_name          text NOT NULL,
    sensitive             boolean NOT NULL DEFAULT false,
    registered_at         timestamptz NOT NULL,
    confirmed_at          timestamptz,
    updated_at            timestamptz NOT NULL,
    ended_at              timestamptz,
    end_reason            text,
    appointment_id        uuid,
    missed_offers         integer NOT NULL DEFAULT 0,
    -- false: the database ended the wish (the customer booked, trigger below) and its event is still to
    -- be published by the matcher job, in the transaction that sets this back to true (I3).
    announced             boolean NOT NULL DEFAULT true,
    erased_at             timestamptz,
    CONSTRAINT wishes_reference_key UNIQUE (reference),
    CONSTRAINT wishes_times CHECK (earliest IS NULL OR latest IS NULL OR earliest < latest)
);

CREATE UNIQUE INDEX wishes_one_active_per_email ON wishes (email_key)
    WHERE status IN ('pending_opt_in', 'waiting', 'offered') AND email_key IS NOT NULL;
CREATE UNIQUE INDEX wishes_one_active_per_customer_number ON wishes (customer_number_key)
    WHERE status IN ('pending_opt_in', 'waiting', 'offered') AND customer_number_key IS NOT NULL;
CREATE UNIQUE INDEX wishes_one_active_per_household_number ON wishes (household_number_key)
    WHERE status IN ('pending_opt_in', 'waiting', 'offered') AND household_number_key IS NOT NULL;
-- The queue: confirmed wishes of a location in order of registration.
CREATE INDEX wishes_queue ON wishes (location_id, registered_at, id) WHERE status IN ('waiting', 'offered');
CREATE INDEX wishes_pending_opt_in ON wishes (registered_at) WHERE status = 'pending_opt_in';
CREATE INDEX wishes_unannounced ON wishes (updated_at) WHERE NOT announced;
CREATE INDEX wishes_ended ON wishes (ended_at) WHERE ended_at IS NOT NULL AND erased_at IS NULL;

-- An offer: a freed slot held for one wish until `expires_at` (its hold row in `holds` has the same id).
CREATE TABLE waiting_offers (
    id             uuid PRIMARY KEY,
    wish_id        uuid NOT NULL REFERENCES wishes (id),
    status         text NOT NULL CHECK (status IN ('open', 'accepted', 'expired', 'withdrawn')),
    location_id    text NOT NULL,
    group_id       text NOT NULL,
    service_point  integer NOT NULL CHECK (service_point >= 1),
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL CHECK (end_at > start_at),
    evening        boolean NOT NULL DEFAULT false,
    expires_at     timestamptz NOT NULL,
    offered_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    -- Exactly one open offer per slot of a service point, whatever the replicas and the concurrency.
    CONSTRAINT waiting_offers_one_per_slot EXCLUDE USING gist (
        location_id WITH =,
        group_id WITH =,
        service_point WITH =,
        tstzrange(start_at, end_at, '[)') WITH &&
    ) WHERE (status = 'open')
);
CREATE UNIQUE INDEX waiting_offers_one_open_per_wish ON waiting_offers (wish_id) WHERE status = 'open';
CREATE INDEX waiting_offers_open_expiry ON waiting_offers (expires_at) WHERE status = 'open';
CREATE INDEX waiting_offers_by_wish ON waiting_offers (wish_id, start_at);

-- Capacity that became free and may be offered (cancellations, moves, new windows or service points,
-- offers that ended unanswered). An R38 hold that expired is not freed capacity: the slot was free before.
CREATE TABLE waiting_freed (
    id            bigserial PRIMARY KEY,
    location_id   text NOT NULL,
    group_id      text NOT NULL,
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('cancelled', 'rescheduled', 'capacity', 'offer_ended')),
    available_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    done_at       timestamptz
);
CREATE INDEX waiting_freed_due ON waiting_freed (location_id, available_at, id) WHERE done_at IS NULL;

-- A location's configuration changed while wishes wait there: the matcher compares old and new slots.
CREATE TABLE waiting_catalog_changes (
    id            bigserial PRIMARY KEY,
    location_id   text NOT NULL,
    old_snapshot  jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
CREATE INDEX waiting_catalog_changes_due ON waiting_catalog_changes (id) WHERE done_at IS NULL;

-- The advisory lock of one key of the one-appointment rule (first key "OTVw"); joining takes it too.
CREATE FUNCTION waiting_lock_key(kind text, key text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1330927223, hashtext(kind || ':' || key));
$$;

CREATE FUNCTION waiting_on_appointment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wish record;
    offer record;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'booked' THEN
            RETURN NULL;
        END IF;
        -- R5: a booked appointment and an active wish of one customer never stand side by side. The new
        -- appointment ends the wish (the customer has what they waited for), under the key locks that
        -- joining takes as well.
        IF NEW.email_key IS NOT NULL THEN PERFORM waiting_lock_key('e', NEW.email_key); END IF;
        IF NEW.customer_number_key IS NOT NULL THEN PERFORM waiting_lock_key('c', NEW.customer_number_key); END IF;
        IF NEW.household_number_key IS NOT NULL THEN PERFORM waiting_lock_key('h', NEW.household_number_key); END IF;
        FOR wish IN
            UPDATE wishes w SET status = 'booked', end_reason = 'booked', appointment_id = NEW.id,
                   ended_at = NEW.booked_at, updated_at = NEW.booked_at, revision = w.revision + 1,
                   announced = false
             WHERE w.status IN ('pending_opt_in', 'waiting', 'offered')
               AND ((NEW.email_key IS NOT NULL AND w.email_key = NEW.email_key)
                 OR (NEW.customer_number_key IS NOT NULL AND w.customer_number_key = NEW.customer_number_key)
                 OR (NEW.household_number_key IS NOT NULL AND w.household_number_key = NEW.household_number_key))
            RETURNING w.id
        LOOP
            FOR offer IN
                UPDATE waiting_offers o
                   SET status = CASE WHEN o.location_id = NEW.location_id AND o.group_id = NEW.group_id
                                      AND o.start_at = NEW.start_at THEN 'accepted' ELSE 'withdrawn' END,
                       ended_at = NEW.booked_at
                 WHERE o.wish_id = wish.id AND o.status = 'open'
                RETURNING o.id, o.status, o.location_id, o.group_id, o.start_at, o.end_at
            LOOP
                DELETE FROM holds WHERE id = offer.id;
                IF offer.status <> 'accepted' THEN
                    INSERT INTO waiting_freed (location_id, group_id, start_at, end_at, source, available_at, created_at)
                    VALUES (offer.location_id, offer.group_id, offer.start_at, offer.end_at, 'offer_ended',
                            NEW.booked_at, NEW.booked_at);
                END IF;
            END LOOP;
        END LOOP;
        RETURN NULL;
    END IF;
    -- An update: a cancelled or moved appointment frees its old time, if anybody waits at the location.
    IF OLD.status = 'booked' AND (NEW.status = 'cancelled'
        OR (NEW.status = 'booked' AND (NEW.start_at, NEW.end_at, NEW.group_id, NEW.service_point)
                                      IS DISTINCT FROM (OLD.start_at, OLD.end_at, OLD.group_id, OLD.service_point)))
       AND EXISTS (SELECT 1 FROM wishes WHERE location_id = OLD.location_id AND status IN ('waiting', 'offered'))
    THEN
        INSERT INTO waiting_freed (location_id, group_id, start_at, end_at, source, available_at, created_at)
        VALUES (OLD.location_id, OLD.group_id, OLD.start_at, OLD.end_at,
                CASE WHEN NEW.status = 'cancelled' THEN 'cancelled' ELSE 'rescheduled' END,
                NEW.updated_at, NEW.updated_at);
        PERFORM pg_notify(current_schema() || '_waiting', OLD.location_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER appointments_waiting_list
    AFTER INSERT OR UPDATE OF status, start_at, end_at, group_id, service_point ON appointments
    FOR EACH ROW EXECUTE FUNCTION waiting_on_appointment();

CREATE FUNCTION waiting_on_location() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wishes WHERE location_id = NEW.id AND status IN ('waiting', 'offered')) THEN
        INSERT INTO waiting_catalog_changes (location_id, old_snapshot) VALUES (OLD.id, OLD.snapshot);
        PERFORM pg_notify(current_schema() || '_waiting', NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER locations_waiting_list
    AFTER UPDATE OF revision ON locations
    FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision)
    EXECUTE FUNCTION waiting_on_location();
