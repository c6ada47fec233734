-- Evening appointments as a dimension of the statistics (R12, R35, directive 3.3): the part of a day's
-- offered minutes that lies in evening windows. NULL for the days written before, which are unknown: the
-- evening utilisation of a period holding such a day is not shown (rather none than a wrong one).
ALTER TABLE capacity_days ADD COLUMN evening_minutes integer CHECK (evening_minutes >= 0);
-- The days ahead follow the newest snapshot anyway: written again by the scheduler's next tick, with the
-- evening part (today's rows stay: the day list of today finds its locations by them).
DELETE FROM capacity_days WHERE day > (now() AT TIME ZONE 'Europe/Berlin')::date;
DELETE FROM job_runs WHERE job = 'capacity';
