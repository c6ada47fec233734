-- A change counter per location for the availability cache of every replica (issue 10).
--
-- Whatever changes what occupies a service point (a booking, a cancellation, a move, a hold, a cool-down,
-- an offer of the waiting list, a deleted hold) bumps the counter of its location in the same transaction,
-- by the triggers below, so that no code path can forget it. A replica serves availability from its cache
-- only while the counter (and the catalog revision) it computed the answer with is still the current one;
-- one primary-key read tells. The counter is spread over 8 rows per location, chosen by the transaction
-- id, so that concurrent bookings of one location rarely wait for each other's commit here, and all
-- changes of one transaction land on the same row (no lock-order deadlock between two transactions).
-- The sum over the rows only grows, so any committed change changes it.
CREATE TABLE occupancy_changes (
    location_id  text NOT NULL,
    shard        smallint NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (location_id, shard)
);

CREATE FUNCTION bump_occupancy(location text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO occupancy_changes AS c (location_id, shard, version)
    VALUES (location, (pg_current_xact_id()::text::bigint % 8)::smallint, 1)
    ON CONFLICT (location_id, shard) DO UPDATE SET version = c.version + 1
$$;

CREATE FUNCTION occupancy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM bump_occupancy(OLD.location_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.location_id IS DISTINCT FROM OLD.location_id) THEN
        PERFORM bump_occupancy(NEW.location_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER appointments_occupancy_inserted_or_deleted AFTER INSERT OR DELETE ON appointments
    FOR EACH ROW EXECUTE FUNCTION occupancy_changed();
-- Only what availability reads: whether the row counts (cancelled or not) and where and when it lies.
-- Passing (booked -> passed) and the erasure of personal data (R34) change nothing here.
CREATE TRIGGER appointments_occupancy_updated AFTER UPDATE ON appointments
    FOR EACH ROW
    WHEN ((OLD.status = 'cancelled') IS DISTINCT FROM (NEW.status = 'cancelled')
          OR OLD.location_id IS DISTINCT FROM NEW.location_id
          OR OLD.group_id IS DISTINCT FROM NEW.group_id
          OR OLD.service_point IS DISTINCT FROM NEW.service_point
          OR OLD.start_at IS DISTINCT FROM NEW.start_at
          OR OLD.end_at IS DISTINCT FROM NEW.end_at)
    EXECUTE FUNCTION occupancy_changed();
CREATE TRIGGER holds_occupancy_changed AFTER INSERT OR UPDATE OR DELETE ON holds
    FOR EACH ROW EXECUTE FUNCTION occupancy_changed();
