-- The catalog: locations, service point groups, the central catalogue of concerns and their offers per
-- location, weekly time windows, closures, month-change blocks, lead times, the internal e-mail
-- allow-list, the responsibility finder's tables, policy approvals and the change log.

-- A location (Geschäftsstelle, the Jugendberufsagentur). `revision` counts the published snapshots;
-- `snapshot_hash` is the hash of the last published one, so that an unchanged configuration publishes
-- nothing (load-demo twice, a PUT of the same values).
CREATE TABLE locations (
    id                text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,31}$'),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    street            text NOT NULL CHECK (length(street) BETWEEN 1 AND 120),
    postcode          text NOT NULL CHECK (postcode ~ '^[0-9]{5}$'),
    city              text NOT NULL DEFAULT 'Bremen' CHECK (length(city) BETWEEN 1 AND 80),
    phone             text CHECK (length(phone) <= 40),
    hotline           text NOT NULL CHECK (length(hotline) BETWEEN 1 AND 40),
    active            boolean NOT NULL DEFAULT true,
    sort_order        integer NOT NULL DEFAULT 100,
    -- Lead time (R19): bookings at least this many minutes ahead and at most this many days ahead.
    -- The 06:00 cutoff of directive 2.3 is fixed and not stored.
    lead_min_minutes  integer NOT NULL DEFAULT 0 CHECK (lead_min_minutes BETWEEN 0 AND 20160),
    lead_max_days     integer NOT NULL DEFAULT 56 CHECK (lead_max_days BETWEEN 1 AND 56),
    -- Month-change block (R18): the last / first days of a month in which only emergency concerns are
    -- bookable. Each part is capped here as in the event contract; the sum (at most 3, directive 3.3)
    -- is refused by the admin API and reported by the policy check (R21), so that data that came in
    -- another way is shown rather than breaking every snapshot of the location.
    block_last_days   integer CHECK (block_last_days BETWEEN 0 AND 3),
    block_first_days  integer CHECK (block_first_days BETWEEN 0 AND 3),
    revision          bigint NOT NULL DEFAULT 0 CHECK (revision >= 0),
    snapshot_hash     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((block_last_days IS NULL) = (block_first_days IS NULL))
);

-- A service point group (Serviceplatzgruppe, R13); its service points are capacity units, not people.
CREATE TABLE service_point_groups (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,47}$'),
    location_id     text NOT NULL REFERENCES locations (id),
    kind            text NOT NULL CHECK (kind IN ('entrance_zone', 'benefits_team', 'jba_entrance_zone')),
    name            jsonb NOT NULL CHECK (jsonb_typeof(name) = 'object' AND name ? 'de'),
    service_points  integer NOT NULL CHECK (service_points BETWEEN 0 AND 200),
    active          boolean NOT NULL DEFAULT true,
    sort_order      integer NOT NULL DEFAULT 100,
    UNIQUE (location_id, id)
);

-- The central catalogue of concerns (R14), kept by administrators. Texts per language
-- {"de": ..., "en": ..., "de-x-ls": ...}; German is always present.
CREATE TABLE concerns (
    id                        text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,47}$'),
    group_kinds               text[] NOT NULL CHECK (
        cardinality(group_kinds) >= 1
        AND group_kinds <@ ARRAY['entrance_zone', 'benefits_team', 'jba_entrance_zone']::text[]),
    name                      jsonb NOT NULL CHECK (jsonb_typeof(name) = 'object' AND name ? 'de'),
    info                      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(info) = 'object'),
    links                     jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(links) = 'array'),
    documents                 jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(documents) = 'array'),
    emergency                 boolean NOT NULL DEFAULT false,
    sensitive                 boolean NOT NULL DEFAULT false,
    default_duration_minutes  integer NOT NULL DEFAULT 20 CHECK (default_duration_minutes BETWEEN 5 AND 240),
    active                    boolean NOT NULL DEFAULT true,
    sort_order                integer NOT NULL DEFAULT 100
);

-- A concern offered at a location by one of its groups, with the duration there (R16) and the modes.
-- The composite foreign key makes sure the group belongs to the same location.
CREATE TABLE offers (
    location_id       text NOT NULL REFERENCES locations (id),
    concern_id        text NOT NULL REFERENCES concerns (id),
    group_id          text NOT NULL,
    duration_minutes  integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 240),
    modes             text[] NOT NULL CHECK (
        cardinality(modes) >= 1 AND modes <@ ARRAY['in_person', 'phone']::text[]),
    active            boolean NOT NULL DEFAULT true,
    PRIMARY KEY (location_id, concern_id),
    FOREIGN KEY (location_id, group_id) REFERENCES service_point_groups (location_id, id)
);
CREATE INDEX offers_group ON offers (group_id);

