-- Staff work (issue 8): outcomes (R23), callback tickets (R23, R49), call attempts (R49), the history of
-- an appointment's changes (R25), and mass changes (R20, R44).

-- R23: how an appointment ended; recorded once (a correction is explicit and kept in the history).
ALTER TABLE appointments
    ADD COLUMN outcome       text CHECK (outcome IN ('resolved', 'placement', 'callback', 'no_show')),
    ADD COLUMN outcome_note  text,
    ADD COLUMN outcome_at    timestamptz,
    ADD COLUMN outcome_by    text;

-- The day view of a location reads one day's appointments in order (R22, R27).
CREATE INDEX appointments_day_view ON appointments (location_id, start_at);

-- R25: every change staff make to an appointment, with where it was before. No personal data: ids,
-- places and times, and who (a staff account or API key, never a customer).
CREATE TABLE appointment_history (
    id              bigserial PRIMARY KEY,
    appointment_id  uuid NOT NULL,
    revision        integer NOT NULL,
    kind            text NOT NULL,
    location_id     text NOT NULL,
    group_id        text NOT NULL,
    concern_id      text NOT NULL,
    service_point   integer NOT NULL,
    start_at        timestamptz NOT NULL,
    end_at          timestamptz NOT NULL,
    status          text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor           text NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX appointment_history_of ON appointment_history (appointment_id, id);

-- R23, R49: callback tickets of a team (group) with the 48-hour promise.
CREATE TABLE callbacks (
    id              uuid PRIMARY KEY,
    appointment_id  uuid NOT NULL,
    location_id     text NOT NULL,
    group_id        text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('outcome', 'missed_call', 'transfer', 'promise')),
    status          text NOT NULL CHECK (status IN ('open', 'claimed', 'closed')),
    revision        integer NOT NULL DEFAULT 1,
    note            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    due_at          timestamptz NOT NULL,
    claimed_at      timestamptz,
    claimed_by      text,
    closed_at       timestamptz,
    closed_by       text,
    result          text
);
-- One ticket per appointment and reason: a repeated request opens no second one.
CREATE UNIQUE INDEX callbacks_one_per_reason ON callbacks (appointment_id, reason);
CREATE INDEX callbacks_queue ON callbacks (location_id, status, due_at);

-- R49: the call attempts of a phone appointment.
CREATE TABLE call_attempts (
    id              bigserial PRIMARY KEY,
    appointment_id  uuid NOT NULL,
    reached         boolean NOT NULL,
    note            text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    actor           text NOT NULL
);
CREATE INDEX call_attempts_of ON call_attempts (appointment_id, id);

-- R20, R44: a previewed mass change; applying it is keyed by its id, so it happens once.
CREATE TABLE mass_changes (
    id                  uuid PRIMARY KEY,
    location_id         text NOT NULL,
    day                 date NOT NULL,
    group_id            text,
    service_points_left integer NOT NULL,
    proposals           jsonb NOT NULL,
    created_at          timestamptz NOT NULL,
    created_by          text NOT NULL,
    applied_at          timestamptz,
    applied_by          text,
    result              jsonb
);
