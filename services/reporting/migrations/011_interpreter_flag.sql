-- R34, R26: an anonymised row keeps that an interpreter was needed (the statistics count it), not the
-- language (services/reporting/domain.py, ANONYMISED_INTERPRETER). The rows anonymised before lose it now;
-- the constraint holds every later write to it. NOT VALID: the rows were set just before, so the check of
-- the whole table (under a lock that stops the consumer meanwhile) would find nothing.
UPDATE appointments SET interpreter_language = 'erforderlich'
 WHERE anonymised_at IS NOT NULL AND interpreter_language IS NOT NULL AND interpreter_language <> 'erforderlich';
ALTER TABLE appointments ADD CONSTRAINT anonymised_rows_keep_no_interpreter_language
    CHECK (anonymised_at IS NULL OR interpreter_language IS NULL OR interpreter_language = 'erforderlich')
    NOT VALID;
