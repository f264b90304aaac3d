//! The command line: `serve`, `key create`, `ingest`, `generate`, `demo`,
//! `backtest`, `facts verify`, `audit verify`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ingest::Ingestor;
use ingest::decode::{self, DecodeLimits};

use crate::config::{Config, ConfigArgs, open_ingestor};
use crate::key_routes::KeyCommand;
use crate::server;
use crate::state::AppState;
use services::keys::{KeyStore, Role};

#[derive(Debug, Parser)]
#[command(
    name = "cxlake",
    version,
    about = "Analytics and quality optimization for omnichannel customer service"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; env CXLAKE_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Postgres wire address (default 127.0.0.1:5433; env CXLAKE_PG_LISTEN); `off` disables it.
        #[arg(long)]
        pg_listen: Option<String>,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Bulk-load NDJSON files (.ndjson, .ndjson.gz, .ndjson.zst; `-` for stdin)
    /// through the same durable path as HTTP ingest.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Events per durable batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
    },
    /// Backtest the arrival forecast per queue on the lake's history: WAPE
    /// and MAPE of each method against the baselines and the Poisson noise
    /// floor. Reads the data directory directly (stop the server first).
    Backtest {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Interval in minutes: 15 or 30.
        #[arg(long, default_value_t = 30)]
        interval: u32,
        /// Time zone of the weekday × slot grid (IANA name); default: each
        /// tenant's reporting time zone from its settings (UTC without one).
        #[arg(long)]
        tz: Option<String>,
    },
    /// The conversation facts the server folds from events.
    Facts {
        #[command(subcommand)]
        command: FactsCommand,
    },
    /// Write realistic contract-v1 NDJSON for three demo tenants.
    Generate {
        #[command(flatten)]
        gen_args: GenArgs,
        /// Output file; `-` is stdout; a `.gz` or `.zst` name compresses.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// Generate a month of traffic (unless the data directory already has
    /// events), ingest it, and serve it; prints the URL and an admin key.
    Demo {
        #[command(flatten)]
        gen_args: GenArgs,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Postgres wire address (default 127.0.0.1:5433); `off` disables it.
        #[arg(long)]
        pg_listen: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Days of traffic.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// First day (YYYY-MM-DD); default: the `days` days up to yesterday.
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,
    /// Conversations per day over all tenants.
    #[arg(long, default_value_t = 3000.0)]
    pub conversations_per_day: f64,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl GenArgs {
    fn config(&self) -> datagen::GenConfig {
        let mut cfg = datagen::GenConfig::demo_with(self.seed, self.days.max(1), self.conversations_per_day);
        cfg.start = self
            .start
            .unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Days::new(u64::from(self.days.max(1))));
        cfg
    }
}

#[derive(Debug, Subcommand)]
pub enum FactsCommand {
    /// Recompute a random sample of conversations with the SQL views
    /// (`sql/views/conversations.sql`) from the events and compare them,
    /// column by column, with the rows cxlake serves; exits non-zero and
    /// lists the differences if there are any. Reads the data directory
    /// directly (stop the server first).
    Verify {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Conversations per tenant.
        #[arg(long, default_value_t = 1000)]
        sample: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of `<data>/audit/`; exits non-zero and names the
    /// first record that was edited, deleted or reordered.
    Verify,
}

/// `cxlake facts verify` (see [`FactsCommand::Verify`]).
async fn verify_facts(cfg: &Config, tenant: Option<String>, sample: usize) -> Result<()> {
    let ingestor = open_ingestor(cfg).await?;
    let warehouse = warehouse::Warehouse::new(ingestor.clone());
    let tenants: Vec<String> = match tenant {
        Some(t) => vec![t],
        None => warehouse::rollups::tenants(&ingestor.read_view()).into_iter().collect(),
    };
    let mut differing = 0;
    for t in tenants {
        let id = services::tenant::TenantId::parse(&t).with_context(|| format!("{t:?} is not a tenant id"))?;
        let settings =
            services::settings::load(&cfg.data_dir, &id).with_context(|| format!("settings of tenant {t}"))?;
        let v = services::kpis::verify::verify(&warehouse, &id, &settings, sample)
            .await
            .with_context(|| format!("verifying tenant {t}"))?;
        println!(
            "{t}: {} of {} conversations recomputed from the events, {} differences",
            v.sampled,
            v.conversations,
            v.differences.len()
        );
        for d in &v.differences {
            println!("  {d}");
        }
        differing += v.differences.len();
    }
    if differing > 0 {
        bail!("{differing} differences between the served rows and the views");
    }
    Ok(())
}

pub async fn run(cli: Cli) -> Result<()> {
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve { listen, pg_listen } => {
            let mut cfg = cfg;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(l) = pg_listen {
                cfg.pg_listen = l;
            }
            let ingestor = open_ingestor(&cfg).await?;
            serve(&cfg, ingestor, None).await
        }
        Command::Key { command } => crate::key_routes::run_key_command(&cfg.data_dir, command),
        Command::Audit {
            command: AuditCommand::Verify,
        } => crate::key_routes::run_audit_verify(&cfg.data_dir),
        Command::Generate { gen_args, out } => generate(&gen_args, &out),
        Command::Facts {
            command: FactsCommand::Verify { tenant, sample },
        } => verify_facts(&cfg, tenant, sample).await,
        Command::Backtest { tenant, interval, tz } => {
            let args = crate::forecast_routes::backtest::BacktestArgs {
                tenant,
                interval_minutes: interval,
                tz,
            };
            crate::forecast_routes::backtest::run(&cfg, &args, &mut std::io::stdout().lock()).await
        }
        Command::Demo {
            gen_args,
            listen,
            pg_listen,
        } => {
            let mut cfg = cfg;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(l) = pg_listen {
                cfg.pg_listen = l;
            }
            demo(&cfg, &gen_args).await
        }
        Command::Ingest { files, batch } => {
            let ingestor = open_ingestor(&cfg).await?;
            let totals = ingest_files(&ingestor, &files, batch.max(1), &cfg.decode_limits()).await?;
            ingestor.flush().await?;
            eprintln!(
                "ingested: {} accepted, {} duplicates, {} rejected lines",
                totals.accepted, totals.duplicates, totals.rejected
            );
            Ok(())
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then flushes the buffer into the lake.
pub async fn serve(cfg: &Config, ingestor: Arc<Ingestor>, banner: Option<String>) -> Result<()> {
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .with_context(|| format!("--listen {:?} is not an address like 127.0.0.1:8080", cfg.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // User SQL runs on a runtime of its own, so however heavy the analysts'
    // queries are, the runtime that acknowledges ingest and answers the API
    // keeps its threads.
    let sql_runtime = SqlRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.sql.runtime_threads())
            .thread_name("cxlake-sql")
            .enable_all()
            .build()
            .context("cannot start the SQL runtime")?,
    ));
    let state = Arc::new(AppState {
        services: services::Services::new(
            cfg.data_dir.clone(),
            ingestor.clone(),
            KeyStore::open(&cfg.data_dir),
            services::experiment::store::ExperimentStore::open(&cfg.data_dir),
            services::sql::SqlService::with_runtime(cfg.sql.clone(), sql_runtime.handle())?
                .with_catalogs(Arc::new(crate::pg_server::setup_catalog)),
            services::audit::AuditLog::open(&cfg.data_dir)?,
        ),
        limits: cfg.decode_limits(),
        erasures: Arc::new(crate::erasure_jobs::ErasureJobs::open(&cfg.data_dir)?),
        dashboard_sessions: crate::dashboard_routes::Sessions::default(),
    });
    crate::erasure_jobs::ErasureJobs::start(state.erasures.clone(), &state.services);
    let last_used = spawn_last_used_writer(state.clone());
    start_pg(cfg, state.clone()).await?;
    // An ingest-only process (and the benchmark of what maintaining the
    // facts costs ingest) leaves them to be built by the first reader.
    if std::env::var("CXLAKE_FACTS_FOLLOW").as_deref() != Ok("off") {
        crate::kpi_routes::warm(state.clone());
    }
    if std::env::var_os("CXLAKE_EXIT_ON_STDIN_EOF").is_some() {
        // For supervisors and tests: when whoever started us goes away (our
        // stdin closes), stop — acknowledged events are in the WAL already.
        std::thread::spawn(|| {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            tracing::warn!("stdin closed: exiting (CXLAKE_EXIT_ON_STDIN_EOF)");
            std::process::exit(0);
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The flusher (sorting, Parquet encoding, Delta commits, compaction) runs
    // on a runtime of its own with one thread, so however heavy a flush is,
    // it never takes more than one core from the request handlers.
    let flusher = {
        let ingestor = ingestor.clone();
        std::thread::Builder::new()
            .name("cxlake-flusher".into())
            .spawn(
                move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(ingestor.run_flusher(stop_rx)),
                    Err(e) => tracing::error!(error = %e, "cannot start the flusher runtime"),
                },
            )?
    };
    tracing::info!(%local, data = %cfg.data_dir.display(), "cxlake listening");
    // Machine-readable line for scripts and tests that start the server.
    println!("listening on http://{local}");
    if let Some(b) = banner {
        println!("{b}");
    }
    axum::serve(
        listener,
        server::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        // Running queries stop at once, so requests waiting on them answer
        // and the graceful shutdown does not wait for their timeouts.
        let engine = state.sql.engine().clone();
        async move {
            shutdown_signal().await;
            engine.shut_down();
        }
    })
    .await?;
    drop(sql_runtime);
    // A save of facts under way finishes (its manifest written) and no
    // other starts, so the next start need not save everything again.
    if let Some(store) = state.warehouse.facts() {
        if tokio::time::timeout(std::time::Duration::from_secs(30), store.stop_saving())
            .await
            .is_err()
        {
            tracing::warn!("a save of facts did not finish within 30 s; the next start repeats it");
        }
    }
    last_used.abort();
    if let Err(e) = state.keys.persist_last_used() {
        tracing::warn!(error = %e, "could not record when keys were last used");
    }
    tracing::info!("shutting down: flushing the buffer into the lake");
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || flusher.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the flusher thread panicked"))?;
    Ok(())
}

/// The runtime of user SQL. Dropped without waiting for its tasks: a task
/// stuck in one long computation cannot be awaited, and dropping a runtime
/// the blocking way inside another one would panic.
struct SqlRuntime(Option<tokio::runtime::Runtime>);

impl SqlRuntime {
    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }
}

impl Drop for SqlRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Writes the keys' last-used times to the key store once a minute (never
/// per request: an fsync each time would cost more than the request).
fn spawn_last_used_writer(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let s = state.clone();
            match tokio::task::spawn_blocking(move || s.keys.persist_last_used()).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "could not record when keys were last used"),
                Err(e) => tracing::warn!(error = %e, "could not record when keys were last used"),
                Ok(Ok(())) => {}
            }
        }
    })
}

