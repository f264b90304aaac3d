-- Channels: conversion, CSAT, first response time and direct cost per
-- conversation of each channel next to the tenant's overall, so managers
-- see which channel sells, pleases, answers fast and costs.
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- UTC instants. Cohort rule: conversations *started* in the window.
--
-- One row per (scope, channel, metric, currency); scope `channel` (one
-- row set per channel, NULL = conversations whose channel is unknown) or
-- `tenant` (all conversations of the cohort, channel NULL):
--   conversion_rate        n = conversations, successes = conversations
--                          with an attributed order, value = their share
--   csat                   n = scores, value = mean, sd = sample sd
--   frt_s                  n = conversations with a first reply, value =
--                          mean FRT, sd, median (seconds)
--   cost_per_conversation  per currency: n = conversations, value = mean
--                          direct cost per conversation, sd. The direct
--                          cost of a conversation is the sum of the
--                          `cost.incurred` events naming it and incurred in
--                          the window (channel fees, AI usage); a
--                          conversation without any costs 0. Labour and
--                          costs naming no conversation belong to no
--                          channel: they are in `/v1/kpis`
--                          cost_per_conversation, not here.
-- n, mean and sd are what a two-sample test needs: the API compares each
-- channel with the rest of the tenant (tenant minus channel; a channel
-- differs from the overall exactly when it differs from the rest, and the
-- two samples are then independent) by a two-proportion z-test for
-- conversion_rate and Welch's t-test for the means.
WITH bounds AS (
    SELECT
        arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
        arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at
),
cohort AS (
    SELECT c.*
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
-- text columns as plain Utf8 on both sides of each UNION: lake scans give
-- Utf8View, NULL literals Utf8, and DataFusion 55 does not reconcile them
scoped AS (
    SELECT 'channel' AS scope, arrow_cast(channel, 'Utf8') AS channel, tenant_id, conversation_id, converted,
           csat_score, frt_s
    FROM cohort
    UNION ALL
    SELECT 'tenant' AS scope, arrow_cast(NULL, 'Utf8') AS channel, tenant_id, conversation_id, converted,
           csat_score, frt_s
    FROM cohort
),
stats AS (
    SELECT
        scope,
        channel,
        count(*) AS conversations,
        count(*) FILTER (WHERE converted) AS converted_n,
        count(csat_score) AS csat_n,
        avg(csat_score) AS csat_mean,
        stddev_samp(csat_score) AS csat_sd,
        count(frt_s) AS frt_n,
        avg(frt_s) AS frt_mean,
        stddev_samp(frt_s) AS frt_sd,
        median(frt_s) AS frt_median
    FROM scoped
    GROUP BY scope, channel
),
conversation_costs AS (
    SELECT e.tenant_id, e.conversation_id, arrow_cast(e.currency, 'Utf8') AS currency, CAST(sum(e.amount) AS DOUBLE) AS cost
    FROM events e
    CROSS JOIN bounds b
    WHERE e.type = 'cost.incurred' AND e.conversation_id IS NOT NULL AND e.currency IS NOT NULL
        AND e.occurred_at >= b.from_at AND e.occurred_at < b.to_at
    GROUP BY e.tenant_id, e.conversation_id, arrow_cast(e.currency, 'Utf8')
),
currencies AS (
    SELECT DISTINCT k.currency
    FROM conversation_costs k
    JOIN cohort c ON c.tenant_id = k.tenant_id AND c.conversation_id = k.conversation_id
),
cost_values AS (
    SELECT s.scope, s.channel, u.currency, coalesce(k.cost, 0) AS cost
    FROM scoped s
    CROSS JOIN currencies u
    LEFT JOIN conversation_costs k
        ON k.tenant_id = s.tenant_id AND k.conversation_id = s.conversation_id AND k.currency = u.currency
),
cost_stats AS (
    SELECT scope, channel, currency, count(*) AS n, avg(cost) AS mean, stddev_samp(cost) AS sd
    FROM cost_values
    GROUP BY scope, channel, currency
),
metrics AS (
    SELECT scope, channel, 'conversion_rate' AS metric, arrow_cast(NULL, 'Utf8') AS currency, conversations AS n,
           converted_n AS successes, CAST(converted_n AS DOUBLE) / conversations AS value,
           CAST(NULL AS DOUBLE) AS sd, CAST(NULL AS DOUBLE) AS median
    FROM stats
    UNION ALL
    SELECT scope, channel, 'csat', arrow_cast(NULL, 'Utf8'), csat_n, CAST(NULL AS BIGINT), csat_mean, csat_sd,
           CAST(NULL AS DOUBLE)
    FROM stats
    UNION ALL
    SELECT scope, channel, 'frt_s', arrow_cast(NULL, 'Utf8'), frt_n, CAST(NULL AS BIGINT), frt_mean, frt_sd, frt_median
    FROM stats
    UNION ALL
    SELECT scope, channel, 'cost_per_conversation', currency, n, CAST(NULL AS BIGINT), mean, sd, CAST(NULL AS DOUBLE)
    FROM cost_stats
)
SELECT scope, channel, metric, currency, n, successes, value, sd, median
FROM metrics
ORDER BY scope, channel NULLS LAST, metric, currency NULLS FIRST
