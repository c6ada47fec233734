-- A rotated signing secret keeps signing for a day (docs/webhooks.md, "Rotating the secret"): every
-- request carries a signature with the new secret and one with the previous secret until
-- `previous_secret_until`, so the receiving system can switch to the new one when it is ready.
ALTER TABLE webhook_subscriptions
    ADD COLUMN previous_secret        text,
    ADD COLUMN previous_secret_until  timestamptz,
    ADD CONSTRAINT webhook_subscriptions_previous_secret
        CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL));
