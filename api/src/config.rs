//! Configuration: defaults, then a TOML file, then `CXLAKE_*` environment
//! variables, then command-line flags — each later source wins.
//!
//! ```toml
//! # cxlake.toml
//! data_dir = "./cxlake-data"
//! listen = "127.0.0.1:8080"
//! # lake = "/mnt/lake/events"      # default: <data_dir>/lake/events
//! max_body_bytes = 16777216          # per ingest request, after decompression
//! max_line_bytes = 65536             # per event
//! max_event_age_days = 400           # oldest accepted occurred_at, days before the server's clock
//! max_event_future_s = 86400         # latest accepted occurred_at, seconds after it
//! flush_max_events = 100000
//! flush_max_bytes = 67108864
//! flush_max_age_s = 60             # reads see buffered events; a longer age means fewer, larger lake files to rewrite
//! compact_min_files = 8              # merge a partition's small files once this many are of about one size; 0 = off
//! compact_target_file_mb = 128       # size of the files compaction writes
//! vacuum_retention_s = 3600          # replaced lake files stay this long for readers outside cxlake (its own queries are tracked)
//! max_buffered_mb = 1024             # past this, ingest answers 503 + Retry-After until the lake catches up
//! pg_listen = "127.0.0.1:5433"       # Postgres wire; "off" to disable
//! # pg_tls_cert = "server.crt"       # PEM; with pg_tls_key, TLS on the Postgres port
//! # pg_tls_key = "server.key"        # PEM, PKCS#8
//!
//! [sql]                              # all user SQL together
//! memory_total_mb = 0                # 0 = 40% of the machine's memory
//! spill_max_mb = 10240
//! threads = 0                        # SQL runtime workers; 0 = one per core
//! [sql.analyst]                      # bounds of analyst SQL (HTTP and Postgres)
//! timeout_s = 30
//! max_rows = 1000000
//! memory_mb = 1024
//! concurrent_per_tenant = 4
//! max_json_mb = 256
//! [sql.admin]
//! timeout_s = 120
//! max_rows = 10000000
//! memory_mb = 2048
//! concurrent_per_tenant = 8
//! max_json_mb = 1024
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The Postgres wire's default address.
pub const DEFAULT_PG_LISTEN: &str = "127.0.0.1:5433";

/// Every setting, after all sources are applied.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub lake: Option<String>,
    pub max_body_bytes: usize,
    pub max_line_bytes: usize,
    /// Events whose `occurred_at` is older than this many days before the
    /// server's clock are rejected (see [`ingest::contract::EventWindow`]).
    pub max_event_age_days: u32,
    /// ... or later than this many seconds after it.
    pub max_event_future_s: u32,
    pub flush_max_events: usize,
    pub flush_max_bytes: usize,
    pub flush_max_age_s: f64,
    pub compact_min_files: usize,
    pub compact_target_file_mb: u64,
    pub vacuum_retention_s: f64,
    pub max_buffered_mb: usize,
    /// Postgres wire address, or `off`.
    pub pg_listen: String,
    pub pg_tls_cert: Option<PathBuf>,
    pub pg_tls_key: Option<PathBuf>,
    pub sql: services::sql::SqlConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./cxlake-data"),
            listen: "127.0.0.1:8080".into(),
            lake: None,
            max_body_bytes: 16 << 20,
            max_line_bytes: 64 << 10,
            max_event_age_days: ingest::contract::EventWindow::DEFAULT.max_age_days,
            max_event_future_s: ingest::contract::EventWindow::DEFAULT.max_future_s,
            flush_max_events: 100_000,
            flush_max_bytes: 64 << 20,
            flush_max_age_s: 60.0,
            compact_min_files: 8,
            compact_target_file_mb: 128,
            vacuum_retention_s: 3600.0,
            max_buffered_mb: 1024,
            pg_listen: DEFAULT_PG_LISTEN.into(),
            pg_tls_cert: None,
            pg_tls_key: None,
            sql: services::sql::SqlConfig::default(),
        }
    }
}

/// Values given on the command line (each optional).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, env = "CXLAKE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory: write-ahead log, keys, and the lake by default.
    #[arg(long, env = "CXLAKE_DATA_DIR", global = true)]
    pub data: Option<PathBuf>,
    /// Lake location: a directory or an object-store URL.
    #[arg(long, env = "CXLAKE_LAKE", global = true)]
    pub lake: Option<String>,
    /// Reject events older than this many days before now (default 400;
    /// raise it to backfill history with `cxlake ingest`).
    #[arg(long, global = true)]
    pub max_event_age_days: Option<u32>,
    /// Reject events later than this many seconds after now (default 86400).
    #[arg(long, global = true)]
    pub max_event_future_s: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("environment variable {name}={value:?}: {detail}")]
    Env {
        name: String,
        value: String,
        detail: String,
    },
}

