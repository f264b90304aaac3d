//! Streaming a query's record batches as an HTTP body, batch by batch, in
//! CSV, NDJSON, Parquet or Arrow IPC — so a large result never has to fit
//! in memory. Used by the conversation export and by `/v1/sql`.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

/// The streamable formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    Csv,
    Ndjson,
    Parquet,
    ArrowIpc,
}

impl StreamFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::Csv => "text/csv; charset=utf-8",
            StreamFormat::Ndjson => "application/x-ndjson",
            StreamFormat::Parquet => "application/vnd.apache.parquet",
            StreamFormat::ArrowIpc => "application/vnd.apache.arrow.stream",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            StreamFormat::Csv => "csv",
            StreamFormat::Ndjson => "ndjson",
            StreamFormat::Parquet => "parquet",
            StreamFormat::ArrowIpc => "arrows",
        }
    }
}

/// A `Write` whose bytes the stream takes out after each batch.
#[derive(Debug, Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type EncodeResult = Result<Vec<u8>, BoxError>;

/// Encodes record batches into one format, piece by piece.
enum Encoder {
    Csv { header_written: bool },
    Ndjson,
    Parquet(Box<parquet::arrow::ArrowWriter<SharedBuf>>, SharedBuf),
    ArrowIpc(Box<arrow::ipc::writer::StreamWriter<SharedBuf>>, SharedBuf),
}

impl Encoder {
    fn new(format: StreamFormat, schema: &SchemaRef) -> Result<Self, BoxError> {
        Ok(match format {
            StreamFormat::Csv => Encoder::Csv { header_written: false },
            StreamFormat::Ndjson => Encoder::Ndjson,
            StreamFormat::Parquet => {
                let buf = SharedBuf::default();
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                let w = parquet::arrow::ArrowWriter::try_new(buf.clone(), schema.clone(), Some(props))?;
                Encoder::Parquet(Box::new(w), buf)
            }
            StreamFormat::ArrowIpc => {
                let buf = SharedBuf::default();
                let w = arrow::ipc::writer::StreamWriter::try_new(buf.clone(), schema)?;
                Encoder::ArrowIpc(Box::new(w), buf)
            }
        })
    }

    /// The bytes available before the first batch (the IPC schema message).
    fn head(&mut self) -> Vec<u8> {
        match self {
            Encoder::ArrowIpc(_, buf) => buf.take(),
            _ => Vec::new(),
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> EncodeResult {
        match self {
            Encoder::Csv { header_written } => {
                let mut buf = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(!*header_written)
                        .build(&mut buf);
                    w.write(&csv_ready(batch)?)?;
                }
                *header_written = true;
                Ok(buf)
            }
            Encoder::Ndjson => {
                let mut buf = Vec::new();
                {
                    let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                    w.write(batch)?;
                    w.finish()?;
                }
                Ok(buf)
            }
            Encoder::Parquet(w, buf) => {
                w.write(batch)?;
                // One row group per batch, so bytes can leave as they come.
                w.flush()?;
                Ok(buf.take())
            }
            Encoder::ArrowIpc(w, buf) => {
                w.write(batch)?;
                w.flush()?;
                Ok(buf.take())
            }
        }
    }

    fn finish(self, schema: &SchemaRef) -> EncodeResult {
        match self {
            Encoder::Csv { header_written: false } => {
                let mut buf = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
                    w.write(&csv_ready(&RecordBatch::new_empty(schema.clone()))?)?;
                }
                Ok(buf)
            }
            Encoder::Csv { .. } | Encoder::Ndjson => Ok(Vec::new()),
            Encoder::Parquet(w, buf) => {
                w.close()?;
                Ok(buf.take())
            }
            Encoder::ArrowIpc(mut w, buf) => {
                w.finish()?;
                Ok(buf.take())
            }
        }
    }
}

/// CSV has no lists or structs: such a column leaves as one JSON text per
/// cell (`["vip","refund"]`), the way Postgres' `COPY ... CSV` writes an
/// array as its text form. Other columns pass unchanged.
fn csv_ready(batch: &RecordBatch) -> Result<RecordBatch, BoxError> {
    use arrow::datatypes::{DataType, Field, Schema};
    let nested = |t: &DataType| {
        matches!(
            t,
            DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(..)
                | DataType::ListView(_)
                | DataType::LargeListView(_)
                | DataType::Struct(_)
                | DataType::Map(..)
                | DataType::Union(..)
        )
    };
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (f, column) in schema.fields().iter().zip(batch.columns()) {
        if !nested(f.data_type()) {
            fields.push(f.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        // One column, written as JSON objects {"v": ...} and read back per row.
        let one = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", f.data_type().clone(), true)])),
            vec![column.clone()],
        )?;
        let mut buf = Vec::new();
        {
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
            w.write(&one)?;
            w.finish()?;
        }
        let mut texts: Vec<Option<String>> = Vec::with_capacity(batch.num_rows());
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let row: serde_json::Value = serde_json::from_slice(line)?;
            texts.push(match row.get("v") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.to_string()),
            });
        }
        texts.resize(batch.num_rows(), None);
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(Arc::new(arrow::array::StringArray::from(texts)) as arrow::array::ArrayRef);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// The state of a body stream.
struct Export {
    stream: SendableRecordBatchStream,
    encoder: Option<Encoder>,
    schema: SchemaRef,
    head: Option<Vec<u8>>,
    what: &'static str,
}

