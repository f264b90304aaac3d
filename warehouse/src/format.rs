//! Encoding query results for HTTP clients: JSON (`columns` + `rows`) and CSV.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::MemoryReservation;
use serde_json::{Map, Value, json};

use crate::bounds::BoundError;

/// A JSON result (`{"columns", "rows", ...}`) encoded batch by batch into
/// bytes, never past `max_bytes`: a batch is turned into rows and written
/// out before the next one arrives, so memory holds the encoded bytes and
/// one batch, not every batch plus a tree of JSON values. The bytes are
/// also reserved in the session's memory pool, so a large result counts
/// against the same bounds as the query that made it.
#[derive(Debug)]
pub struct JsonResult {
    buf: Vec<u8>,
    positional: SchemaRef,
    columns: usize,
    rows: usize,
    max_bytes: usize,
    reservation: Option<MemoryReservation>,
}

impl JsonResult {
    pub fn new(schema: &SchemaRef, max_bytes: usize, reservation: Option<MemoryReservation>) -> Self {
        let columns: Vec<Value> = schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        let mut buf = b"{\"columns\":".to_vec();
        buf.extend_from_slice(Value::Array(columns).to_string().as_bytes());
        buf.extend_from_slice(b",\"rows\":[");
        Self {
            buf,
            positional: positional_schema(schema),
            columns: schema.fields().len(),
            rows: 0,
            max_bytes,
            reservation,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends the rows of `batch`; fails once the result passes the limit
    /// (of bytes, or of the memory pool).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), DataFusionError> {
        // A few rows at a time, so the intermediate JSON of a batch of
        // wide rows stays small next to the limit.
        const CHUNK_ROWS: usize = 256;
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = CHUNK_ROWS.min(batch.num_rows() - offset);
            for row in rows_of(&self.positional, self.columns, &batch.slice(offset, len))? {
                if self.rows > 0 {
                    self.buf.push(b',');
                }
                serde_json::to_writer(&mut self.buf, &row).map_err(|e| DataFusionError::External(Box::new(e)))?;
                self.rows += 1;
                if self.buf.len() > self.max_bytes {
                    return Err(BoundError::ResultTooLarge(self.max_bytes).into_df());
                }
            }
            if let Some(r) = &self.reservation {
                r.try_resize(self.buf.capacity())?;
            }
            offset += len;
        }
        Ok(())
    }

    /// The finished document, with `extra` members after `rows`.
    pub fn finish(mut self, extra: &[(&str, Value)]) -> Vec<u8> {
        self.buf.push(b']');
        for (k, v) in extra {
            self.buf.push(b',');
            self.buf
                .extend_from_slice(Value::String((*k).to_string()).to_string().as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(v.to_string().as_bytes());
        }
        self.buf.push(b'}');
        std::mem::take(&mut self.buf)
    }
}

/// Columns renamed to their positions, so duplicate names (`SELECT a, a`)
/// survive the trip through arrow-json's objects.
fn positional_schema(schema: &SchemaRef) -> SchemaRef {
    std::sync::Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_name(i.to_string()))
            .collect::<Vec<_>>(),
    ))
}

/// The rows of one batch as JSON arrays.
fn rows_of(positional: &SchemaRef, n: usize, batch: &RecordBatch) -> Result<Vec<Value>, arrow::error::ArrowError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
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
    Ok(objects
        .into_iter()
        .map(|mut obj| {
            Value::Array(
                (0..n)
                    .map(|i| obj.remove(&i.to_string()).unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect())
}

/// `{"columns": [{"name", "type"}], "rows": [[...], ...]}`. Values keep
/// their JSON types (numbers stay numbers); timestamps are RFC 3339 strings.
pub fn to_json(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Value, arrow::error::ArrowError> {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let n = schema.fields().len();
    let positional = positional_schema(schema);
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        rows.extend(rows_of(&positional, n, batch)?);
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

#[cfg(test)]
mod tests;