/// Starts the Postgres wire on `cfg.pg_listen` unless it is `off`. When
/// the default address is taken (another cxlake, a local Postgres on a
/// non-default port) the server runs without it and says so; an address
/// set explicitly must be free.
async fn start_pg(cfg: &Config, state: Arc<AppState>) -> Result<()> {
    if cfg.pg_listen.eq_ignore_ascii_case("off") {
        return Ok(());
    }
    let addr: SocketAddr = cfg.pg_listen.parse().with_context(|| {
        format!(
            "--pg-listen {:?} is not an address like 127.0.0.1:5433 (or off)",
            cfg.pg_listen
        )
    })?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if cfg.pg_listen == crate::config::DEFAULT_PG_LISTEN => {
            tracing::warn!(%addr, error = %e, "Postgres wire not started: the default address is taken; set --pg-listen");
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr} (--pg-listen)")),
    };
    let local = listener.local_addr()?;
    let tls = match (&cfg.pg_tls_cert, &cfg.pg_tls_key) {
        (Some(c), Some(k)) => Some(crate::pg_server::tls_acceptor(c, k)?),
        (None, None) => None,
        _ => anyhow::bail!("pg_tls_cert and pg_tls_key go together: set both or neither"),
    };
    let tls_on = tls.is_some();
    tokio::spawn(async move {
        if let Err(e) = crate::pg_server::serve(listener, state, tls).await {
            tracing::error!(error = %e, "Postgres wire stopped");
        }
    });
    tracing::info!(%local, tls = tls_on, "Postgres wire listening");
    // Machine-readable line for scripts and tests.
    println!("postgres on {local} (database {})", crate::pg_server::DATABASE);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[derive(Debug, Default)]
