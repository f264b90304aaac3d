-- exposures: one row per (tenant, experiment, variant, unit, conversation)
-- from `experiment.exposed`, with the first and last exposure time and how
-- often it was seen. The unit is `unit_id`, else the customer (the default
-- assignment unit, DESIGN.md "Experiments"). `first_for_unit` marks the
-- unit's first exposure to the experiment: the row an analysis counts
-- when it wants one observation per unit (GrowthBook's exposure rule).
CREATE VIEW exposures AS
WITH raw AS (
    SELECT tenant_id, experiment_key, variant_key, coalesce(unit_id, customer_id) AS unit_id,
           conversation_id, customer_id, occurred_at, event_id
    FROM exposure_events
),
grouped AS (
    SELECT tenant_id, experiment_key, variant_key, unit_id, conversation_id,
           min(customer_id) AS customer_id,
           min(occurred_at) AS first_exposed_at,
           max(occurred_at) AS last_exposed_at,
           count(*) AS exposures,
           min(event_id) AS first_event_id
    FROM raw
    GROUP BY tenant_id, experiment_key, variant_key, unit_id, conversation_id
)
SELECT
    tenant_id, experiment_key, variant_key, unit_id, conversation_id, customer_id,
    first_exposed_at, last_exposed_at, exposures,
    row_number() OVER (
        PARTITION BY tenant_id, experiment_key, unit_id ORDER BY first_exposed_at, first_event_id
    ) = 1 AS first_for_unit
FROM grouped
