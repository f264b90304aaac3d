//! Encoding query results for HTTP clients: JSON (`columns` + `rows`) and CSV.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde_json::{Map, Value, json};

/// `{"columns": [{"name", "type"}], "rows": [[...], ...]}`. Values keep
/// their JSON types (numbers stay numbers); timestamps are RFC 3339 strings.
pub fn to_json(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Value, arrow::error::ArrowError> {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let n = schema.fields().len();
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    // Columns are renamed to their positions first, so duplicate names
    // (`SELECT a, a`) survive the trip through arrow-json's objects.
    let positional = arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_name(i.to_string()))
            .collect::<Vec<_>>(),
    );
    let positional = std::sync::Arc::new(positional);
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = RecordBatch::try_new(positional.clone(), batch.columns().to_vec())?;
        let mut buf = Vec::new();
        {
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(&mut buf);
            writer.write(&batch)?;
            writer.finish()?;
        }
        let objects: Vec<Map<String, Value>> =
            serde_json::from_slice(&buf).map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?;
        for mut obj in objects {
            let row: Vec<Value> = (0..n)
                .map(|i| obj.remove(&i.to_string()).unwrap_or(Value::Null))
                .collect();
            rows.push(Value::Array(row));
        }
    }
    Ok(json!({ "columns": columns, "rows": rows }))
}

/// CSV with a header line.
pub fn to_csv(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut buf = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
        if batches.is_empty() || batches.iter().all(|b| b.num_rows() == 0) {
            // arrow writes the header with the first batch; give it an empty one.
            writer.write(&RecordBatch::new_empty(schema.clone()))?;
        }
        for b in batches {
            writer.write(b)?;
        }
    }
    Ok(buf)
}
