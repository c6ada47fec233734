-- The customer's manage link with its secret token (R41), kept while the appointment is booked: a change
-- by staff carries only the bare manage page (booking keeps a hash of the token, not the token), and the
-- reminder or reschedule mail after it must still give the customer a link that works. Wiped when the
-- appointment is cancelled or passed, or its personal data are erased (R34).
ALTER TABLE appointments ADD COLUMN manage_url text;
