-- Why the system cancelled an appointment (`appointment.cancelled`: `reason_code`), and with
-- `handed_over` the name of the location that took the concern over (`handed_to`). A hand-over (R25: a
-- transfer without a free slot, the concern goes to a callback there) is counted apart, not as a
-- cancellation by staff. Configuration words and codes only, no personal data. Cancellations applied
-- before keep NULL and count as before.
ALTER TABLE appointments ADD COLUMN cancel_code text, ADD COLUMN handed_to text;
