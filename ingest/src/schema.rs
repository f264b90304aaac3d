//! The Arrow schema of the `events` table and the conversion of validated
//! events into record batches.
//!
//! One column per contract field, nullable where the contract makes the
//! field optional or type-specific; `event_date` (the UTC date of
//! `occurred_at`) is the second partition column after `tenant_id`.
//! `amount` is `Decimal128(18, 6)`: money never passes through a float.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::contract::{AMOUNT_SCALE, Event};

/// Partition columns of the lake table, outermost first.
pub const PARTITION_COLUMNS: [&str; 2] = ["tenant_id", "event_date"];

const MICROS_PER_DAY: i64 = 86_400_000_000;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("event_date", DataType::Date32, false),
        Field::new("type", DataType::Utf8, false),
        Field::new(
            "occurred_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("conversation_id"),
        s("customer_id"),
        s("channel"),
        s("channel_account"),
        s("language"),
        s("region"),
        s("timezone"),
        s("customer_tier"),
        s("queue"),
        s("source"),
        s("message_id"),
        s("sender"),
        s("agent_id"),
        Field::new("private", DataType::Boolean, true),
        Field::new("automated", DataType::Boolean, true),
        s("template_id"),
        s("quick_reply_id"),
        s("ai_suggestion"),
        Field::new("chars", DataType::Int32, true),
        s("team"),
        s("reason"),
        s("resolved_by"),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
            true,
        ),
        s("tag_source"),
        Field::new("score", DataType::Int32, true),
        s("comment"),
        s("order_id"),
        Field::new("amount", DataType::Decimal128(18, AMOUNT_SCALE as i8), true),
        s("currency"),
        s("status"),
        s("experiment_key"),
        s("variant_key"),
        s("unit_id"),
        s("cost_kind"),
        s("attrs"),
    ]))
});

/// The schema of the `events` table (and of every buffered batch).
pub fn events_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Days since the Unix epoch of a UTC microsecond timestamp.
pub fn utc_day(occurred_at_us: i64) -> i32 {
    occurred_at_us.div_euclid(MICROS_PER_DAY) as i32
}

/// Builds one record batch from events, in the order given.
pub fn events_to_batch<'a>(events: impl ExactSizeIterator<Item = &'a Event>) -> RecordBatch {
    let n = events.len();
    let str_col = || StringBuilder::with_capacity(n, n * 8);
    let mut event_id = str_col();
    let mut tenant_id = str_col();
    let mut event_date = Date32Builder::with_capacity(n);
    let mut typ = str_col();
    let mut occurred_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut opt: Vec<StringBuilder> = (0..OPT_STRINGS.len()).map(|_| str_col()).collect();
    let mut private = BooleanBuilder::with_capacity(n);
    let mut automated = BooleanBuilder::with_capacity(n);
    let mut chars = Int32Builder::with_capacity(n);
    let mut tags = ListBuilder::new(StringBuilder::new()).with_field(Field::new("element", DataType::Utf8, true));
    let mut score = Int32Builder::with_capacity(n);
    let mut amount = Decimal128Builder::with_capacity(n)
        .with_precision_and_scale(18, AMOUNT_SCALE as i8)
        .unwrap_or_default();

    for e in events {
        event_id.append_value(&e.event_id);
        tenant_id.append_value(&e.tenant_id);
        event_date.append_value(utc_day(e.occurred_at_us));
        typ.append_value(e.event_type.as_str());
        occurred_at.append_value(e.occurred_at_us);
        for (b, v) in opt.iter_mut().zip(optional_strings(e)) {
            b.append_option(v);
        }
        private.append_option(e.private);
        automated.append_option(e.automated);
        chars.append_option(e.chars);
        match &e.tags {
            Some(t) => {
                for tag in t {
                    tags.values().append_value(tag);
                }
                tags.append(true);
            }
            None => tags.append(false),
        }
        score.append_option(e.score);
        amount.append_option(e.amount_scaled.map(i128::from));
    }

    let mut opt = opt.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || opt.next().unwrap_or_else(|| Arc::new(StringBuilder::new().finish()));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(tenant_id.finish()),
        Arc::new(event_date.finish()),
        Arc::new(typ.finish()),
        Arc::new(occurred_at.finish()),
        next(), // conversation_id
        next(), // customer_id
        next(), // channel
        next(), // channel_account
        next(), // language
        next(), // region
        next(), // timezone
        next(), // customer_tier
        next(), // queue
        next(), // source
        next(), // message_id
        next(), // sender
        next(), // agent_id
        Arc::new(private.finish()),
        Arc::new(automated.finish()),
        next(), // template_id
        next(), // quick_reply_id
        next(), // ai_suggestion
        Arc::new(chars.finish()),
        next(), // team
        next(), // reason
        next(), // resolved_by
        Arc::new(tags.finish()),
        next(), // tag_source
        Arc::new(score.finish()),
        next(), // comment
        next(), // order_id
        Arc::new(amount.finish()),
        next(), // currency
        next(), // status
        next(), // experiment_key
        next(), // variant_key
        next(), // unit_id
        next(), // cost_kind
        next(), // attrs
    ];
    // The columns are built to the schema above; a mismatch is a bug in this file.
    RecordBatch::try_new(events_schema(), columns).unwrap_or_else(|e| panic!("events_to_batch: {e}"))
}

