-- conversations: one row per (tenant_id, conversation_id) with every fact
-- the KPI glossary needs, after Zendesk's ticket-metrics record and
-- Chatwoot's conversation export. Built on `messages`, `orders` and
-- `exposures`; every timestamp is UTC, every `_s` column is float seconds
-- computed from integer microseconds (never `extract(epoch ...)`, which
-- truncates to whole seconds).
--
-- Choices worth knowing (each pinned by sql/tests/conversations.slt):
-- * started_at: the first `conversation.started`; a conversation seen only
--   through later events still has a row, with started_at NULL, and so
--   falls in no KPI window (cohort rule: KPIs count conversations started
--   in the window).
-- * channel, channel_account, customer_id: from `conversation.started`,
--   else the first event of the conversation that carries them.
-- * queue, team: the last `conversation.assigned` naming one (queue falls
--   back to the one given at start); agent_id ("last agent"): the last
--   assigned agent, else the last agent who replied.
-- * first_reply_at: the reply answering the first customer turn, i.e. the
--   first public, non-automated bot or agent message after the first
--   customer message (see `messages`).
-- * human wait starts at the first handoff, else at the first customer
--   message (no handoff means the customer waited for a human from the
--   start); first_human_reply_at is the first public, non-automated agent
--   message at or after that start.
-- * resolved_at / resolved_by: the last `conversation.resolved`;
--   is_resolved: the last status event (started, resolved, reopened) is a
--   resolve; handling_s only for conversations that are resolved now.
-- * reopened_within_7d: some reopen came at most 7 days after the resolve
--   before it.
-- * csat_score: the last `csat.submitted` (a re-submission replaces it).
-- * sla_met: frt_s within the target (`tenant_settings.sla_target_us`,
--   default 120 s); false when nobody replied and the customer has waited
--   longer than the target by now; NULL without a
--   customer message or while the first reply is still within target.
-- * bot_only: resolved now, last resolve by the bot, and no agent message
--   at all (a private note by an agent counts: a human touched it).
-- * orders: attributed orders (see `orders`), net of refunds; the net value
--   is NULL and order_currency 'MIXED' when they are in several currencies.
CREATE VIEW conversations AS
WITH conv_events AS (
    SELECT *
    FROM events
    WHERE conversation_id IS NOT NULL
        AND type IN (
            'conversation.started', 'message.created', 'conversation.assigned', 'conversation.handoff',
            'conversation.resolved', 'conversation.reopened', 'conversation.tagged', 'csat.requested',
            'csat.submitted', 'experiment.exposed'
        )
),
started AS (
    SELECT tenant_id, conversation_id, occurred_at AS started_at, customer_id, channel, channel_account,
           language, region, timezone, customer_tier, queue, source
    FROM (
        SELECT *, row_number() OVER (PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id) AS rn
        FROM conv_events
        WHERE type = 'conversation.started'
    )
    WHERE rn = 1
),
status_events AS (
    SELECT tenant_id, conversation_id, type, occurred_at, event_id,
           lag(type) OVER (PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id) AS prev_type,
           lag(occurred_at) OVER (PARTITION BY tenant_id, conversation_id ORDER BY occurred_at, event_id) AS prev_at
    FROM conv_events
    WHERE type IN ('conversation.started', 'conversation.resolved', 'conversation.reopened')
),
status AS (
    SELECT tenant_id, conversation_id,
           last_value(type ORDER BY occurred_at, event_id) AS last_status_type,
           bool_or(
               type = 'conversation.reopened' AND prev_type = 'conversation.resolved'
               AND occurred_at <= prev_at + INTERVAL '7 days'
           ) AS reopened_within_7d
    FROM status_events
    GROUP BY tenant_id, conversation_id
),
facts AS (
    SELECT
        tenant_id,
        conversation_id,
        min(occurred_at) AS first_event_at,
        max(occurred_at) AS last_event_at,
        first_value(customer_id ORDER BY occurred_at, event_id) FILTER (WHERE customer_id IS NOT NULL) AS any_customer_id,
        first_value(channel ORDER BY occurred_at, event_id) FILTER (WHERE channel IS NOT NULL) AS any_channel,
        first_value(channel_account ORDER BY occurred_at, event_id)
            FILTER (WHERE channel_account IS NOT NULL) AS any_channel_account,
        last_value(queue ORDER BY occurred_at, event_id)
            FILTER (WHERE type = 'conversation.assigned' AND queue IS NOT NULL) AS assigned_queue,
        last_value(team ORDER BY occurred_at, event_id)
            FILTER (WHERE type = 'conversation.assigned' AND team IS NOT NULL) AS team,
        last_value(agent_id ORDER BY occurred_at, event_id)
            FILTER (WHERE type = 'conversation.assigned' AND agent_id IS NOT NULL) AS assigned_agent_id,
        count(*) FILTER (WHERE type = 'conversation.assigned') AS assignments,
        min(occurred_at) FILTER (WHERE type = 'conversation.handoff') AS handoff_at,
        first_value(reason ORDER BY occurred_at, event_id) FILTER (WHERE type = 'conversation.handoff') AS handoff_reason,
        count(*) FILTER (WHERE type = 'conversation.handoff') AS handoffs,
        max(occurred_at) FILTER (WHERE type = 'conversation.resolved') AS resolved_at,
        last_value(resolved_by ORDER BY occurred_at, event_id) FILTER (WHERE type = 'conversation.resolved') AS resolved_by,
        last_value(agent_id ORDER BY occurred_at, event_id)
            FILTER (WHERE type = 'conversation.resolved') AS resolved_agent_id,
        count(*) FILTER (WHERE type = 'conversation.resolved') AS resolves,
        count(*) FILTER (WHERE type = 'conversation.reopened') AS reopens,
        count(*) FILTER (WHERE type = 'csat.requested') > 0 AS csat_requested,
        min(occurred_at) FILTER (WHERE type = 'csat.requested') AS csat_requested_at,
        last_value(score ORDER BY occurred_at, event_id) FILTER (WHERE type = 'csat.submitted') AS csat_score,
        max(occurred_at) FILTER (WHERE type = 'csat.submitted') AS csat_submitted_at,
        count(*) FILTER (WHERE type = 'csat.submitted') AS csat_submissions
    FROM conv_events
    GROUP BY tenant_id, conversation_id
),
msg AS (
    SELECT
        tenant_id,
        conversation_id,
        min(occurred_at) FILTER (WHERE sender = 'customer') AS first_customer_message_at,
        min(turn_reply_at) FILTER (WHERE turn_no = 1) AS first_reply_at,
        min(turn_reply_sender) FILTER (WHERE turn_no = 1) AS first_reply_by,
        count(*) AS messages,
        count(*) FILTER (WHERE sender = 'customer') AS customer_messages,
        count(*) FILTER (WHERE is_reply AND sender = 'bot') AS bot_replies,
        count(*) FILTER (WHERE is_reply AND sender = 'agent') AS agent_replies,
        count(*) FILTER (WHERE sender = 'agent') AS agent_messages,
        count(*) FILTER (WHERE private) AS private_notes,
        count(*) FILTER (WHERE automated) AS automated_messages,
        count(*) FILTER (WHERE is_reply AND sender = 'agent' AND ai_suggestion IN ('accepted', 'edited')) AS copilot_replies,
        count(DISTINCT agent_id) FILTER (WHERE is_reply AND sender = 'agent') AS replying_agents,
        last_value(agent_id ORDER BY occurred_at, event_id) FILTER (WHERE is_reply AND sender = 'agent') AS last_replying_agent_id,
        count(*) FILTER (WHERE opens_turn) AS customer_turns,
        count(turn_response_s) AS answered_turns,
        sum(turn_response_s) AS waiting_s,
        max(turn_response_s) AS longest_wait_s
    FROM messages
    GROUP BY tenant_id, conversation_id
),
human AS (
    SELECT m.tenant_id, m.conversation_id, min(m.occurred_at) AS first_human_reply_at
    FROM messages m
    JOIN facts f ON f.tenant_id = m.tenant_id AND f.conversation_id = m.conversation_id
    JOIN msg ON msg.tenant_id = m.tenant_id AND msg.conversation_id = m.conversation_id
    WHERE m.is_reply AND m.sender = 'agent'
        AND m.occurred_at >= coalesce(f.handoff_at, msg.first_customer_message_at)
    GROUP BY m.tenant_id, m.conversation_id
),
tag_list AS (
    SELECT tenant_id, conversation_id, array_sort(array_distinct(flatten(array_agg(tags)))) AS tags
    FROM conv_events
    WHERE type = 'conversation.tagged'
    GROUP BY tenant_id, conversation_id
),
conv_orders AS (
    SELECT tenant_id, attributed_conversation_id AS conversation_id,
           count(*) AS attributed_orders,
           CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) ELSE 'MIXED' END AS order_currency,
           CASE WHEN count(DISTINCT currency) = 1 THEN sum(net_amount) END AS order_net_amount
    FROM orders
    WHERE attributed_conversation_id IS NOT NULL
    GROUP BY tenant_id, attributed_conversation_id
),
variants AS (
    SELECT tenant_id, conversation_id,
           array_sort(array_agg(DISTINCT experiment_key || '=' || variant_key)) AS experiment_variants
    FROM exposures
    WHERE conversation_id IS NOT NULL
    GROUP BY tenant_id, conversation_id
),
joined AS (
    SELECT
        f.tenant_id,
        f.conversation_id,
        coalesce(s.customer_id, f.any_customer_id) AS customer_id,
        coalesce(s.channel, f.any_channel) AS channel,
        coalesce(s.channel_account, f.any_channel_account) AS channel_account,
        coalesce(f.assigned_queue, s.queue) AS queue,
        f.team,
        coalesce(f.assigned_agent_id, m.last_replying_agent_id) AS agent_id,
        s.language,
        s.region,
        s.timezone,
        s.customer_tier,
        s.source,
        s.started_at,
        f.first_event_at,
        f.last_event_at,
        m.first_customer_message_at,
        m.first_reply_at,
        m.first_reply_by,
        h.first_human_reply_at,
        f.handoff_at,
        f.handoff_reason,
        coalesce(f.handoffs, 0) AS handoffs,
        f.assignments,
        f.resolved_at,
        f.resolved_by,
        f.resolved_agent_id,
        f.resolves,
        f.reopens,
        coalesce(st.last_status_type = 'conversation.resolved', false) AS is_resolved,
        coalesce(st.reopened_within_7d, false) AS reopened_within_7d,
        f.csat_requested,
        f.csat_requested_at,
        f.csat_score,
        f.csat_submitted_at,
        f.csat_submissions,
        t.tags,
        coalesce(m.messages, 0) AS messages,
        coalesce(m.customer_messages, 0) AS customer_messages,
        coalesce(m.bot_replies, 0) AS bot_replies,
        coalesce(m.agent_replies, 0) AS agent_replies,
        coalesce(m.agent_messages, 0) AS agent_messages,
        coalesce(m.private_notes, 0) AS private_notes,
        coalesce(m.automated_messages, 0) AS automated_messages,
        coalesce(m.copilot_replies, 0) AS copilot_replies,
        coalesce(m.replying_agents, 0) AS replying_agents,
        coalesce(m.customer_turns, 0) AS customer_turns,
        coalesce(m.answered_turns, 0) AS answered_turns,
        m.waiting_s,
        m.longest_wait_s,
        coalesce(o.attributed_orders, 0) AS attributed_orders,
        o.order_net_amount,
        o.order_currency,
        v.experiment_variants
    FROM facts f
    LEFT JOIN started s ON s.tenant_id = f.tenant_id AND s.conversation_id = f.conversation_id
    LEFT JOIN status st ON st.tenant_id = f.tenant_id AND st.conversation_id = f.conversation_id
    LEFT JOIN msg m ON m.tenant_id = f.tenant_id AND m.conversation_id = f.conversation_id
    LEFT JOIN human h ON h.tenant_id = f.tenant_id AND h.conversation_id = f.conversation_id
    LEFT JOIN tag_list t ON t.tenant_id = f.tenant_id AND t.conversation_id = f.conversation_id
    LEFT JOIN conv_orders o ON o.tenant_id = f.tenant_id AND o.conversation_id = f.conversation_id
    LEFT JOIN variants v ON v.tenant_id = f.tenant_id AND v.conversation_id = f.conversation_id
)
SELECT
    *,
    (arrow_cast(first_reply_at, 'Int64') - arrow_cast(first_customer_message_at, 'Int64')) / 1000000.0 AS frt_s,
    (arrow_cast(first_human_reply_at, 'Int64') - arrow_cast(coalesce(handoff_at, first_customer_message_at), 'Int64'))
        / 1000000.0 AS human_frt_s,
    CASE WHEN is_resolved THEN
        (arrow_cast(resolved_at, 'Int64') - arrow_cast(first_customer_message_at, 'Int64')) / 1000000.0
    END AS handling_s,
    CASE
        WHEN first_customer_message_at IS NULL THEN NULL
        WHEN first_reply_at IS NOT NULL THEN
            arrow_cast(first_reply_at, 'Int64') - arrow_cast(first_customer_message_at, 'Int64')
                <= (SELECT sla_target_us FROM tenant_settings)
        WHEN arrow_cast(arrow_cast(now(), 'Timestamp(Microsecond, Some("UTC"))'), 'Int64')
            > arrow_cast(first_customer_message_at, 'Int64') + (SELECT sla_target_us FROM tenant_settings) THEN false
    END AS sla_met,
    bot_replies > 0 AND handoffs > 0 AS transferred,
    coalesce(is_resolved AND resolved_by = 'bot' AND agent_messages = 0, false) AS bot_only,
    agent_replies > 0 AS human_handled,
    attributed_orders > 0 AS converted
FROM joined
