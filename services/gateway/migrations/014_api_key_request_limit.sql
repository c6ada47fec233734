-- An API key's own request limit (R50): requests a minute per gateway replica, its burst derived from it
-- (services/gateway/staff/domain.py, key_allowance). NULL: the settings' default
-- (OTV_API_KEY_REQUESTS_PER_MINUTE, OTV_API_KEY_BURST). The bounds are the API's and the form's
-- (domain.KEY_REQUESTS_PER_MINUTE_MAX); this is the last line behind them.
ALTER TABLE api_keys
    ADD COLUMN requests_per_minute integer
        CONSTRAINT api_keys_requests_per_minute_range CHECK (requests_per_minute BETWEEN 1 AND 60000);
