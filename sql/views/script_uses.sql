-- script_uses: one row per (tenant, conversation, kind, key): the quick
-- replies and templates a conversation used, for script optimization
-- (`sql/analyses/scripts.sql`).
--
-- kind is `quick_reply` (from `quick_reply_id`) or `template` (from
-- `template_id`). A conversation uses one when one of its messages
-- carries the id and is not a private note (the customer never saw a
-- note); automated messages count (templates are often sent by rules).
-- A script used several times in a conversation is one row.
CREATE VIEW script_uses AS
SELECT DISTINCT tenant_id, conversation_id, 'quick_reply' AS kind, quick_reply_id AS "key"
FROM messages
WHERE quick_reply_id IS NOT NULL AND NOT private
UNION
SELECT DISTINCT tenant_id, conversation_id, 'template' AS kind, template_id AS "key"
FROM messages
WHERE template_id IS NOT NULL AND NOT private
