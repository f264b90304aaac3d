//! The JSON Schema of contract v1, generated from the Rust contract so the
//! two cannot drift. The published copy is `ingest/schema/events-v1.json`;
//! a test fails when it differs from [`generate`] (regenerate with
//! `CXLAKE_UPDATE_SCHEMA=1 cargo test -p ingest json_schema`).

use serde_json::{Value, json};

use crate::contract::{
    AMOUNT_SCALE, AgentStatus, AiSuggestion, Channel, CostKind, CustomerTier, EventType, HandoffReason, MAX_ID_LEN,
    MAX_TEXT_LEN, ResolvedBy, Sender, TagSource,
};

fn enum_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

fn id() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN })
}

fn field_schema(name: &str) -> Value {
    let names = |all: &[&'static str]| enum_of(all);
    match name {
        "language" => {
            json!({ "type": "string", "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", "description": "BCP 47 tag" })
        }
        "region" => json!({ "type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2" }),
        "timezone" => json!({ "type": "string", "description": "IANA time zone, e.g. Europe/Berlin" }),
        "customer_tier" => names(&CustomerTier::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "sender" => names(&Sender::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "ai_suggestion" => names(&AiSuggestion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "reason" => names(&HandoffReason::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "resolved_by" => names(&ResolvedBy::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "tag_source" => names(&TagSource::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "status" => names(&AgentStatus::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "cost_kind" => names(&CostKind::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()),
        "private" | "automated" => json!({ "type": "boolean" }),
        "chars" => json!({ "type": "integer", "minimum": 0 }),
        "score" => json!({ "type": "integer", "minimum": 1, "maximum": 5 }),
        "comment" => json!({ "type": "string", "maxLength": MAX_TEXT_LEN, "description": "personal data" }),
        "tags" => json!({ "type": "array", "minItems": 1, "items": id() }),
        "amount" => json!({
            "oneOf": [
                { "type": "number", "minimum": 0 },
                { "type": "string", "pattern": format!("^[0-9]+(\\.[0-9]{{1,{AMOUNT_SCALE}}})?$") }
            ],
            "description": format!("decimal, at most {AMOUNT_SCALE} fractional digits")
        }),
        "currency" => json!({ "type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217" }),
        _ => id(),
    }
}

fn required_fields(t: EventType) -> &'static [&'static str] {
    use EventType::*;
    match t {
        MessageCreated => &["sender"],
        ConversationResolved => &["resolved_by"],
        ConversationTagged => &["tags"],
        CsatSubmitted => &["score"],
        OrderPlaced | OrderRefunded => &["order_id", "amount", "currency"],
        AgentStatusChanged => &["agent_id", "status"],
        ExperimentExposed => &["experiment_key", "variant_key"],
        CostIncurred => &["cost_kind", "amount", "currency"],
        _ => &[],
    }
}

/// The schema document.
pub fn generate() -> Value {
    let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let channels: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    let variants: Vec<Value> = EventType::ALL
        .iter()
        .map(|&t| {
            let mut props = serde_json::Map::new();
            props.insert("type".into(), json!({ "const": t.as_str() }));
            for f in t.fields() {
                props.insert((*f).into(), field_schema(f));
            }
            let mut required: Vec<&str> = required_fields(t).to_vec();
            if t.needs_conversation() {
                required.push("conversation_id");
            }
            json!({
                "if": { "properties": { "type": { "const": t.as_str() } } },
                "then": { "properties": props, "required": required }
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cxlake.dev/schema/events-v1.json",
        "title": "cxlake conversation event, contract v1",
        "description": "One event per JSON object; NDJSON for batches. Fields not listed are kept in attrs. Fields of another type are kept in attrs too.",
        "type": "object",
        "required": ["event_id", "tenant_id", "type", "occurred_at"],
        "properties": {
            "event_id": id(),
            "tenant_id": { "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" },
            "type": enum_of(&types),
            "occurred_at": { "type": "string", "format": "date-time", "description": "RFC 3339 with an offset" },
            "conversation_id": id(),
            "customer_id": id(),
            "channel": enum_of(&channels),
            "channel_account": id(),
            "attrs": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } }
        },
        "additionalProperties": true,
        "allOf": variants
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn published_schema_matches_the_contract() {
        let generated = serde_json::to_string_pretty(&super::generate()).unwrap_or_default() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/events-v1.json");
        if std::env::var_os("CXLAKE_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
        assert_eq!(
            crate::EVENT_JSON_SCHEMA,
            generated,
            "ingest/schema/events-v1.json is stale: run CXLAKE_UPDATE_SCHEMA=1 cargo test -p ingest json_schema"
        );
    }
}
