-- R48: the network a booking came from (an IPv4 /24 or IPv6 /48 prefix, never the full address), for the
-- booking-pattern report; NULL for staff and service-centre bookings. Personal data: deleted with the rest.
ALTER TABLE appointments ADD COLUMN client_network text;
