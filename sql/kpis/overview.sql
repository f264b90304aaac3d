-- KPI overview: every key of the DESIGN.md KPI glossary for one window.
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- both UTC instants (the caller turns the tenant's local dates into
-- instants, so a local day across a DST change is 23 or 25 hours long).
--
-- Cohort rule: conversation KPIs are over conversations *started* in the
-- window (`conversations.started_at`), whatever happened to them later.
-- Three keys are about time, not conversations, and use the window as a
-- time range instead: `repurchase_rate` (orders placed in the window),
-- `labor_cost` (online agent time inside the window) and the
-- `cost.incurred` part of `cost_per_conversation` (costs incurred in the
-- window); their per-conversation denominators still use the cohort.
--
-- Output, one row per (kpi, measure, segment):
--   kpi      the API key (`frt_s`, `csat`, ...)
--   measure  `value` for rates and counts; `mean`, `median`, `p90` for
--            durations; extra measures where the glossary asks for them
--   segment  `all`; or the bot / human split of `response_s`, the score of
--            the CSAT distribution, the currency of money KPIs
--   value    DOUBLE: seconds, fractions in [0, 1], counts or money;
--            NULL when the denominator is 0 (an empty window)
--   n        the number of conversations behind the value (customers for
--            `repurchase_rate`)
--
-- Durations: mean = avg(); median = median() (exact, mean of the two
-- middle values for an even count); p90 = percentile_cont(x, 0.9), exact,
-- linear interpolation between closest ranks (PostgreSQL's
-- percentile_cont). Both hold every value in memory; the rollups of issue
-- 3 item 5 replace them with sketches at scale.
WITH bounds AS (
    SELECT
        from_at,
        to_at,
        arrow_cast(from_at, 'Int64') AS from_us,
        arrow_cast(to_at, 'Int64') AS to_us,
        -- now() is in nanoseconds: bring it to the unit of every other timestamp
        arrow_cast(arrow_cast(now(), 'Timestamp(Microsecond, Some("UTC"))'), 'Int64') AS now_us
    FROM (
        SELECT
            arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
            arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at
    )
),
cohort AS (
    SELECT c.*
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
cohort_messages AS (
    SELECT m.*
    FROM messages m
    JOIN cohort c ON c.tenant_id = m.tenant_id AND c.conversation_id = m.conversation_id
),
durations AS (
    SELECT 'frt_s' AS kpi, 'all' AS segment, frt_s AS v, tenant_id, conversation_id FROM cohort WHERE frt_s IS NOT NULL
    UNION ALL
    SELECT 'human_frt_s', 'all', human_frt_s, tenant_id, conversation_id FROM cohort WHERE human_frt_s IS NOT NULL
    UNION ALL
    SELECT 'handling_s', 'all', handling_s, tenant_id, conversation_id FROM cohort WHERE handling_s IS NOT NULL
    UNION ALL
    SELECT 'response_s', 'all', turn_response_s, tenant_id, conversation_id
    FROM cohort_messages WHERE turn_response_s IS NOT NULL
    UNION ALL
    SELECT 'response_s', CASE turn_reply_sender WHEN 'agent' THEN 'human' ELSE turn_reply_sender END,
           turn_response_s, tenant_id, conversation_id
    FROM cohort_messages WHERE turn_response_s IS NOT NULL
),
duration_keys (kpi, segment) AS (
    VALUES ('frt_s', 'all'), ('human_frt_s', 'all'), ('handling_s', 'all'),
           ('response_s', 'all'), ('response_s', 'bot'), ('response_s', 'human')
),
duration_stats AS (
    SELECT k.kpi, k.segment, s.mean, s.median, s.p90, coalesce(s.n, 0) AS n
    FROM duration_keys k
    LEFT JOIN (
        SELECT kpi, segment, avg(v) AS mean, median(v) AS median, percentile_cont(v, 0.9) AS p90,
               count(DISTINCT tenant_id || '/' || conversation_id) AS n
        FROM durations
        GROUP BY kpi, segment
    ) s ON s.kpi = k.kpi AND s.segment = k.segment
),
rates AS (
    SELECT
        count(*) AS conversations,
        count(*) FILTER (WHERE sla_met) AS sla_met_n,
        count(sla_met) AS sla_n,
        count(*) FILTER (WHERE is_resolved) AS resolved_n,
        count(*) FILTER (WHERE resolves > 0) AS ever_resolved_n,
        count(*) FILTER (WHERE resolves > 0 AND reopened_within_7d) AS reopened_n,
        count(*) FILTER (WHERE bot_replies > 0) AS bot_replied_n,
        count(*) FILTER (WHERE bot_replies > 0 AND handoffs > 0) AS transferred_n,
        count(*) FILTER (WHERE bot_only) AS bot_only_n,
        count(*) FILTER (WHERE attributed_orders > 0) AS converted_n,
        count(*) FILTER (WHERE agent_replies > 0) AS human_handled_n,
        coalesce(sum(agent_replies), 0) AS agent_replies_n,
        coalesce(sum(copilot_replies), 0) AS copilot_replies_n,
        count(csat_score) AS csat_n,
        avg(csat_score) AS csat_mean,
        count(*) FILTER (WHERE csat_score >= 4) AS csat_top2_n,
        count(*) FILTER (WHERE csat_requested) AS csat_requested_n,
        count(*) FILTER (WHERE csat_requested AND csat_score IS NOT NULL) AS csat_answered_n
    FROM cohort
),
replying_agents AS (
    SELECT count(DISTINCT tenant_id || '/' || agent_id) AS agents
    FROM cohort_messages
    WHERE is_reply AND sender = 'agent'
),
csat_scores (score) AS (VALUES (1), (2), (3), (4), (5)),
csat_distribution AS (
    SELECT s.score, count(c.conversation_id) AS n
    FROM csat_scores s
    LEFT JOIN cohort c ON c.csat_score = s.score
    GROUP BY s.score
),
cohort_orders AS (
    SELECT o.*
    FROM orders o
    JOIN cohort c ON c.tenant_id = o.tenant_id AND c.conversation_id = o.attributed_conversation_id
),
aov AS (
    SELECT currency, CAST(sum(net_amount) AS DOUBLE) AS net_amount, count(*) AS orders,
           count(DISTINCT tenant_id || '/' || attributed_conversation_id) AS n
    FROM cohort_orders
    GROUP BY currency
),
customer_orders AS (
    SELECT o.tenant_id, o.customer_id, count(*) AS orders
    FROM orders o
    CROSS JOIN bounds b
    WHERE o.placed_at >= b.from_at AND o.placed_at < b.to_at AND o.customer_id IS NOT NULL
    GROUP BY o.tenant_id, o.customer_id
),
repurchase AS (
    SELECT count(*) FILTER (WHERE orders >= 2) AS repeat_customers, count(*) AS customers
    FROM customer_orders
),
-- online time inside the window; a still-open interval counts up to the
-- window end or now, whichever is earlier
online AS (
    SELECT
        s.tenant_id,
        s.team,
        sum(
            least(coalesce(arrow_cast(s.ended_at, 'Int64'), b.now_us), b.to_us)
            - greatest(arrow_cast(s.started_at, 'Int64'), b.from_us)
        ) / 3600000000.0 AS hours
    FROM agent_sessions s
    CROSS JOIN bounds b
    WHERE arrow_cast(s.started_at, 'Int64') < b.to_us
        AND least(coalesce(arrow_cast(s.ended_at, 'Int64'), b.now_us), b.to_us) > b.from_us
    GROUP BY s.tenant_id, s.team
),
online_rated AS (
    SELECT o.hours, coalesce(t.hourly_rate, d.hourly_rate) AS hourly_rate, coalesce(t.currency, d.currency) AS currency
    FROM online o
    LEFT JOIN team_hourly_rates t ON t.tenant_id = o.tenant_id AND t.team = o.team
    LEFT JOIN team_hourly_rates d ON d.tenant_id = o.tenant_id AND d.team IS NULL
),
online_total AS (
    SELECT coalesce(sum(hours), 0) AS hours,
           coalesce(sum(hours) FILTER (WHERE hourly_rate IS NULL), 0) AS unrated_hours
    FROM online_rated
),
labor AS (
    SELECT currency, sum(hours * hourly_rate) AS cost
    FROM online_rated
    WHERE hourly_rate IS NOT NULL
    GROUP BY currency
),
other_costs AS (
    SELECT e.currency, CAST(sum(e.amount) AS DOUBLE) AS cost
    FROM events e
    CROSS JOIN bounds b
    WHERE e.type = 'cost.incurred' AND e.occurred_at >= b.from_at AND e.occurred_at < b.to_at
    GROUP BY e.currency
),
total_costs AS (
    SELECT coalesce(l.currency, x.currency) AS currency,
           coalesce(l.cost, 0) + coalesce(x.cost, 0) AS cost
    FROM labor l
    FULL OUTER JOIN other_costs x ON x.currency = l.currency
)
SELECT 'conversations' AS kpi, 'value' AS measure, 'all' AS segment,
       CAST(conversations AS DOUBLE) AS value, conversations AS n
FROM rates
UNION ALL SELECT kpi, 'mean', segment, mean, n FROM duration_stats
UNION ALL SELECT kpi, 'median', segment, median, n FROM duration_stats
UNION ALL SELECT kpi, 'p90', segment, p90, n FROM duration_stats
UNION ALL SELECT 'sla_attainment', 'value', 'all', CAST(sla_met_n AS DOUBLE) / NULLIF(sla_n, 0), sla_n FROM rates
UNION ALL SELECT 'csat', 'mean', 'all', csat_mean, csat_n FROM rates
UNION ALL SELECT 'csat', 'top2_share', 'all', CAST(csat_top2_n AS DOUBLE) / NULLIF(csat_n, 0), csat_n FROM rates
UNION ALL SELECT 'csat', 'response_rate', 'all', CAST(csat_answered_n AS DOUBLE) / NULLIF(csat_requested_n, 0),
       csat_requested_n FROM rates
UNION ALL SELECT 'csat', 'share', CAST(d.score AS VARCHAR), CAST(d.n AS DOUBLE) / NULLIF(r.csat_n, 0), d.n
FROM csat_distribution d CROSS JOIN rates r
UNION ALL SELECT 'resolution_rate', 'value', 'all', CAST(resolved_n AS DOUBLE) / NULLIF(conversations, 0), conversations
FROM rates
UNION ALL SELECT 'reopen_rate', 'value', 'all', CAST(reopened_n AS DOUBLE) / NULLIF(ever_resolved_n, 0), ever_resolved_n
FROM rates
UNION ALL SELECT 'transfer_rate', 'value', 'all', CAST(transferred_n AS DOUBLE) / NULLIF(bot_replied_n, 0), bot_replied_n
FROM rates
UNION ALL SELECT 'automation_rate', 'value', 'all', CAST(bot_only_n AS DOUBLE) / NULLIF(conversations, 0), conversations
FROM rates
UNION ALL SELECT 'conversion_rate', 'value', 'all', CAST(converted_n AS DOUBLE) / NULLIF(conversations, 0), conversations
FROM rates
UNION ALL SELECT 'aov', 'value', currency, net_amount / orders, n FROM aov
UNION ALL SELECT 'aov', 'orders', currency, CAST(orders AS DOUBLE), n FROM aov
UNION ALL SELECT 'aov', 'net_amount', currency, net_amount, n FROM aov
UNION ALL SELECT 'repurchase_rate', 'value', 'all', CAST(repeat_customers AS DOUBLE) / NULLIF(customers, 0), customers
FROM repurchase
UNION ALL SELECT 'conversations_per_agent', 'value', 'all', CAST(r.human_handled_n AS DOUBLE) / NULLIF(a.agents, 0),
       r.human_handled_n
FROM rates r CROSS JOIN replying_agents a
UNION ALL SELECT 'conversations_per_agent', 'per_online_hour', 'all',
       CAST(r.human_handled_n AS DOUBLE) / NULLIF(o.hours, 0), r.human_handled_n
FROM rates r CROSS JOIN online_total o
UNION ALL SELECT 'copilot_adoption', 'value', 'all', CAST(copilot_replies_n AS DOUBLE) / NULLIF(agent_replies_n, 0),
       human_handled_n
FROM rates
UNION ALL SELECT 'labor_cost', 'online_hours', 'all', o.hours, r.conversations FROM online_total o CROSS JOIN rates r
UNION ALL SELECT 'labor_cost', 'unrated_hours', 'all', o.unrated_hours, r.conversations FROM online_total o CROSS JOIN rates r
UNION ALL SELECT 'labor_cost', 'value', l.currency, l.cost, r.conversations FROM labor l CROSS JOIN rates r
UNION ALL SELECT 'cost_per_conversation', 'value', t.currency, t.cost / NULLIF(r.conversations, 0), r.conversations
FROM total_costs t CROSS JOIN rates r
