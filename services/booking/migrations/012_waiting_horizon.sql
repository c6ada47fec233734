-- The waiting list (R45) and the booking horizon (R19): every midnight a new day (today + max_days) becomes
-- bookable at each location, and its slots are new capacity for the wishes waiting there, as a new window
-- would be. `last_day` is the last day of the horizon that the matcher has freed for the waiting wishes;
-- the row is locked while a replica frees the days after it, so that each day is freed once (I7).
CREATE TABLE waiting_horizon (
    location_id  text PRIMARY KEY,
    last_day     date,
    updated_at   timestamptz NOT NULL
);
