//! Request bodies to validated events: content decoding (gzip, zstd),
//! framing (NDJSON or one JSON array) and per-line validation.
//!
//! A body is never all-or-nothing by accident: every line is judged on its
//! own and reported with its 1-based line number (for a JSON array, the
//! element's 1-based position). Only problems that make lines impossible to
//! tell apart (a body over the limit, a broken gzip stream, a JSON array
//! that does not parse) fail the whole body.
//!
//! Decoding is a pure function of the body, the limits and the clock
//! reading it is given ([`decode_events_at`]): the caller reads the clock
//! once, when the body arrived, so a test can pin "now".

use std::io::Read;

use serde::Serialize;
use serde_json::Value;

use crate::contract::{Event, EventWindow, FieldError};

/// Limits applied while decoding one request body.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest body accepted after decompression, in bytes.
    pub max_body_bytes: usize,
    /// Largest single NDJSON line (or array element, re-serialized), in bytes.
    pub max_line_bytes: usize,
    /// Accepted `occurred_at` around the clock reading; `None` keeps only
    /// the contract's own bounds (years 1970 to 2199), for fixtures and
    /// replays whose fixed dates are their point. The server and
    /// `cxlake ingest` always set one (see `api/src/config.rs`).
    pub event_window: Option<EventWindow>,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_line_bytes: 64 << 10,
            event_window: None,
        }
    }
}

impl DecodeLimits {
    /// Whether `event` may be ingested at `now_us` (UTC microseconds): the
    /// contract checked its shape; this checks its date against the window.
    pub fn check_occurred_at(&self, event: &Event, now_us: i64) -> Result<(), FieldError> {
        match self.event_window {
            Some(window) => window.check(event.occurred_at_us, now_us),
            None => Ok(()),
        }
    }
}

/// How the request body was compressed (`Content-Encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    Zstd,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value.
    pub fn from_header(value: Option<&str>) -> Result<Self, BodyError> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::Identity),
            Some(v) if v.is_empty() || v == "identity" => Ok(Self::Identity),
            Some(v) if v == "gzip" || v == "x-gzip" => Ok(Self::Gzip),
            Some(v) if v == "zstd" => Ok(Self::Zstd),
            Some(v) => Err(BodyError::UnsupportedEncoding(v)),
        }
    }
}

/// A problem with the body as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes after decompression; send smaller batches")]
    TooLarge { limit: usize },
    #[error("Content-Encoding {0:?} is not supported; use gzip, zstd or none")]
    UnsupportedEncoding(String),
    #[error("the {encoding} body could not be decompressed: {detail}")]
    Corrupt { encoding: &'static str, detail: String },
    #[error("the body starts with '[' but is not a JSON array of events: {0}")]
    BadArray(String),
}

/// One rejected line: where, which field, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 1-based line number (NDJSON) or element position (JSON array).
    pub line: usize,
    /// The field at fault; empty when the line as a whole is bad.
    pub field: String,
    pub reason: String,
}

/// The outcome of decoding one body.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Valid events with their line numbers.
    pub events: Vec<(usize, Event)>,
    pub rejected: Vec<Rejection>,
}

impl Decoded {
    /// Validates one parsed line: the contract, then the event window.
    fn judge(&mut self, line: usize, v: &Value, limits: &DecodeLimits, now_us: i64) {
        match Event::from_json(v) {
            Ok(ev) => match limits.check_occurred_at(&ev, now_us) {
                Ok(()) => self.events.push((line, ev)),
                Err(e) => self.reject_all(line, vec![e]),
            },
            Err(errors) => self.reject_all(line, errors),
        }
    }

    fn reject_all(&mut self, line: usize, errors: Vec<FieldError>) {
        self.rejected.extend(errors.into_iter().map(|e| Rejection {
            line,
            field: e.field,
            reason: e.reason,
        }));
    }
}

/// Undoes the `Content-Encoding`, refusing to inflate past `limit` bytes
/// (a 10 KB gzip bomb must not become 10 GB in memory).
pub fn decompress(body: &[u8], encoding: ContentEncoding, limit: usize) -> Result<Vec<u8>, BodyError> {
    fn read_limited(mut r: impl Read, limit: usize, name: &'static str) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        let read = (&mut r)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BodyError::Corrupt {
                encoding: name,
                detail: e.to_string(),
            })?;
        if read > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(out)
    }
    match encoding {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            Ok(body.to_vec())
        }
        ContentEncoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, "gzip"),
        ContentEncoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| BodyError::Corrupt {
                encoding: "zstd",
                detail: e.to_string(),
            })?;
            read_limited(decoder, limit, "zstd")
        }
    }
}

/// [`decode_events_at`] with the clock read now.
pub fn decode_events(body: &[u8], limits: &DecodeLimits) -> Result<Decoded, BodyError> {
    decode_events_at(body, limits, chrono::Utc::now().timestamp_micros())
}

/// Splits and validates an (already decompressed) body; `now_us` (UTC
/// microseconds) is the clock reading the limits' event window is
/// centred on.
pub fn decode_events_at(body: &[u8], limits: &DecodeLimits, now_us: i64) -> Result<Decoded, BodyError> {
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let mut out = Decoded::default();
    let Some(first) = first else {
        return Ok(out);
    };
    if body[first] == b'[' {
        let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| BodyError::BadArray(e.to_string()))?;
        out.events.reserve(items.len());
        for (i, item) in items.iter().enumerate() {
            validate_value(i + 1, item, limits, now_us, &mut out);
        }
        return Ok(out);
    }
    out.events.reserve(body.len() / 256);
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if raw.len() > limits.max_line_bytes {
            out.reject_all(
                line_no,
                vec![FieldError::new(
                    "",
                    format!(
                        "line is {} bytes; at most {} are accepted",
                        raw.len(),
                        limits.max_line_bytes
                    ),
                )],
            );
            continue;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                out.reject_all(
                    line_no,
                    vec![FieldError::new(
                        "",
                        format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
                    )],
                );
                continue;
            }
        };
        match serde_json::from_str::<Value>(text) {
            Ok(v) => out.judge(line_no, &v, limits, now_us),
            Err(e) => out.reject_all(line_no, vec![FieldError::new("", format!("malformed JSON: {e}"))]),
        }
    }
    Ok(out)
}

fn validate_value(line: usize, v: &Value, limits: &DecodeLimits, now_us: i64, out: &mut Decoded) {
    // Array elements arrive parsed; measure their size the way a line would be.
    let size = serde_json::to_string(v).map(|s| s.len()).unwrap_or(0);
    if size > limits.max_line_bytes {
        out.reject_all(
            line,
            vec![FieldError::new(
                "",
                format!("event is {size} bytes; at most {} are accepted", limits.max_line_bytes),
            )],
        );
        return;
    }
    out.judge(line, v, limits, now_us);
}

#[cfg(test)]
mod tests;