pub struct IngestTotals {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
}

fn open_input(path: &Path) -> Result<(Box<dyn Read + Send>, u64)> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin()), 0));
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = path.to_string_lossy();
    let reader: Box<dyn Read + Send> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else {
        Box::new(file)
    };
    Ok((reader, len))
}

/// Streams NDJSON files through decode → validate → durable ingest in
/// batches, with a progress bar on stderr.
pub async fn ingest_files(
    ingestor: &Arc<Ingestor>,
    files: &[PathBuf],
    batch: usize,
    limits: &DecodeLimits,
) -> Result<IngestTotals> {
    let mut totals = IngestTotals::default();
    for path in files {
        let (reader, len) = open_input(path)?;
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(path.display().to_string());
        let counted = CountingReader {
            inner: reader,
            bar: bar.clone(),
        };
        let mut lines = BufReader::with_capacity(1 << 20, counted);
        let mut first_line = 1usize;
        loop {
            let mut chunk = Vec::with_capacity(batch * 400);
            let mut n = 0;
            while n < batch {
                let before = chunk.len();
                if lines.read_until(b'\n', &mut chunk)? == 0 {
                    break;
                }
                if chunk.len() > before {
                    n += 1;
                }
            }
            if n == 0 {
                break;
            }
            // The window is centred on the moment each batch is read, as
            // for a request; `--max-event-age-days` widens it for backfills.
            let decoded = decode::decode_events_at(&chunk, limits, chrono::Utc::now().timestamp_micros())?;
            for r in decoded.rejected.iter().take(20usize.saturating_sub(totals.rejected)) {
                bar.suspend(|| {
                    eprintln!(
                        "{}:{}: {}: {}",
                        path.display(),
                        first_line + r.line - 1,
                        r.field,
                        r.reason
                    )
                });
            }
            let mut rejected_lines: Vec<usize> = decoded.rejected.iter().map(|r| r.line).collect();
            rejected_lines.dedup();
            totals.rejected += rejected_lines.len();
            let outcome = ingestor.ingest(decoded.events).await?;
            totals.accepted += outcome.accepted;
            totals.duplicates += outcome.duplicate_lines.len();
            first_line += n;
        }
        bar.finish_and_clear();
    }
    if totals.rejected > 20 {
        eprintln!("... {} rejected lines in all (first 20 shown)", totals.rejected);
    }
    if totals.accepted == 0 && totals.rejected > 0 {
        bail!("no event was accepted");
    }
    Ok(totals)
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    bar: indicatif::ProgressBar,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn generate(args: &GenArgs, out: &Path) -> Result<()> {
    use std::io::Write;
    let cfg = args.config();
    let sink: Box<dyn Write> = if out == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
        let name = out.to_string_lossy();
        if name.ends_with(".gz") {
            Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
        } else if name.ends_with(".zst") {
            Box::new(zstd::stream::write::Encoder::new(file, 3)?.auto_finish())
        } else {
            Box::new(file)
        }
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    let stats = datagen::generate(&cfg, &mut sink)?;
    sink.flush()?;
    eprintln!("{stats}");
    Ok(())
}

/// Generates traffic straight into the ingest pipeline (same durable path
/// as HTTP), flushes, and returns how many events were accepted.
async fn load_generated(ingestor: &Arc<Ingestor>, args: &GenArgs, limits: &DecodeLimits) -> Result<usize> {
    let cfg = args.config();
    let mut generator = datagen::Generator::new(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = indicatif::ProgressBar::new(u64::from(cfg.days) * 24);
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating + ingesting [{bar:30}] {pos}/{len} hours {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut accepted = 0;
    let mut chunk = String::new();
    let mut more = true;
    while more {
        more = generator.next_chunk(&mut chunk);
        if chunk.len() < (8 << 20) && more {
            bar.inc(1);
            continue;
        }
        let decoded = decode::decode_events(chunk.as_bytes(), limits)?;
        if let Some(r) = decoded.rejected.first() {
            bail!(
                "the generator wrote an invalid event (line {}: {} {}); this is a bug",
                r.line,
                r.field,
                r.reason
            );
        }
        accepted += ingestor.ingest(decoded.events).await?.accepted;
        bar.inc(1);
        bar.set_message(format!("{accepted} events"));
        chunk.clear();
    }
    bar.finish_and_clear();
    ingestor.flush().await?;
    Ok(accepted)
}

/// What a tenant of the demo would have set up itself: its reporting time
/// zone and a labour rate (settings), and the generator's greeting
/// experiment, registered and started when its generated traffic begins,
/// so the dashboards answer "which greeting wins" from the first visit.
fn demo_tenants(data_dir: &Path, gen_cfg: &datagen::GenConfig) -> Result<()> {
    use services::experiment::store::{Action, ExperimentDefinition, ExperimentStore, timestamp};
    use services::settings::{HourlyRate, TenantSettings};
    let experiments = ExperimentStore::open(data_dir);
    for profile in &gen_cfg.tenants {
        let Some(tenant) = services::tenant::TenantId::parse(&profile.tenant_id) else {
            continue;
        };
        if !services::settings::settings_path(data_dir, &tenant).exists() {
            let rate = match profile.currency.as_str() {
                "CNY" => 45.0,
                "JPY" => 2500.0,
                _ => 28.0,
            };
            let settings = TenantSettings {
                time_zone: profile.timezone.name().to_string(),
                hourly_rates: vec![HourlyRate {
                    team: None,
                    rate,
                    currency: profile.currency.clone(),
                }],
                ..TenantSettings::default()
            };
            services::settings::store(data_dir, &tenant, &settings)?;
        }
        let Some(exp) = gen_cfg.experiment.as_ref().filter(|_| profile.runs_experiment) else {
            continue;
        };
        // The first local midnight of the generated traffic.
        let midnight = gen_cfg.start.and_hms_opt(0, 0, 0).unwrap_or_default();
        let started = chrono::TimeZone::from_local_datetime(&profile.timezone, &midnight)
            .earliest()
            .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&chrono::Utc));
        let started = timestamp(started);
        let definition: ExperimentDefinition = serde_json::from_value(serde_json::json!({
            "key": exp.key,
            "seed": exp.assignment_seed,
            "kind": "greeting",
            "description": "Friendlier bot greeting (the demo's generated experiment)",
            "variants": exp.variants.iter().map(|v| serde_json::json!({
                "key": v.key, "weight": v.weight, "payload": {"greeting": v.key}
            })).collect::<Vec<_>>(),
            "primary_metric": "conversion",
            "guardrail_metrics": ["csat", "transfer", "frt"],
            "planned_duration_days": gen_cfg.days
        }))?;
        experiments
            .update(tenant.as_str(), |registry| {
                if registry.get(&exp.key).is_none() {
                    registry.create(definition, "demo", &started)?;
                    registry.transition(&exp.key, Action::Start, "demo", &started)?;
                }
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("registering the demo experiment of {}: {e}", tenant.as_str()))?;
    }
    Ok(())
}

async fn demo(cfg: &Config, args: &GenArgs) -> Result<()> {
    let ingestor = open_ingestor(cfg).await?;
    if ingestor.known_events() == 0 {
        let started = std::time::Instant::now();
        // The generator writes exactly the days asked for (`--start`,
        // `--days`), however old: that choice is the demo's, so only the
        // contract's own bounds apply.
        let limits = DecodeLimits {
            event_window: None,
            ..cfg.decode_limits()
        };
        let n = load_generated(&ingestor, args, &limits).await?;
        demo_tenants(&cfg.data_dir, &args.config())?;
        eprintln!(
            "loaded {n} events of {} days in {:.1} s",
            args.days,
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!(
            "{} already holds {} events; serving them",
            cfg.data_dir.display(),
            ingestor.known_events()
        );
    }
    let keys = KeyStore::open(&cfg.data_dir);
    let (_, key) = keys.create("*", Role::Admin, Some("demo".into()))?;
    let url = format!("http://{}", cfg.listen);
    let mut banner = format!(
        "dashboards: {url}/  (sign in with a tenant key below)\nadmin key, all tenants (SQL, APIs with ?tenant=): {key}\n"
    );
    for tenant in args.config().tenants.iter().map(|t| t.tenant_id.clone()) {
        let (_, tenant_key) = keys.create(&tenant, Role::Admin, Some("demo".into()))?;
        banner.push_str(&format!("admin key for {tenant}: {tenant_key}\n"));
    }
    banner.push_str(&format!(
        "try:\n  curl -s -H 'Authorization: Bearer {key}' -d '{{\"sql\":\"SELECT tenant_id, channel, count(*) AS conversations FROM conversations GROUP BY 1, 2 ORDER BY 1, 3 DESC\"}}' {url}/v1/sql"
    ));
    if !cfg.pg_listen.eq_ignore_ascii_case("off") {
        if let Some((host, port)) = cfg.pg_listen.rsplit_once(':') {
            banner.push_str(&format!(
                "\n  PGPASSWORD={key} psql -h {host} -p {port} -U '*' cxlake   # or -U <tenant> with that tenant's key"
            ));
        }
    }
    serve(cfg, ingestor, Some(banner)).await
}
