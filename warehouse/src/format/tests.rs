use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

fn batch(rows: i64) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("n", DataType::Utf8, true),
    ]));
    let words: Vec<Option<String>> = (0..rows).map(|i| (i % 3 != 0).then(|| format!("w{i}"))).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from(words)),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (schema, batch)
}

#[test]
fn json_result_is_the_document_to_json_builds() {
    let (schema, b) = batch(1000);
    let mut out = JsonResult::new(&schema, 1 << 20, None);
    out.push(&b).unwrap_or_else(|e| panic!("{e}"));
    out.push(&b.slice(0, 0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.rows(), 1000);
    let bytes = out.finish(&[("row_count", json!(1000))]);
    let got: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut want = to_json(&schema, &[b]).unwrap_or_else(|e| panic!("{e}"));
    want["row_count"] = json!(1000);
    assert_eq!(got, want);
    assert_eq!(got["rows"][3], json!([3, null]), "duplicate names keep their positions");
}

#[test]
fn json_result_stops_at_its_byte_limit() {
    let (schema, b) = batch(100_000);
    let mut out = JsonResult::new(&schema, 64 << 10, None);
    let err = out
        .push(&b)
        .err()
        .unwrap_or_else(|| panic!("100,000 rows fit in 64 KiB"));
    assert_eq!(
        BoundError::find(&err),
        Some(&BoundError::ResultTooLarge(64 << 10)),
        "{err}"
    );
    // It stopped near the limit instead of encoding the whole batch first.
    assert!(out.buf.len() < (64 << 10) + 4096, "{} bytes", out.buf.len());
}
