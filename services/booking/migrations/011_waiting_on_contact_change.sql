-- R5: a booked appointment and an active wish of one customer never stand side by side. Staff correcting
-- the e-mail address of a booked appointment (`appointment.contact_changed`) give it a new key of the
-- one-appointment rule; a wish of the same person waiting under that address (with another number, so
-- that no key met before) ends as it would had the appointment been booked under it: the matcher would
-- otherwise offer (and hold away from others) slots the person cannot book (`already_booked`). The
-- ending is announced as every one the database makes (`announce_ended`: waiting.fulfilled).
CREATE OR REPLACE FUNCTION waiting_on_appointment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wish record;
    offer record;
    end_time timestamptz;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.status = 'booked' THEN
        end_time := NEW.booked_at;
    ELSIF TG_OP = 'UPDATE' AND NEW.status = 'booked' AND OLD.status = 'booked' AND NEW.email_key IS NOT NULL
          AND NEW.email_key IS DISTINCT FROM OLD.email_key THEN
        end_time := NEW.updated_at;
    END IF;
    IF end_time IS NOT NULL THEN
        -- The appointment ends the wish (the customer has what they waited for), under the key locks that
        -- joining takes as well.
        IF NEW.email_key IS NOT NULL THEN PERFORM waiting_lock_key('e', NEW.email_key); END IF;
        IF NEW.customer_number_key IS NOT NULL THEN PERFORM waiting_lock_key('c', NEW.customer_number_key); END IF;
        IF NEW.household_number_key IS NOT NULL THEN PERFORM waiting_lock_key('h', NEW.household_number_key); END IF;
        FOR wish IN
            UPDATE wishes w SET status = 'booked', end_reason = 'booked', appointment_id = NEW.id,
                   ended_at = end_time, updated_at = end_time,
                   revision = w.revision + 1, announced = false
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
                       ended_at = end_time
                 WHERE o.wish_id = wish.id AND o.status = 'open'
                RETURNING o.id, o.status, o.location_id, o.group_id, o.service_point, o.start_at, o.end_at
            LOOP
                DELETE FROM holds WHERE id = offer.id;
                IF offer.status <> 'accepted' THEN
                    INSERT INTO waiting_freed (location_id, group_id, service_point, start_at, end_at, source,
                                               available_at, created_at)
                    VALUES (offer.location_id, offer.group_id, offer.service_point, offer.start_at, offer.end_at,
                            'offer_ended', end_time, end_time);
                END IF;
            END LOOP;
        END LOOP;
    END IF;
    IF TG_OP = 'INSERT' THEN
        RETURN NULL;
    END IF;
    -- An update: a cancelled or moved appointment frees its old time, if anybody waits at the location.
    IF OLD.status = 'booked' AND (NEW.status = 'cancelled'
        OR (NEW.status = 'booked' AND (NEW.start_at, NEW.end_at, NEW.group_id, NEW.service_point)
                                      IS DISTINCT FROM (OLD.start_at, OLD.end_at, OLD.group_id, OLD.service_point)))
       AND EXISTS (SELECT 1 FROM wishes WHERE location_id = OLD.location_id AND status IN ('waiting', 'offered'))
    THEN
        INSERT INTO waiting_freed (location_id, group_id, service_point, start_at, end_at, source, available_at,
                                   created_at)
        VALUES (OLD.location_id, OLD.group_id, OLD.service_point, OLD.start_at, OLD.end_at,
                CASE WHEN NEW.status = 'cancelled' THEN 'cancelled' ELSE 'rescheduled' END,
                NEW.updated_at, NEW.updated_at);
        PERFORM pg_notify(current_schema() || '_waiting', OLD.location_id);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER appointments_waiting_list ON appointments;
CREATE TRIGGER appointments_waiting_list
    AFTER INSERT OR UPDATE OF status, start_at, end_at, group_id, service_point, email_key ON appointments
    FOR EACH ROW EXECUTE FUNCTION waiting_on_appointment();
