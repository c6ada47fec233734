-- How often a mail's end of data got no reply (the server may have taken it): its own count, so that a
-- temporary failure on the retry (a 421, a restart) does not wipe it from `last_error` and earn the mail a
-- further retry. One unknown outcome earns one late retry; the second gives the mail up.
ALTER TABLE mails ADD COLUMN unknown_outcomes smallint NOT NULL DEFAULT 0;
UPDATE mails SET unknown_outcomes = 1 WHERE status = 'pending' AND last_error = 'unknown_after_data';