-- Weekly time windows of a group (Berlin wall clock). Two windows of one group never overlap on the
-- same weekday within overlapping validity, otherwise the group's capacity would count twice.
CREATE TABLE windows (
    id              bigserial PRIMARY KEY,
    group_id        text NOT NULL REFERENCES service_point_groups (id) ON DELETE CASCADE,
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_time      time NOT NULL,
    end_time        time NOT NULL,
    service_points  integer NOT NULL CHECK (service_points >= 1),
    -- R12: reserved for people in work or in a measure.
    evening         boolean NOT NULL DEFAULT false,
    valid_from      date,
    valid_until     date,
    CHECK (end_time > start_time),
    CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_until >= valid_from),
    EXCLUDE USING gist (
        group_id WITH =,
        weekday WITH =,
        tsrange(DATE '2000-01-03' + start_time, DATE '2000-01-03' + end_time) WITH &&,
        daterange(valid_from, valid_until, '[]') WITH &&
    )
);

-- One-off closures of a whole location or of one group.
CREATE TABLE closures (
    id           bigserial PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations (id),
    group_id     text,
    first_day    date NOT NULL,
    last_day     date NOT NULL,
    reason       text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    CHECK (last_day >= first_day),
    FOREIGN KEY (location_id, group_id) REFERENCES service_point_groups (location_id, id) ON DELETE CASCADE
);
CREATE INDEX closures_location ON closures (location_id, first_day);

-- Prior approvals of a restriction of the windows of directive 3.3 (R21), recorded so that the policy
-- check can show an approved shortfall as such.
CREATE TABLE policy_approvals (
    id           bigserial PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations (id),
    rule         text NOT NULL CHECK (rule IN ('R17')),
    reference    text NOT NULL CHECK (length(reference) BETWEEN 1 AND 120),
    approved_by  text NOT NULL CHECK (length(approved_by) BETWEEN 1 AND 120),
    valid_from   date NOT NULL,
    valid_until  date NOT NULL,
    note         text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    recorded_by  text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until >= valid_from)
);

-- Internal e-mail addresses that may book any number of times (R6); `@domain` allows a whole domain.
CREATE TABLE allow_list (
    entry     text PRIMARY KEY CHECK (
        entry = lower(entry) AND length(entry) <= 254
        AND entry ~ '^([^@[:space:]]+@|@)[^@[:space:]]+\.[^@[:space:]]+$'),
    note      text NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    added_by  text,
    added_at  timestamptz NOT NULL DEFAULT now()
);
-- The allow-list's revision: one row, upserted with +1 in every change's transaction.
CREATE TABLE allow_list_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision   bigint NOT NULL DEFAULT 0,
    list_hash  text
);

-- Responsibility finder (R3): other jobcenters, the postcodes of their areas, and the street table.
CREATE TABLE other_jobcenters (
    id        text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,47}$'),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    hotline   text NOT NULL CHECK (length(hotline) BETWEEN 1 AND 40),
    address   text NOT NULL DEFAULT '',
    website   text NOT NULL DEFAULT '',
    verified  boolean NOT NULL DEFAULT false
);

CREATE TABLE finder_postcodes (
    postcode            text PRIMARY KEY CHECK (postcode ~ '^[0-9]{5}$'),
    municipality        text NOT NULL,
    other_jobcenter_id  text NOT NULL REFERENCES other_jobcenters (id) ON DELETE CASCADE
);

-- A street (or a house-number range of it) and who is responsible: a location of Jobcenter Bremen or
-- another jobcenter. `street_key` is the normalised name the finder looks up.
CREATE TABLE finder_streets (
    id                  bigserial PRIMARY KEY,
    street              text NOT NULL CHECK (length(street) BETWEEN 1 AND 100),
    street_key          text NOT NULL CHECK (street_key ~ '^[a-z0-9]+$'),
    postcode            text CHECK (postcode ~ '^[0-9]{5}$'),
    first_number        integer CHECK (first_number >= 1),
    last_number         integer CHECK (last_number >= 1),
    parity              text NOT NULL DEFAULT 'all' CHECK (parity IN ('all', 'odd', 'even')),
    district            text NOT NULL DEFAULT '',
    location_id         text REFERENCES locations (id),
    other_jobcenter_id  text REFERENCES other_jobcenters (id) ON DELETE CASCADE,
    CHECK (num_nonnulls(location_id, other_jobcenter_id) = 1),
    CHECK (first_number IS NULL OR last_number IS NULL OR last_number >= first_number)
);
CREATE INDEX finder_streets_key ON finder_streets (street_key);

-- Who changed what (the optional X-OTV-Staff header until the gateway signs staff identities).
CREATE TABLE change_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    staff        text,
    action       text NOT NULL,
    entity       text NOT NULL,
    entity_id    text NOT NULL,
    location_id  text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX change_log_location ON change_log (location_id, at);

-- Small facts of the service itself, such as the version of the demo data last loaded.
CREATE TABLE catalog_meta (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
