-- tenant_settings: the reporting settings the other views read, one row.
-- This file holds the defaults; the service puts each tenant's own row in
-- its place (PUT /v1/settings), so analysts' SQL and the KPIs agree.
-- * attribution_window: how long before an order a conversation may take
--   its credit (`orders`, window attribution); default 7 days.
-- * sla_target_us: the first-reply target of `conversations.sla_met`, in
--   microseconds; default 120 s.
-- * time_zone: the IANA zone of local hours (`sql/analyses/traffic.sql`);
--   default UTC.
CREATE VIEW tenant_settings AS
SELECT
    INTERVAL '7 days' AS attribution_window,
    CAST(120000000 AS BIGINT) AS sla_target_us,
    'UTC' AS time_zone
