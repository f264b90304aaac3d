-- team_hourly_rates: the tenant setting "hourly labour rate per team" as a
-- relation, so that `labor_cost` stays plain SQL. Empty by default: the
-- session that knows the tenant's settings replaces it (deregister this
-- view, register a table with the same columns). A row with team NULL is
-- the tenant's default rate for teams without a row of their own.
CREATE VIEW team_hourly_rates AS
SELECT
    CAST(NULL AS VARCHAR) AS tenant_id,
    CAST(NULL AS VARCHAR) AS team,
    CAST(NULL AS DOUBLE) AS hourly_rate,
    CAST(NULL AS VARCHAR) AS currency
WHERE false
