-- messages: one row per `message.created` event, with the reply and
-- customer-turn facts that FRT and average response time are built on.
--
-- Definitions (DESIGN.md, KPI glossary):
-- * a reply is a public (`private` is not true), non-automated
--   (`automated` is not true) message by `bot` or `agent`; private notes,
--   campaign/rule messages and `system` messages are never replies and
--   never end a customer's wait;
-- * a customer turn starts at the first customer message after the
--   previous reply (or the first customer message of the conversation) and
--   is answered by the next reply; its wait is `turn_response_s`;
-- * messages are ordered by `occurred_at`, ties broken by `event_id`.
--
-- Turn columns (`turn_*`) are set on the customer message that opens the
-- turn and NULL elsewhere; `turn_no` is set on every customer message.
CREATE VIEW messages AS
WITH flagged AS (
    SELECT
        tenant_id,
        conversation_id,
        event_id,
        message_id,
        occurred_at,
        customer_id,
        channel,
        channel_account,
        sender,
        agent_id,
        coalesce(private, false) AS private,
        coalesce(automated, false) AS automated,
        template_id,
        quick_reply_id,
        ai_suggestion,
        chars,
        sender IN ('bot', 'agent') AND NOT coalesce(private, false) AND NOT coalesce(automated, false) AS is_reply
    FROM events
    WHERE type = 'message.created'
),
counted AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id
        ) AS seq,
        -- replies up to and including this message: for a reply, its number;
        -- for a customer message, how many replies came before it
        sum(CASE WHEN is_reply THEN 1 ELSE 0 END) OVER (
            PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS replies_so_far
    FROM flagged
),
turn_starts AS (
    SELECT
        *,
        sender = 'customer' AND row_number() OVER (
            PARTITION BY tenant_id, conversation_id, sender = 'customer', replies_so_far
            ORDER BY occurred_at, event_id
        ) = 1 AS opens_turn
    FROM counted
),
turns AS (
    SELECT
        *,
        CASE WHEN sender = 'customer' THEN sum(CASE WHEN opens_turn THEN 1 ELSE 0 END) OVER (
            PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) END AS turn_no
    FROM turn_starts
),
replies AS (
    SELECT tenant_id, conversation_id, replies_so_far AS reply_no, occurred_at AS reply_at, sender AS reply_sender
    FROM counted
    WHERE is_reply
)
SELECT
    t.tenant_id,
    t.conversation_id,
    t.event_id,
    t.message_id,
    t.seq,
    t.occurred_at,
    t.customer_id,
    t.channel,
    t.channel_account,
    t.sender,
    t.agent_id,
    t.private,
    t.automated,
    t.is_reply,
    CASE WHEN t.is_reply THEN t.replies_so_far END AS reply_no,
    t.template_id,
    t.quick_reply_id,
    t.ai_suggestion,
    t.chars,
    t.turn_no,
    t.opens_turn,
    CASE WHEN t.opens_turn THEN r.reply_at END AS turn_reply_at,
    CASE WHEN t.opens_turn THEN r.reply_sender END AS turn_reply_sender,
    CASE WHEN t.opens_turn THEN
        (arrow_cast(r.reply_at, 'Int64') - arrow_cast(t.occurred_at, 'Int64')) / 1000000.0
    END AS turn_response_s
FROM turns t
LEFT JOIN replies r
    ON r.tenant_id = t.tenant_id
    AND r.conversation_id = t.conversation_id
    AND r.reply_no = t.replies_so_far + 1
