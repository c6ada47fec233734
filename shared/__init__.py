"""The project's common package: what every OTV service uses (settings, logging, clock, errors, web
basics, database access, the event envelope, the outbox relay and the consumer base)."""