fn env_parse<T: std::str::FromStr>(name: &str, target: &mut T) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Ok(value) = std::env::var(name) {
        *target = value.parse().map_err(|e: T::Err| ConfigError::Env {
            name: name.into(),
            value: value.clone(),
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

impl Config {
    /// Builds the configuration from every source.
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let mut cfg = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        env_parse("CXLAKE_LISTEN", &mut cfg.listen)?;
        env_parse("CXLAKE_MAX_BODY_BYTES", &mut cfg.max_body_bytes)?;
        env_parse("CXLAKE_MAX_LINE_BYTES", &mut cfg.max_line_bytes)?;
        env_parse("CXLAKE_MAX_EVENT_AGE_DAYS", &mut cfg.max_event_age_days)?;
        env_parse("CXLAKE_MAX_EVENT_FUTURE_S", &mut cfg.max_event_future_s)?;
        env_parse("CXLAKE_FLUSH_MAX_EVENTS", &mut cfg.flush_max_events)?;
        env_parse("CXLAKE_FLUSH_MAX_BYTES", &mut cfg.flush_max_bytes)?;
        env_parse("CXLAKE_FLUSH_MAX_AGE_S", &mut cfg.flush_max_age_s)?;
        env_parse("CXLAKE_COMPACT_MIN_FILES", &mut cfg.compact_min_files)?;
        env_parse("CXLAKE_COMPACT_TARGET_FILE_MB", &mut cfg.compact_target_file_mb)?;
        env_parse("CXLAKE_VACUUM_RETENTION_S", &mut cfg.vacuum_retention_s)?;
        env_parse("CXLAKE_MAX_BUFFERED_MB", &mut cfg.max_buffered_mb)?;
        env_parse("CXLAKE_PG_LISTEN", &mut cfg.pg_listen)?;
        // CXLAKE_DATA_DIR and CXLAKE_LAKE arrive through clap's `env`.
        if let Some(d) = &args.data {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &args.lake {
            cfg.lake = Some(l.clone());
        }
        if let Some(d) = args.max_event_age_days {
            cfg.max_event_age_days = d;
        }
        if let Some(s) = args.max_event_future_s {
            cfg.max_event_future_s = s;
        }
        Ok(cfg)
    }

    fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let err = |detail: String| ConfigError::File {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.to_string()))
    }

    pub fn ingest_config(&self) -> ingest::IngestConfig {
        let mut c = ingest::IngestConfig::new(&self.data_dir);
        c.lake_location = self.lake.clone();
        c.flush_max_events = self.flush_max_events;
        c.flush_max_bytes = self.flush_max_bytes;
        c.flush_max_age = Duration::from_secs_f64(self.flush_max_age_s.max(0.05));
        c.compact_min_files = self.compact_min_files;
        c.compact_target_file_bytes = self.compact_target_file_mb.max(1) << 20;
        c.vacuum_retention = Duration::from_secs_f64(self.vacuum_retention_s.max(0.0));
        c.max_buffered_bytes = self.max_buffered_mb.max(1) << 20;
        // Older events are refused at ingest, so their keys need no dedup.
        c.dedup_horizon = Some(Duration::from_secs(u64::from(self.max_event_age_days) * 86_400));
        c
    }

    pub fn decode_limits(&self) -> ingest::decode::DecodeLimits {
        ingest::decode::DecodeLimits {
            max_body_bytes: self.max_body_bytes,
            max_line_bytes: self.max_line_bytes,
            event_window: Some(ingest::contract::EventWindow {
                max_age_days: self.max_event_age_days,
                max_future_s: self.max_event_future_s,
            }),
        }
    }
}

/// Opens the data directory's ingestor (WAL, buffer, lake) with the
/// tenants' privacy settings applied before the WAL, as every way in
/// (HTTP, webhooks, `cxlake ingest`, `cxlake backtest`) needs it.
pub async fn open_ingestor(cfg: &Config) -> anyhow::Result<std::sync::Arc<ingest::Ingestor>> {
    use anyhow::Context;
    let ingestor = ingest::Ingestor::open(
        cfg.ingest_config(),
        std::sync::Arc::new(ingest::metrics::Metrics::default()),
    )
    .await
    .with_context(|| format!("opening the data directory {}", cfg.data_dir.display()))?;
    ingestor
        .privacy()
        .set_policy_source(services::settings::privacy_policy_source(&cfg.data_dir));
    Ok(ingestor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nflush_max_age_s = 2.5\nmax_event_age_days = 3650\nmax_event_future_s = 5\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            data: Some("/tmp/x".into()),
            max_event_future_s: Some(60),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.listen, "0.0.0.0:9000");
        assert_eq!(cfg.flush_max_age_s, 2.5);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.max_line_bytes, 64 << 10, "unset values keep their defaults");
        let window = cfg.decode_limits().event_window;
        assert_eq!(
            window.map(|w| (w.max_age_days, w.max_future_s)),
            Some((3650, 60)),
            "the file widens the age, the flag beats the file's future"
        );
        let defaults = Config::default().decode_limits().event_window;
        assert_eq!(defaults, Some(ingest::contract::EventWindow::DEFAULT));
    }

    #[test]
    fn budgets_of_all_user_sql() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[sql]\nmemory_total_mb = 96\nspill_max_mb = 64\nthreads = 3\n[sql.analyst]\nmax_json_mb = 2\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        let engine = cfg.sql.engine_config();
        assert_eq!(engine.memory_total_bytes, 96 << 20);
        assert_eq!(engine.spill_max_bytes, 64 << 20);
        assert_eq!(cfg.sql.runtime_threads(), 3);
        assert_eq!(cfg.sql.analyst.max_json_mb, 2);
        // Unset: a share of the machine's memory, one thread per core.
        let default = services::sql::SqlConfig::default();
        assert!(default.engine_config().memory_total_bytes > 0);
        assert!(default.runtime_threads() >= 1);
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = Config::load(&args).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("lisen"), "{err}");
    }
}
