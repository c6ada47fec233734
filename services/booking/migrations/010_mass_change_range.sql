-- R44: a mass change covers the days `day`..`last_day` (a closure of several days: one notice per
-- customer, never a move into the rest of the closure). Empty on the previews of before: one day.
ALTER TABLE mass_changes ADD COLUMN last_day date;
ALTER TABLE mass_changes ADD CONSTRAINT mass_changes_range CHECK (last_day IS NULL OR last_day >= day);
