-- Every kind of mail the notifier plans. 'transferred' (R25, issue 8) was missing: the mail of a transfer
-- to the responsible location failed this check, and its event ended in the dead letters. 'manage_link':
-- the customer asked for the manage link again. tests/notifier/test_notifier_texts.py compares this list
-- with `MailKind`.
ALTER TABLE mails DROP CONSTRAINT mails_kind_check;
ALTER TABLE mails ADD CONSTRAINT mails_kind_check CHECK (kind IN (
    'confirmation', 'reminder', 'reschedule', 'cancellation', 'transferred', 'manage_link',
    'waiting_opt_in', 'waiting_confirmed', 'waiting_offer', 'waiting_offer_expired', 'waiting_expired',
    'waiting_withdrawn'
));
