-- R45: an offer counts as missed only when its mail reached the customer. Booking hears of the offer
-- mail's outcome from the notifier (`mail.sent`, `mail.failed` of kind `waiting_offer`, consumer
-- `booking.mail`); such a mail names the wish and the wish's revision of the offer (`offered_revision`).
-- `mail_outcome` NULL: no report yet (none ever comes for a mail that was never planned).
ALTER TABLE waiting_offers ADD COLUMN offered_revision integer;
ALTER TABLE waiting_offers ADD COLUMN mail_outcome text CHECK (mail_outcome IN ('sent', 'failed'));
-- Open offers made before this release: the wish's revision is still the one of its offer, unless its
-- contact data changed since (then no report matches, and the offer counts as not delivered).
UPDATE waiting_offers o SET offered_revision = w.revision
  FROM wishes w WHERE w.id = o.wish_id AND o.status = 'open' AND w.status = 'offered';
CREATE INDEX waiting_offers_by_revision ON waiting_offers (wish_id, offered_revision);
