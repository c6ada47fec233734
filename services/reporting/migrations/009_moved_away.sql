-- The day list (R22) of a location and day keeps an appointment moved away from it (rescheduled to
-- another day, or taken over by another location, R25), struck through with where it went: the team that
-- printed the list at 06:00 sees which one went and why. One row per appointment and old list, with the
-- old slot only; the name and numbers shown come from the appointment's row, so that they are erased with
-- it (R34), and the retention job deletes these rows with the rest.
CREATE TABLE moved_away (
    appointment_id  uuid NOT NULL,
    location_id     text NOT NULL,
    day             date NOT NULL,
    group_id        text NOT NULL,
    service_point   integer NOT NULL,
    start_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    revision        integer NOT NULL,   -- the revision that moved it away
    moved_at        timestamptz NOT NULL,
    PRIMARY KEY (appointment_id, location_id, day)
);
CREATE INDEX moved_away_list ON moved_away (location_id, day);
