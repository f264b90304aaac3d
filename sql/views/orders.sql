-- orders: one row per (tenant_id, order_id) placed, with its refunds and
-- the conversation it is attributed to (DESIGN.md, "consult conversion
-- rate"):
-- * `explicit`: the order carries a `conversation_id`;
-- * `window`: otherwise, the same customer's latest conversation started
--   strictly before the order and at most the attribution window
--   (`tenant_settings`, default 7 days, inclusive) before it; ties broken
--   by the larger conversation_id;
-- * NULL: neither, the order is unattributed.
-- `net_amount` = placed amount minus every refund of the order, whenever
-- it happened (refunds are assumed in the order's currency). Refunds of
-- orders never placed are not rows here. A repeated `order.placed` for the
-- same order_id keeps the first one.
CREATE VIEW orders AS
WITH placed AS (
    SELECT tenant_id, order_id, occurred_at AS placed_at, customer_id, channel, channel_account,
           conversation_id, amount, currency, event_id
    FROM (
        SELECT *, row_number() OVER (PARTITION BY tenant_id, order_id ORDER BY occurred_at, event_id) AS rn
        FROM events
        WHERE type = 'order.placed'
    )
    WHERE rn = 1
),
refunds AS (
    SELECT tenant_id, order_id, sum(amount) AS refunded_amount, count(*) AS refunds,
           max(occurred_at) AS last_refunded_at
    FROM events
    WHERE type = 'order.refunded'
    GROUP BY tenant_id, order_id
),
-- who started which conversation when, straight from the events so that
-- `orders` does not depend on `conversations` (which depends on `orders`)
conversation_starts AS (
    SELECT tenant_id, conversation_id, min(occurred_at) AS started_at,
           min(customer_id) AS customer_id
    FROM events
    WHERE type = 'conversation.started'
    GROUP BY tenant_id, conversation_id
),
window_candidates AS (
    SELECT p.tenant_id, p.order_id, s.conversation_id,
           row_number() OVER (
               PARTITION BY p.tenant_id, p.order_id ORDER BY s.started_at DESC, s.conversation_id DESC
           ) AS rn
    FROM placed p
    JOIN conversation_starts s
        ON s.tenant_id = p.tenant_id
        AND s.customer_id = p.customer_id
    WHERE p.conversation_id IS NULL
        AND s.started_at < p.placed_at
        AND s.started_at >= p.placed_at - (SELECT attribution_window FROM tenant_settings)
)
SELECT
    p.tenant_id,
    p.order_id,
    p.placed_at,
    p.customer_id,
    p.channel,
    p.channel_account,
    p.conversation_id AS explicit_conversation_id,
    coalesce(p.conversation_id, w.conversation_id) AS attributed_conversation_id,
    CASE
        WHEN p.conversation_id IS NOT NULL THEN 'explicit'
        WHEN w.conversation_id IS NOT NULL THEN 'window'
    END AS attribution,
    p.currency,
    p.amount,
    coalesce(r.refunded_amount, 0) AS refunded_amount,
    coalesce(r.refunds, 0) AS refunds,
    r.last_refunded_at,
    p.amount - coalesce(r.refunded_amount, 0) AS net_amount
FROM placed p
LEFT JOIN refunds r ON r.tenant_id = p.tenant_id AND r.order_id = p.order_id
LEFT JOIN window_candidates w ON w.tenant_id = p.tenant_id AND w.order_id = p.order_id AND w.rn = 1