async fn next_chunk(mut ex: Export) -> Option<(Result<Bytes, BoxError>, Export)> {
    if let Some(head) = ex.head.take().filter(|h| !h.is_empty()) {
        return Some((Ok(Bytes::from(head)), ex));
    }
    loop {
        let encoder = ex.encoder.as_mut()?;
        match ex.stream.next().await {
            Some(Ok(batch)) => match encoder.batch(&batch) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => return Some((Ok(Bytes::from(bytes)), ex)),
                Err(e) => {
                    ex.encoder = None;
                    return Some((Err(e), ex));
                }
            },
            Some(Err(e)) => {
                // Headers are gone: the client sees a cut-off body.
                tracing::warn!(error = %e, what = ex.what, "stream failed mid-way");
                ex.encoder = None;
                return Some((Err(Box::new(e)), ex));
            }
            None => {
                let encoder = ex.encoder.take()?;
                let bytes = encoder.finish(&ex.schema);
                return Some((bytes.map(Bytes::from), ex));
            }
        }
    }
}

/// Whether `format` can hold every column of `schema`, tried on one row of
/// nulls: a type the encoder cannot write (Parquet has no month-day-nano
/// interval, say) must be refused before the status line is sent, not
/// discovered at the first batch, when all the client can be given is a
/// cut-off body. `Err` says which format and why.
pub fn check_encodable(format: StreamFormat, schema: &SchemaRef) -> Result<(), String> {
    use arrow::datatypes::{Field, Schema};
    let nullable: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let probe_schema = Arc::new(Schema::new(nullable));
    let columns = probe_schema
        .fields()
        .iter()
        .map(|f| arrow::array::new_null_array(f.data_type(), 1))
        .collect();
    let attempt = || -> Result<(), BoxError> {
        let batch = RecordBatch::try_new(probe_schema.clone(), columns)?;
        let mut encoder = Encoder::new(format, &probe_schema)?;
        encoder.batch(&batch)?;
        encoder.finish(&probe_schema)?;
        Ok(())
    };
    attempt().map_err(|e| format!("{} cannot hold this result: {e}", format.extension()))
}

/// A body that encodes `stream` as `format` while it is read. `what` names
/// the stream in logs. With a `runtime` (the user SQL runtime), encoding
/// runs there, a few chunks ahead of the client, so a large export takes
/// no time from the runtime that acknowledges ingest; when the client goes
/// away the encoding task ends and drops the query's stream.
pub fn body(
    format: StreamFormat,
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    what: &'static str,
    runtime: Option<tokio::runtime::Handle>,
) -> Result<Body, BoxError> {
    let mut encoder = Encoder::new(format, &schema)?;
    let head = Some(encoder.head());
    let chunks = futures::stream::unfold(
        Export {
            stream,
            encoder: Some(encoder),
            schema,
            head,
            what,
        },
        next_chunk,
    );
    let Some(runtime) = runtime else {
        return Ok(Body::from_stream(chunks));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(2);
    runtime.spawn(async move {
        let mut chunks = std::pin::pin!(chunks);
        loop {
            tokio::select! {
                chunk = chunks.next() => match chunk {
                    Some(chunk) => {
                        if tx.send(chunk).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tx.closed() => break,
            }
        }
    });
    Ok(Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};

    /// The stream is pulled and encoded on the runtime given, not on the
    /// one serving the request (which also acknowledges ingest).
    #[tokio::test]
    async fn an_export_is_encoded_on_the_runtime_it_is_given() {
        use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
        let sql_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("user-sql")
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let pulled_on = Arc::new(Mutex::new(Vec::new()));
        let seen = pulled_on.clone();
        let batches = futures::stream::iter(vec![batch.clone(), batch]).map(move |b| {
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(std::thread::current().name().map(String::from));
            Ok(b)
        });
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), batches));
        let body = body(
            StreamFormat::Csv,
            schema,
            stream,
            "test",
            Some(sql_runtime.handle().clone()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&bytes[..], b"id\na\nb\na\nb\n");
        let threads = pulled_on.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(threads, vec![Some("user-sql".to_string()); 2]);
        sql_runtime.shutdown_background();
    }

    #[test]
    fn a_type_a_format_cannot_hold_is_found_before_any_byte() {
        use arrow::datatypes::IntervalUnit;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("gap", DataType::Interval(IntervalUnit::MonthDayNano), false),
        ]));
        let refused = check_encodable(StreamFormat::Parquet, &schema)
            .err()
            .unwrap_or_default();
        assert!(refused.starts_with("parquet cannot hold"), "{refused}");
        assert_eq!(check_encodable(StreamFormat::ArrowIpc, &schema), Ok(()));
        assert_eq!(check_encodable(StreamFormat::Ndjson, &schema), Ok(()));
    }

    #[test]
    fn list_columns_leave_as_json_text_in_csv() {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.values().append_value("vip");
        tags.values().append_value("refund, \"late\"");
        tags.append(true);
        tags.append(true);
        tags.append(false);
        let tags: ArrayRef = Arc::new(tags.finish());
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["e1", "e2", "e3"]));
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Utf8, false),
            Field::new("tags", tags.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, tags]).unwrap_or_else(|e| panic!("{e}"));
        let mut enc = Encoder::new(StreamFormat::Csv, &schema).unwrap_or_else(|e| panic!("{e}"));
        let csv = String::from_utf8(enc.batch(&batch).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        assert_eq!(
            csv,
            "event_id,tags\ne1,\"[\"\"vip\"\",\"\"refund, \\\"\"late\\\"\"\"\"]\"\ne2,[]\ne3,\n"
        );
        // An empty result still has its header.
        let enc = Encoder::new(StreamFormat::Csv, &schema).unwrap_or_else(|e| panic!("{e}"));
        let empty = String::from_utf8(enc.finish(&schema).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        assert_eq!(empty, "event_id,tags\n");
    }
}
