-- exposure_events: the `experiment.exposed` events, the columns that
-- `exposures` reads. A view of its own so that a session can put a kept
-- copy of these rows in its place and build `exposures` on that.
CREATE VIEW exposure_events AS
SELECT tenant_id, experiment_key, variant_key, unit_id, conversation_id, customer_id, occurred_at, event_id
FROM events
WHERE type = 'experiment.exposed'
