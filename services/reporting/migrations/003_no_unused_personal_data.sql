-- Reporting keeps of a customer only what it shows or counts (R34, I6). Earlier versions also kept the
-- e-mail address (its keyed hash `customer_key` and `email_domain` are all the pattern report needs), the
-- manage link with its token (a credential that opens the appointment), staff's outcome note, the
-- cancellation reason, and the phone number of appointments in person. None was ever read: their values
-- go, and the phone number stays for phone appointments only (the day list's column).
--
-- The columns themselves stay for one release: during the rolling update the previous release's pods
-- still write them (deploy/README.md: remove columns a release later). A trigger empties them on every
-- write meanwhile, so nothing the old pods write is kept; the release after drops columns and trigger.
UPDATE appointments SET email = NULL, manage_url = NULL, cancel_reason = NULL, outcome_note = NULL
    WHERE num_nonnulls(email, manage_url, cancel_reason, outcome_note) > 0;
UPDATE appointments SET phone = NULL WHERE mode <> 'phone' AND phone IS NOT NULL;

CREATE FUNCTION keep_no_unused_personal_data() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := NULL;
    NEW.manage_url := NULL;
    NEW.cancel_reason := NULL;
    NEW.outcome_note := NULL;
    IF NEW.mode <> 'phone' THEN
        NEW.phone := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER keep_no_unused_personal_data BEFORE INSERT OR UPDATE ON appointments
    FOR EACH ROW EXECUTE FUNCTION keep_no_unused_personal_data();