/// The optional string columns in schema order (see `events_to_batch`).
const OPT_STRINGS: [&str; 29] = [
    "conversation_id",
    "customer_id",
    "channel",
    "channel_account",
    "language",
    "region",
    "timezone",
    "customer_tier",
    "queue",
    "source",
    "message_id",
    "sender",
    "agent_id",
    "template_id",
    "quick_reply_id",
    "ai_suggestion",
    "team",
    "reason",
    "resolved_by",
    "tag_source",
    "comment",
    "order_id",
    "currency",
    "status",
    "experiment_key",
    "variant_key",
    "unit_id",
    "cost_kind",
    "attrs",
];

fn optional_strings(e: &Event) -> [Option<&str>; 29] {
    fn s(o: &Option<String>) -> Option<&str> {
        o.as_deref()
    }
    [
        s(&e.conversation_id),
        s(&e.customer_id),
        e.channel.map(|c| c.as_str()),
        s(&e.channel_account),
        s(&e.language),
        s(&e.region),
        s(&e.timezone),
        e.customer_tier.map(|c| c.as_str()),
        s(&e.queue),
        s(&e.source),
        s(&e.message_id),
        e.sender.map(|c| c.as_str()),
        s(&e.agent_id),
        s(&e.template_id),
        s(&e.quick_reply_id),
        e.ai_suggestion.map(|c| c.as_str()),
        s(&e.team),
        e.reason.map(|c| c.as_str()),
        e.resolved_by.map(|c| c.as_str()),
        e.tag_source.map(|c| c.as_str()),
        s(&e.comment),
        s(&e.order_id),
        s(&e.currency),
        e.status.map(|c| c.as_str()),
        s(&e.experiment_key),
        s(&e.variant_key),
        s(&e.unit_id),
        e.cost_kind.map(|c| c.as_str()),
        if e.attrs.is_empty() {
            None
        } else {
            Some(e.attrs.as_str())
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_string_columns_line_up_with_the_schema() {
        // The hand-written column list must visit the schema in order; a
        // batch with one event proves it (try_new checks names and types).
        let e = Event {
            event_id: "e1".into(),
            tenant_id: "t".into(),
            ..Default::default()
        };
        let batch = events_to_batch([&e].into_iter());
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.num_columns(), events_schema().fields().len());
        let names: Vec<_> = events_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| OPT_STRINGS.contains(&n.as_str()))
            .collect();
        assert_eq!(names, OPT_STRINGS.to_vec());
    }

    #[test]
    fn utc_day_handles_times_before_the_epoch() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(-1), -1);
        assert_eq!(utc_day(MICROS_PER_DAY), 1);
    }
}
