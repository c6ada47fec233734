-- Reporting keeps of a customer only what it shows or counts (R34, I6). Earlier versions also kept the
-- e-mail address (its keyed hash `customer_key` and `email_domain` are all the pattern report needs), the
-- manage link with its token (a credential that opens the appointment), staff's outcome note, the
-- cancellation reason, and the phone number of appointments in person. None was ever read: the columns
-- go with their values, and the phone number stays for phone appointments only (the day list's column).
UPDATE appointments SET phone = NULL WHERE mode <> 'phone' AND phone IS NOT NULL;

-- Dropping a column drops the CHECK that names it; it comes back over the columns that remain.
ALTER TABLE appointments DROP CONSTRAINT anonymised_rows_hold_no_personal_data;
ALTER TABLE appointments
    DROP COLUMN email,
    DROP COLUMN manage_url,
    DROP COLUMN cancel_reason,
    DROP COLUMN outcome_note;
ALTER TABLE appointments ADD CONSTRAINT anonymised_rows_hold_no_personal_data CHECK (
    anonymised_at IS NULL OR num_nonnulls(
        reference, first_name, last_name, phone, customer_number, household_number,
        customer_key, email_domain, client_network
    ) = 0
);
