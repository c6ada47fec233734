-- A list downloaded for a day after today is no longer kept (R33): it was stored, with the customers'
-- data, until its day was over (up to 90 days) and built again on every change. Files kept so far go;
-- the row goes back to "not generated", so the day's own list is still made at 06:00 (R22). The facts of
-- earlier generations stay in `day_list_runs`.
UPDATE day_lists SET content = NULL, generated_at = NULL, stale = false, appointment_count = NULL
WHERE day > (now() AT TIME ZONE 'Europe/Berlin')::date AND deleted_at IS NULL;
