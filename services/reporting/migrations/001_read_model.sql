-- The reporting service's read model, kept from events only (it never reads another service's tables),
-- the daily Excel lists (R22) and the record of scheduled deletion (R33, R34).

-- Catalog snapshots: the newest per location (configuration only, no personal data). Names of groups
-- and concerns for the lists and statistics, and the windows for the offered capacity.
CREATE TABLE locations (
    location_id     text PRIMARY KEY,
    revision        integer NOT NULL,
    name            text NOT NULL,
    active          boolean NOT NULL,
    snapshot        jsonb NOT NULL,
    configured_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Offered capacity per location, group and Berlin day in minutes (windows x service points), written
-- from the snapshot in force: a later change of the windows does not rewrite a past day.
CREATE TABLE capacity_days (
    location_id     text NOT NULL,
    group_id        text NOT NULL,
    day             date NOT NULL,
    offered_minutes integer NOT NULL CHECK (offered_minutes >= 0),
    revision        integer NOT NULL,
    PRIMARY KEY (location_id, group_id, day)
);
CREATE INDEX capacity_days_day ON capacity_days (day);

-- The internal e-mail allow-list (R6): bookings from these are not suspicious in the pattern report.
CREATE TABLE allow_list (
    id              integer PRIMARY KEY CHECK (id = 1),
    revision        integer NOT NULL,
    entries         text[] NOT NULL
);

-- One row per appointment: the newest snapshot (by revision) and the facts of its life. The columns
-- under "personal data" are erased by the retention job (R34); everything else is what statistics keep.
CREATE TABLE appointments (
    id                   uuid PRIMARY KEY,
    revision             integer NOT NULL,
    status               text NOT NULL,
    location_id          text NOT NULL,
    location_name        text NOT NULL,
    group_id             text NOT NULL,
    service_point        integer NOT NULL,
    concern_id           text NOT NULL,
    concern_name         text NOT NULL,
    sensitive            boolean NOT NULL DEFAULT false,
    emergency            boolean NOT NULL DEFAULT false,
    start_at             timestamptz NOT NULL,
    end_at               timestamptz NOT NULL,
    day                  date NOT NULL,            -- the Berlin calendar day of start_at
    mode                 text NOT NULL,
    channel              text NOT NULL,
    language             text NOT NULL,
    evening              boolean NOT NULL DEFAULT false,
    interpreter_language text,
    booked_at            timestamptz NOT NULL,
    cancelled_at         timestamptz,
    cancelled_by         text,
    outcome              text,
    outcome_at           timestamptz,
    transferred_from     text,
    -- personal data (R34)
    reference            text,
    first_name           text,
    last_name            text,
    email                text,
    phone                text,
    customer_number      text,
    household_number     text,
    manage_url           text,
    cancel_reason        text,
    outcome_note         text,
    customer_key         text,                     -- keyed hash of the e-mail address (R48)
    email_domain         text,
    client_network       text,
    -- end of personal data
    anonymised_at        timestamptz,
    updated_at           timestamptz NOT NULL,
    -- An anonymised row can hold no personal data, whatever code writes it (I6).
    CONSTRAINT anonymised_rows_hold_no_personal_data CHECK (
        anonymised_at IS NULL OR num_nonnulls(
            reference, first_name, last_name, email, phone, customer_number, household_number,
            manage_url, cancel_reason, outcome_note, customer_key, email_domain, client_network
        ) = 0
    )
);
CREATE INDEX appointments_location_day ON appointments (location_id, day);
CREATE INDEX appointments_day ON appointments (day);
CREATE INDEX appointments_to_anonymise ON appointments (end_at) WHERE anonymised_at IS NULL;
CREATE INDEX appointments_customer_key ON appointments (customer_key) WHERE customer_key IS NOT NULL;
CREATE INDEX appointments_booked_at ON appointments (booked_at);

-- Every applied revision of an appointment, for "changes after booking" (R48): which event made it and
-- a keyed hash of the customer's data at that revision. Deleted with the personal data.
CREATE TABLE appointment_revisions (
    appointment_id  uuid NOT NULL,
    revision        integer NOT NULL,
    event_type      text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    customer_hash   text NOT NULL,
    PRIMARY KEY (appointment_id, revision)
);

-- Callback tickets (R23, directive 3.4: 48 hours). No personal data: ids, team and times.
CREATE TABLE callbacks (
    id              text PRIMARY KEY,
    appointment_id  uuid,
    location_id     text,
    group_id        text,
    created_at      timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    closed_at       timestamptz,
    status          text NOT NULL,
    revision        integer NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX callbacks_created ON callbacks (created_at);

-- Outcomes of mails (mail.sent / mail.failed); no address, no text.
CREATE TABLE mails (
    mail_id         uuid PRIMARY KEY,
    appointment_id  uuid NOT NULL,
    kind            text NOT NULL,
    outcome         text NOT NULL,
    reason          text,
    revision        integer NOT NULL,
    attempts        integer NOT NULL,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX mails_occurred ON mails (occurred_at);

-- The Excel day lists (R22): one row per location and day, claimed once across replicas (I7). The file
-- is kept here until its day is over (R33), then only the facts of its generation remain.
CREATE TABLE day_lists (
    location_id       text NOT NULL,
    day               date NOT NULL,
    created_at        timestamptz NOT NULL,
    generated_at      timestamptz,
    generation        integer NOT NULL DEFAULT 0,
    stale             boolean NOT NULL DEFAULT false,
    appointment_count integer,
    content           bytea,
    delete_after      timestamptz NOT NULL,
    deleted_at        timestamptz,
    PRIMARY KEY (location_id, day),
    CONSTRAINT deleted_lists_hold_no_file CHECK (deleted_at IS NULL OR content IS NULL)
);
CREATE INDEX day_lists_to_delete ON day_lists (delete_after) WHERE content IS NOT NULL;

-- Each generation of a list: who asked (schedule, change, demand), when, how many rows. No data.
CREATE TABLE day_list_runs (
    id                bigserial PRIMARY KEY,
    location_id       text NOT NULL,
    day               date NOT NULL,
    generation        integer NOT NULL,
    trigger           text NOT NULL,
    generated_at      timestamptz NOT NULL,
    appointment_count integer NOT NULL,
    bytes             integer NOT NULL,
    UNIQUE (location_id, day, generation)
);

-- The deletion report: every run of a retention job of every service (this one's directly, the others'
-- from `retention.run_completed`). Counts only.
CREATE TABLE retention_runs (
    id              bigserial PRIMARY KEY,
    service         text NOT NULL,
    job             text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    retention_days  integer NOT NULL,
    cutoff          timestamptz,
    counts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    event_id        uuid UNIQUE
);
CREATE INDEX retention_runs_finished ON retention_runs (finished_at);

-- When a periodic job last ran, so that several replicas run it once per interval (I7).
CREATE TABLE job_runs (
    job             text PRIMARY KEY,
    last_run_at     timestamptz NOT NULL
);
