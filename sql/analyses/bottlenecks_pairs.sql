-- Bottlenecks, part 2: which problems travel together. Tag co-occurrence
-- as association rules over conversations (market-basket analysis: a
-- conversation is a basket, its tags the items), e.g. "complaint →
-- shipping_delay".
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- UTC instants; $3 = the least number of conversations a pair needs to be
-- listed (the API's `min_count`, default 5): lift over a handful of
-- conversations is noise.
--
-- Population: the N conversations *started* in the window that have at
-- least one tag (untagged conversations say nothing about co-occurrence
-- and would inflate every lift).
--
-- One row per ordered pair (tag → other_tag), both directions listed:
--   conversations   n(tag ∧ other_tag)
--   support         n(tag ∧ other_tag) / N
--   confidence      n(tag ∧ other_tag) / n(tag): of the conversations with
--                   `tag`, the share that also have `other_tag`
--   lift            n(tag ∧ other_tag) · N / (n(tag) · n(other_tag)):
--                   above 1, the two come together more often than if they
--                   were independent; symmetric
--   tag_conversations, other_tag_conversations   n(tag), n(other_tag)
-- Ordered by lift, conversations, confidence (all descending), then names.
WITH bounds AS (
    SELECT
        arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
        arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at,
        arrow_cast($3, 'Int64') AS min_count
),
cohort AS (
    SELECT c.*
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
conversation_tags AS (
    SELECT tenant_id, conversation_id, tag
    FROM (SELECT tenant_id, conversation_id, unnest(tags) AS tag FROM cohort)
    WHERE tag IS NOT NULL
),
tagged AS (
    SELECT count(DISTINCT tenant_id || '/' || conversation_id) AS tagged_n
    FROM conversation_tags
),
tag_counts AS (
    SELECT tag, count(*) AS tag_n
    FROM conversation_tags
    GROUP BY tag
),
pair_counts AS (
    SELECT x.tag, y.tag AS other_tag, count(*) AS pair_n
    FROM conversation_tags x
    JOIN conversation_tags y
        ON x.tenant_id = y.tenant_id AND x.conversation_id = y.conversation_id AND x.tag <> y.tag
    GROUP BY x.tag, y.tag
),
-- every count a pair's measures need, under distinct names and already as
-- DOUBLE: with the casts in the final projection DataFusion 55 evaluated
-- CAST(pair_n) over the wrong input column (pinned by
-- sql/tests/analyses_bottlenecks.slt)
pair_facts AS (
    SELECT
        p.tag,
        p.other_tag,
        p.pair_n,
        lhs.lhs_n,
        rhs.rhs_n,
        CAST(p.pair_n AS DOUBLE) AS pair_d,
        CAST(lhs.lhs_n AS DOUBLE) AS lhs_d,
        CAST(rhs.rhs_n AS DOUBLE) AS rhs_d,
        CAST(tg.tagged_n AS DOUBLE) AS tagged_d,
        bd.min_count
    FROM pair_counts p
    JOIN (SELECT tag AS lhs_tag, tag_n AS lhs_n FROM tag_counts) lhs ON lhs.lhs_tag = p.tag
    JOIN (SELECT tag AS rhs_tag, tag_n AS rhs_n FROM tag_counts) rhs ON rhs.rhs_tag = p.other_tag
    CROSS JOIN tagged tg
    CROSS JOIN bounds bd
)
SELECT
    tag,
    other_tag,
    pair_n AS conversations,
    pair_d / tagged_d AS support,
    pair_d / lhs_d AS confidence,
    pair_d * tagged_d / (lhs_d * rhs_d) AS lift,
    lhs_n AS tag_conversations,
    rhs_n AS other_tag_conversations
FROM pair_facts
WHERE pair_n >= min_count
ORDER BY lift DESC, conversations DESC, confidence DESC, tag, other_tag
