//! The fast path against the SQL path (`sql/kpis/overview.sql` over the
//! views) on generated traffic: rates, counts and means equal, medians and
//! p90s within the sketch's documented relative error; and an incremental
//! refresh across flushes equal to a build from scratch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use ingest::decode::{DecodeLimits, decode_events};
use ingest::metrics::Metrics;
use ingest::{Event, IngestConfig, Ingestor};
use warehouse::Warehouse;
use warehouse::rollups::TenantRollup;
use warehouse::rollups::sketch::{RELATIVE_ERROR, ZERO_BELOW};

use super::super::lake::{self, Constraint, KpiRow};
use super::super::params::{Dimension, Window};
use super::Source;
use crate::settings::{HourlyRate, TenantSettings};
use crate::tenant::TenantId;

const TENANT: &str = "dragon-mart";

fn generated(days: u32, per_day: f64) -> Vec<(usize, Event)> {
    let mut cfg = datagen::GenConfig::demo_with(7, days, per_day);
    cfg.start = NaiveDate::from_ymd_opt(2026, 3, 27).unwrap();
    let mut out = Vec::new();
    datagen::generate(&cfg, &mut out).unwrap();
    decode_events(&out, &DecodeLimits::default()).unwrap().events
}

async fn open(dir: &std::path::Path) -> Arc<Ingestor> {
    let mut cfg = IngestConfig::new(dir);
    cfg.flush_max_age = std::time::Duration::from_secs(3600);
    cfg.flush_max_events = usize::MAX;
    cfg.flush_max_bytes = usize::MAX;
    Ingestor::open(cfg, Arc::new(Metrics::default())).await.unwrap()
}

fn settings() -> TenantSettings {
    TenantSettings {
        hourly_rates: vec![
            HourlyRate {
                team: None,
                rate: 20.0,
                currency: "EUR".into(),
            },
            HourlyRate {
                team: Some("cn_service".into()),
                rate: 31.5,
                currency: "EUR".into(),
            },
        ],
        ..TenantSettings::default()
    }
}

async fn refresh(ingestor: &Arc<Ingestor>, rollup: &mut TenantRollup) -> warehouse::rollups::RefreshStats {
    let (warehouse, tenant, settings) = (Warehouse::new(ingestor.clone()), tid(), settings());
    let source = Source {
        warehouse: &warehouse,
        tenant: &tenant,
        settings: &settings,
        long: Default::default(),
    };
    rollup
        .refresh(&ingestor.read_view(), TENANT, super::config(&settings), &source)
        .await
        .unwrap()
}

fn tid() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

type Keyed = BTreeMap<(String, String, String), (Option<f64>, i64)>;

fn keyed(rows: Vec<KpiRow>) -> Keyed {
    rows.into_iter()
        .map(|r| ((r.kpi, r.measure, r.segment), (r.value, r.n)))
        .collect()
}

fn assert_same(what: &str, fast: Keyed, sql: Keyed) {
    assert_close(what, fast, sql, RELATIVE_ERROR)
}

/// `quantile_error`: the relative error allowed on medians and p90s.
fn assert_close(what: &str, fast: Keyed, sql: Keyed, quantile_error: f64) {
    assert_eq!(
        fast.keys().collect::<Vec<_>>(),
        sql.keys().collect::<Vec<_>>(),
        "{what}: the same rows"
    );
    for (k, (fv, fn_)) in &fast {
        let (sv, sn) = &sql[k];
        assert_eq!(fn_, sn, "{what} {k:?}: n");
        match (fv, sv) {
            (None, None) => {}
            (Some(f), Some(s)) => {
                let tolerance = if k.1 == "median" || k.1 == "p90" {
                    quantile_error * s.abs() + ZERO_BELOW
                } else {
                    1e-9 * s.abs().max(1.0)
                };
                assert!((f - s).abs() <= tolerance, "{what} {k:?}: fast {f} vs sql {s}");
            }
            _ => panic!("{what} {k:?}: fast {fv:?} vs sql {sv:?}"),
        }
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Runs both paths over each window × constraints and compares them.
async fn compare(
    ingestor: &Arc<Ingestor>,
    rollup: &TenantRollup,
    cases: &[(Window, Vec<Constraint>)],
    quantile_error: f64,
) {
    let (warehouse, tenant, settings) = (Warehouse::new(ingestor.clone()), tid(), settings());
    // The definition: the views computed from events, not the materialized rows.
    let tctx = lake::tenant_session_in(&warehouse, &tenant, &settings, Default::default())
        .await
        .unwrap();
    let span = Window {
        from: cases.iter().map(|c| c.0.from).min().unwrap(),
        to: cases.iter().map(|c| c.0.to).max().unwrap(),
    };
    let kctx = lake::snapshot(&tctx, &tenant, &settings, &span, &lake::SNAPSHOT_TABLES, false)
        .await
        .unwrap();
    let now = Utc::now().timestamp_micros();
    for (window, constraints) in cases {
        let what = format!("{} .. {} {constraints:?}", window.from, window.to);
        let time_based = constraints.is_empty();
        let mut sql = lake::run_overview(&kctx, window, constraints).await.unwrap();
        if !time_based {
            sql.retain(|r| !lake::is_time_based(r));
        }
        let fast = super::run_overview(rollup, &settings, window, constraints, time_based, now);
        assert!(
            fast.iter().any(|r| r.kpi == "conversations" && r.n > 0),
            "{what}: the case has conversations"
        );
        assert_close(&what, keyed(fast), keyed(sql), quantile_error);
        for d in [Dimension::Team, Dimension::Tag] {
            let sql = lake::dimension_values(&kctx, window, constraints, d).await.unwrap();
            assert_eq!(
                super::dimension_values(rollup, window, constraints, d),
                sql,
                "{what} {d}"
            );
        }
        // the tag pairs of `/v1/analyses/bottlenecks`
        lake::restrict_conversations(&kctx, constraints).await.unwrap();
        let pairs_sql = warehouse::views::analysis_sql("bottlenecks_pairs").unwrap();
        for min_count in [1, 3] {
            let sql = crate::analyses::run_sql(&kctx, pairs_sql, window, Some(min_count))
                .await
                .unwrap();
            let untagged = constraints
                .iter()
                .any(|c| c.dimension == Dimension::Tag && c.values.is_none());
            assert_eq!(sql.rows.is_empty(), untagged, "{what}: pairs");
            let fast = crate::analyses::pairs_table(&super::tag_counts(rollup, window, constraints), min_count);
            // the same rows; the measures to the last bits of a DOUBLE
            assert_eq!(fast.columns, sql.columns);
            assert_eq!(
                fast.rows.len(),
                sql.rows.len(),
                "{what}: pairs with min_count {min_count}"
            );
            for (f, s) in fast.rows.iter().zip(&sql.rows) {
                for (a, b) in f.iter().zip(s) {
                    match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * y.abs(), "{what}: {f:?} vs {s:?}"),
                        _ => assert_eq!(a, b, "{what}: {f:?} vs {s:?}"),
                    }
                }
            }
        }
    }
}

fn cases() -> Vec<(Window, Vec<Constraint>)> {
    let whatsapp = Constraint {
        dimension: Dimension::Channel,
        values: Some(vec!["whatsapp".into(), "webchat".into()]),
    };
    let team = Constraint {
        dimension: Dimension::Team,
        values: Some(vec!["cn_service".into()]),
    };
    let no_tag = Constraint {
        dimension: Dimension::Tag,
        values: None,
    };
    let all = Window {
        from: at("2026-03-27T00:00:00Z"),
        to: at("2026-03-30T00:00:00Z"),
    };
    // edges off the hour: cells for the whole hours, facts for the rest
    let ragged = Window {
        from: at("2026-03-27T05:30:00Z"),
        to: at("2026-03-29T17:45:10Z"),
    };
    vec![
        (all, vec![]),
        (ragged, vec![]),
        (ragged, vec![whatsapp.clone()]),
        (all, vec![team]),
        (ragged, vec![no_tag, whatsapp]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_equals_the_sql_path_and_refreshes_incrementally() {
    let events = generated(3, 240.0);
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;

    // Part one flushed, part two flushed later, part three still buffered:
    // conversations span every cut (and midnights).
    let cut1 = events.len() * 5 / 10;
    let cut2 = events.len() * 8 / 10;
    ingestor.ingest(events[..cut1].to_vec()).await.unwrap();
    ingestor.flush().await.unwrap();
    let mut incremental = TenantRollup::new();
    // always the sketches (small windows would be answered exactly)
    incremental.set_exact_below(0);
    assert!(refresh(&ingestor, &mut incremental).await.full);
    ingestor.ingest(events[cut1..cut2].to_vec()).await.unwrap();
    ingestor.flush().await.unwrap();
    let stats = refresh(&ingestor, &mut incremental).await;
    assert!(!stats.full && stats.conversations > 0, "{stats:?}");
    ingestor.ingest(events[cut2..].to_vec()).await.unwrap();
    let stats = refresh(&ingestor, &mut incremental).await;
    assert!(!stats.full && stats.conversations > 0, "{stats:?}");
    assert_eq!(
        refresh(&ingestor, &mut incremental).await,
        Default::default(),
        "nothing new"
    );

    let mut scratch = TenantRollup::new();
    refresh(&ingestor, &mut scratch).await;
    assert_eq!(incremental.conversations(), scratch.conversations());
    let now = Utc::now().timestamp_micros();
    for (window, constraints) in cases() {
        let (a, b) = (
            super::run_overview(&incremental, &settings(), &window, &constraints, true, now),
            super::run_overview(&scratch, &settings(), &window, &constraints, true, now),
        );
        // same facts, same cells: the same numbers (up to summation order)
        assert_same("incremental vs scratch", keyed(a), keyed(b));
    }
    compare(&ingestor, &incremental, &cases(), RELATIVE_ERROR).await;
    // small windows: exact quantiles, like the SQL path's
    compare(&ingestor, &scratch, &cases(), 1e-7).await;

    // and once the rest is flushed, still the same
    ingestor.flush().await.unwrap();
    refresh(&ingestor, &mut incremental).await;
    assert_eq!(incremental.conversations(), scratch.conversations());
    let (w, c) = &cases()[1];
    assert_same(
        "after the last flush",
        keyed(super::run_overview(&incremental, &settings(), w, c, true, now)),
        keyed(super::run_overview(&scratch, &settings(), w, c, true, now)),
    );
}

/// The rows of `sql` in `ctx`, as text.
async fn table_text(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_in_slices_and_its_materialized_rows_equal_the_views() {
    let events = generated(3, 240.0);
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    let cut = events.len() * 9 / 10;
    ingestor.ingest(events[..cut].to_vec()).await.unwrap();
    ingestor.flush().await.unwrap();
    ingestor.ingest(events[cut..].to_vec()).await.unwrap();

    let mut sliced = TenantRollup::new();
    sliced.set_slice_conversations(40);
    let stats = refresh(&ingestor, &mut sliced).await;
    assert!(stats.full && stats.slices > 3, "{stats:?}");
    let mut whole = TenantRollup::new();
    whole.set_slice_conversations(u64::MAX);
    assert_eq!(refresh(&ingestor, &mut whole).await.slices, 1);
    assert_eq!(sliced.conversations(), whole.conversations());
    // windows this small are answered with exact quantiles
    compare(&ingestor, &sliced, &cases(), 1e-7).await;

    // the materialized rows are the view's rows
    let (warehouse, tenant, settings) = (Warehouse::new(ingestor.clone()), tid(), settings());
    let views = lake::tenant_session_in(&warehouse, &tenant, &settings, Default::default())
        .await
        .unwrap();
    let all = "SELECT * EXCLUDE (sla_met) FROM conversations ORDER BY conversation_id";
    let expected = table_text(&views, all).await;
    assert!(expected.lines().count() > 200, "{} lines", expected.lines().count());
    let (schema, rows) = sliced.conversations_table().unwrap();
    let rows_ctx = datafusion::prelude::SessionContext::new();
    rows_ctx
        .register_table(
            "conversations",
            Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![rows]).unwrap()),
        )
        .unwrap();
    assert_eq!(table_text(&rows_ctx, all).await, expected, "sliced rows");

    // and a tenant session reads them, `sla_met` included, refreshed as
    // new events arrive
    let with_sla = "SELECT * FROM conversations ORDER BY conversation_id";
    // Built first, however long that takes on a loaded machine (a request
    // would be told to come back after `facts_wait`).
    drop(super::rollup(&warehouse, &tenant, &settings).await.unwrap());
    let served = lake::tenant_session(&warehouse, &tenant, &settings).await.unwrap();
    assert_eq!(table_text(&served, with_sla).await, table_text(&views, with_sla).await);
    ingestor.flush().await.unwrap();
    let late = "{\"event_id\":\"late-1\",\"tenant_id\":\"dragon-mart\",\"type\":\"conversation.started\",\"occurred_at\":\"2026-03-29T23:59:00Z\",\"conversation_id\":\"late-conv\",\"customer_id\":\"late-cust\",\"channel\":\"whatsapp\"}";
    let late = decode_events(late.as_bytes(), &DecodeLimits::default()).unwrap().events;
    ingestor.ingest(late).await.unwrap();
    let count = "SELECT count(*) AS n FROM conversations WHERE conversation_id = 'late-conv'";
    assert_eq!(table_text(&served, count).await, table_text(&views, count).await);
    assert!(table_text(&served, count).await.contains("| 1 "));

    // script uses are read from the kept rows of their view
    let uses = "SELECT * FROM script_uses ORDER BY conversation_id, kind, \"key\"";
    let expected = table_text(&views, uses).await;
    assert!(expected.lines().count() > 20, "{} lines", expected.lines().count());
    assert_eq!(table_text(&served, uses).await, expected);

    // exposures are read from the kept exposure events, late ones included
    let exposures = "SELECT * FROM exposures ORDER BY experiment_key, unit_id, conversation_id, variant_key";
    let expected = table_text(&views, exposures).await;
    assert!(expected.lines().count() > 50, "{} lines", expected.lines().count());
    assert_eq!(table_text(&served, exposures).await, expected);
    let late = "{\"event_id\":\"late-2\",\"tenant_id\":\"dragon-mart\",\"type\":\"experiment.exposed\",\"occurred_at\":\"2026-03-29T23:59:30Z\",\"conversation_id\":\"late-conv\",\"customer_id\":\"late-cust\",\"experiment_key\":\"greeting_v2\",\"variant_key\":\"control\"}";
    let late = decode_events(late.as_bytes(), &DecodeLimits::default()).unwrap().events;
    ingestor.ingest(late).await.unwrap();
    let count = "SELECT count(*) AS n FROM exposures WHERE conversation_id = 'late-conv'";
    assert!(table_text(&views, count).await.contains("| 1 "));
    assert_eq!(table_text(&served, count).await, table_text(&views, count).await);
    assert_eq!(
        table_text(&served, exposures).await,
        table_text(&views, exposures).await
    );
}

/// The groups of one pass ([`super::run_groups`]) are, row for row, the
/// runs with each group's values as filters (`/v1/kpis` answers a
/// `group_by` either way): scalar and list dimensions, NULL and empty
/// values, a filter, and a value no conversation has; the groups that
/// occur ([`super::occurring_groups`]) are those with conversations, and
/// found and summed per bucket in one pass ([`super::run_occurring`]) they
/// are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_in_one_pass_equal_a_run_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    ingestor.ingest(generated(3, 240.0)).await.unwrap();
    let mut rollup = TenantRollup::new();
    refresh(&ingestor, &mut rollup).await;
    let window = Window {
        from: at("2026-03-27T05:30:00Z"),
        to: at("2026-03-29T17:45:10Z"),
    };
    let now = Utc::now().timestamp_micros();
    let whatsapp = Constraint {
        dimension: Dimension::Channel,
        values: Some(vec!["whatsapp".into(), "webchat".into()]),
    };
    for (filters, dims) in [
        (vec![], vec![Dimension::Team, Dimension::Agent]),
        (vec![], vec![Dimension::Tag]),
        (vec![whatsapp.clone()], vec![Dimension::Tag, Dimension::Channel]),
        (vec![whatsapp], vec![Dimension::Variant, Dimension::Queue]),
    ] {
        // every combination of each dimension's values, and one nobody has
        let mut groups: Vec<Vec<Option<String>>> = vec![vec![]];
        for &d in &dims {
            let (values, none) = super::dimension_values(&rollup, &window, &filters, d);
            let options: Vec<Option<String>> = values.into_iter().map(Some).chain(none.then_some(None)).collect();
            groups = groups
                .into_iter()
                .flat_map(|g| {
                    options.iter().map(move |o| {
                        let mut g = g.clone();
                        g.push(o.clone());
                        g
                    })
                })
                .collect();
        }
        groups.push(dims.iter().map(|_| Some("nobody".to_string())).collect());
        assert!(groups.len() > 3, "{dims:?}: {} groups", groups.len());
        let all = super::run_groups(&rollup, &window, &filters, &dims, &groups, now).unwrap();
        let mut non_empty = Vec::new();
        for (g, rows) in groups.iter().zip(all) {
            let mut constraints = filters.clone();
            constraints.extend(dims.iter().zip(g).map(|(d, v)| Constraint {
                dimension: *d,
                values: v.clone().map(|v| vec![v]),
            }));
            let one = super::run_overview(&rollup, &settings(), &window, &constraints, false, now);
            let conversations = one.iter().find(|r| r.kpi == "conversations").map_or(0, |r| r.n);
            if conversations > 0 {
                non_empty.push(g.clone());
            }
            assert_close(&format!("{dims:?} {g:?}"), keyed(rows), keyed(one), 0.0);
        }
        assert!(non_empty.len() > 1, "{dims:?}: groups with conversations");
        // the groups `/v1/kpis` lists: those with conversations, in the
        // order of the product of each dimension's values
        assert_eq!(
            super::occurring_groups(&rollup, &window, &filters, &dims, usize::MAX),
            Some(non_empty.clone()),
            "{dims:?}"
        );
        assert_eq!(
            super::occurring_groups(&rollup, &window, &filters, &dims, non_empty.len() - 1),
            None,
            "{dims:?}: over the limit"
        );
        // the same groups in buckets, found and summed in one pass, equal
        // a pass per bucket
        let edges = [
            window.from,
            at("2026-03-28T00:00:00Z"),
            at("2026-03-28T13:00:00Z"),
            window.to,
        ];
        let buckets: Vec<Window> = edges.windows(2).map(|e| Window { from: e[0], to: e[1] }).collect();
        let one = super::run_occurring(&rollup, &buckets, &filters, &dims, usize::MAX, now).unwrap();
        let found: Vec<Vec<Option<String>>> = one.iter().map(|(g, _)| g.clone()).collect();
        assert_eq!(found, non_empty, "{dims:?}: groups in buckets");
        for (b, bucket) in buckets.iter().enumerate() {
            let each = super::run_groups(&rollup, bucket, &filters, &dims, &found, now).unwrap();
            for ((g, rows), expected) in one.iter().zip(each) {
                assert_close(
                    &format!("{dims:?} {g:?} bucket {b}"),
                    keyed(rows[b].clone()),
                    keyed(expected),
                    0.0,
                );
            }
        }
        assert!(
            super::run_occurring(&rollup, &buckets, &filters, &dims, non_empty.len() - 1, now).is_none(),
            "{dims:?}: over the limit in buckets"
        );
    }
    assert!(
        super::run_groups(&rollup, &window, &[], &[Dimension::Channel], &[vec![None]], now).is_none(),
        "channel groups read the cells"
    );
}

/// A request meets a tenant whose first build has not finished: after the
/// bounded wait it gets `FactsNotReady` (503 with Retry-After), the build
/// goes on without it, and the next request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_not_left_waiting_for_a_first_build() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    ingestor.ingest(generated(2, 40.0)).await.unwrap();
    let (warehouse, tenant, settings) = (Warehouse::new(ingestor.clone()), tid(), settings());
    // Something holds the rollup, as a long first build would.
    let held = warehouse.rollup_slot(TENANT).write_owned().await;
    let err = super::serving_rollup(&warehouse, &tenant, &settings)
        .await
        .err()
        .unwrap();
    let problem = crate::ServiceError::failed("KPI query failed", err);
    assert_eq!(problem.status, http::StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem.kind, "facts-not-ready");
    assert_eq!(problem.retry_after_s, Some(1));
    assert!(problem.detail.contains(TENANT), "{problem}");
    assert_eq!(
        *warehouse.build_signal(TENANT).borrow(),
        warehouse::BuildState::Building
    );
    // The same through a query that scans the facts.
    let ctx = lake::tenant_events_session(&warehouse, &tenant, Default::default(), None)
        .await
        .unwrap();
    let err = super::use_materialized(&ctx, &warehouse, &tenant, &settings, super::Rows::Pinned)
        .await
        .err()
        .unwrap();
    assert_eq!(crate::ServiceError::failed("query", err).kind, "facts-not-ready");
    drop(held);
    // The build that the first request started finishes on its own.
    let mut signal = warehouse.build_signal(TENANT).subscribe();
    signal.wait_for(|s| *s == warehouse::BuildState::Built).await.unwrap();
    let guard = super::serving_rollup(&warehouse, &tenant, &settings).await.unwrap();
    assert!(guard.is_built());
}

/// A new attribution window is built beside the facts that serve: until
/// the rebuild is done, requests are answered at once from the facts of
/// the old window, which keep following new data; then the new ones serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_attribution_window_is_built_while_the_old_facts_serve() {
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    let events = generated(3, 60.0);
    let half = events.len() / 2;
    ingestor.ingest(events[..half].to_vec()).await.unwrap();
    let (warehouse, tenant, settings) = (Warehouse::new(ingestor.clone()), tid(), settings());
    let before = super::rollup(&warehouse, &tenant, &settings).await.unwrap();
    assert_eq!(before.config().map(|c| c.attribution_window_days), Some(7));
    let n_before = before.conversations();
    drop(before);

    let two_days = TenantSettings {
        attribution_window_days: 2,
        ..settings.clone()
    };
    ingestor.ingest(events[half..].to_vec()).await.unwrap();
    // The rebuild waits for its turn among full builds until the old
    // facts have answered (on this small lake it would otherwise finish
    // at once).
    let turn = super::FULL_BUILDS.acquire().await.unwrap();
    let serving = super::serving_rollup(&warehouse, &tenant, &two_days).await.unwrap();
    // Answered from the old window's facts, brought up to date.
    assert_eq!(serving.config().map(|c| c.attribution_window_days), Some(7));
    assert!(
        serving.conversations() > n_before,
        "{} > {n_before}",
        serving.conversations()
    );
    assert_eq!(*warehouse.rebuild_signal(TENANT).borrow(), Some(2));
    let n_all = serving.conversations();
    drop(serving);
    drop(turn);

    let mut rebuild = warehouse.rebuild_signal(TENANT).subscribe();
    rebuild.wait_for(Option::is_none).await.unwrap();
    let after = super::serving_rollup(&warehouse, &tenant, &two_days).await.unwrap();
    assert_eq!(after.config().map(|c| c.attribution_window_days), Some(2));
    assert_eq!(after.conversations(), n_all);
}

/// The rows of one kept table of `rollup`, ordered by `order`, as text.
async fn kept_text(rollup: &TenantRollup, kept: warehouse::rollups::Kept, order: &str) -> String {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", Arc::new(rollup.snapshot(kept).unwrap()))
        .unwrap();
    let columns = if kept == warehouse::rollups::Kept::Conversations {
        "* EXCLUDE (sla_met)"
    } else {
        "*"
    };
    table_text(&ctx, &format!("SELECT {columns} FROM t ORDER BY {order}")).await
}

/// Two rollups hold the same facts: the same kept rows and the same
/// answers (up to summation order) for every case, time-based KPIs
/// (repurchase, labour cost, costs) included.
async fn assert_same_facts(what: &str, a: &TenantRollup, b: &TenantRollup) {
    use warehouse::rollups::Kept;
    assert_eq!(a.conversations(), b.conversations(), "{what}: conversations");
    assert_eq!(a.config(), b.config(), "{what}: settings");
    for (kept, order) in [
        (Kept::Conversations, "conversation_id"),
        (Kept::ScriptUses, "conversation_id, kind, \"key\""),
        (Kept::ExposureEvents, "event_id"),
    ] {
        let text = kept_text(a, kept, order).await;
        assert!(
            text.lines().count() > 20,
            "{what} {kept:?}: {} lines",
            text.lines().count()
        );
        assert_eq!(text, kept_text(b, kept, order).await, "{what}: {kept:?}");
    }
    let now = Utc::now().timestamp_micros();
    for (window, constraints) in cases() {
        assert_same(
            what,
            keyed(super::run_overview(a, &settings(), &window, &constraints, true, now)),
            keyed(super::run_overview(b, &settings(), &window, &constraints, true, now)),
        );
    }
}

/// Facts saved to the lake and read back by a new warehouse over the same
/// lake (as after a restart) are the facts they were saved from, with no
/// build from events; new events then bring them to what a build from
/// scratch gives, recomputing only what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_facts_are_read_back_and_catch_up() {
    let events = generated(3, 240.0);
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    let (cut1, cut2, cut3) = (events.len() / 2, events.len() * 7 / 10, events.len() * 8 / 10);
    ingestor.ingest(events[..cut1].to_vec()).await.unwrap();
    ingestor.flush().await.unwrap();
    ingestor.ingest(events[cut1..cut2].to_vec()).await.unwrap();
    let (tenant, settings) = (tid(), settings());
    let warehouse = Warehouse::new(ingestor.clone());
    let store = warehouse.facts().unwrap().clone();
    assert!(store.manifest(TENANT).await.unwrap().is_none());
    drop(super::rollup(&warehouse, &tenant, &settings).await.unwrap());
    assert_eq!(super::save_changed(&warehouse).await.unwrap(), 1);
    assert_eq!(
        super::save_changed(&warehouse).await.unwrap(),
        0,
        "nothing changed since"
    );
    let first = store.manifest(TENANT).await.unwrap().unwrap();

    // A later save replaces the days that changed, flushed or buffered.
    ingestor.flush().await.unwrap();
    ingestor.ingest(events[cut2..cut3].to_vec()).await.unwrap();
    drop(super::rollup(&warehouse, &tenant, &settings).await.unwrap());
    assert_eq!(super::save_changed(&warehouse).await.unwrap(), 1);
    let second = store.manifest(TENANT).await.unwrap().unwrap();
    assert!(second.events_version > first.events_version, "{second:?}");
    assert!(second.through_seq > first.through_seq);
    assert!(second.tables["conversations"] > first.tables["conversations"]);

    // A save that stopped after writing a table, before its manifest: the
    // table is ahead, the manifest still names one consistent state.
    let url = ingestor.lake_url().join("../facts/conversations/").unwrap();
    let table = ingest::lake::open(&url, &Default::default()).await.unwrap().unwrap();
    use datafusion::prelude::{col, lit};
    table
        .delete()
        .with_predicate(col("tenant_id").eq(lit(TENANT)))
        .await
        .unwrap();

    let restarted = Warehouse::new(ingestor.clone());
    let mut restored = TenantRollup::new();
    assert!(super::restore_saved(&restarted, &mut restored, &tenant).await.unwrap());
    assert_eq!(restored.as_of_seq(), second.through_seq);
    {
        let built = warehouse.rollup_slot(TENANT).read_owned().await;
        assert_same_facts("read back", &restored, &built).await;
    }

    // New events, one flush: caught up incrementally.
    ingestor.ingest(events[cut3..].to_vec()).await.unwrap();
    ingestor.flush().await.unwrap();
    let stats = refresh(&ingestor, &mut restored).await;
    assert!(!stats.full && stats.conversations > 0, "{stats:?}");
    let mut scratch = TenantRollup::new();
    assert!(refresh(&ingestor, &mut scratch).await.full);
    assert_same_facts("caught up", &restored, &scratch).await;
}

/// Refreshes that follow what was acknowledged since the last one (not
/// which lake days changed) come to what a build from scratch gives, as
/// traffic comes in time order with late events: orders without a
/// conversation credit earlier conversations, refunds change credited
/// orders, agents' statuses close their intervals, late events reopen old
/// conversations (refolded by id, the recomputation not moved back to
/// them). A new conversation is recomputed alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_by_what_came_in_since_equal_a_build_from_scratch() {
    let events = generated(3, 240.0);
    // The conversation whose first event is the last, held back to the end.
    let mut first: HashMap<&str, i64> = HashMap::new();
    for (_, e) in &events {
        if let Some(c) = e.conversation_id.as_deref() {
            let f = first.entry(c).or_insert(e.occurred_at_us);
            *f = (*f).min(e.occurred_at_us);
        }
    }
    let last = first
        .iter()
        .max_by_key(|(c, f)| (**f, **c))
        .map(|(c, _)| c.to_string())
        .unwrap();
    let (held, rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|(_, e)| e.conversation_id.as_deref() == Some(last.as_str()));
    // Twenty batches in time order, as traffic comes, but one event in
    // 37 arrives three batches late; the first batch is a scatter over
    // the whole three days.
    let mut rest = rest;
    rest.sort_by_key(|(_, e)| e.occurred_at_us);
    let n = rest.len();
    let mut batches: Vec<Vec<(usize, Event)>> = vec![Vec::new(); 20];
    for (i, e) in rest.into_iter().enumerate() {
        let k = if i % 97 == 0 { 0 } else { i * 20 / n };
        let k = if i % 37 == 0 { (k + 3).min(19) } else { k };
        batches[k].push(e);
    }
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    let mut incremental = TenantRollup::new();
    let mut refolded = 0;
    for (k, batch) in batches.into_iter().enumerate() {
        ingestor.ingest(batch).await.unwrap();
        if k % 5 == 4 {
            // Flushed before the refresh sees them: in lake files, not the buffer.
            ingestor.flush().await.unwrap();
        }
        let stats = refresh(&ingestor, &mut incremental).await;
        assert_eq!(stats.full, k == 0, "{k}: {stats:?}");
        refolded += stats.refolded;
    }
    assert!(refolded > 20, "late events and credits refold by id: {refolded}");
    ingestor.ingest(held).await.unwrap();
    let stats = refresh(&ingestor, &mut incremental).await;
    assert_eq!(
        (stats.full, stats.conversations),
        (false, 1),
        "only the new conversation is recomputed: {stats:?}"
    );
    ingestor.flush().await.unwrap();
    assert_eq!(
        refresh(&ingestor, &mut incremental).await,
        Default::default(),
        "a flush changes files, not events"
    );
    let mut scratch = TenantRollup::new();
    assert!(refresh(&ingestor, &mut scratch).await.full);
    assert_same_facts("caught up", &incremental, &scratch).await;
}

/// An agent's status change that arrives alone, hours after the agent
/// went online, closes the interval a refresh kept open: labour hours are
/// those of a build from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_status_change_closes_an_interval_kept_open() {
    let line = |id: &str, at: &str, status: &str| {
        format!(
            r#"{{"event_id":"{id}","tenant_id":"{TENANT}","type":"agent.status_changed","occurred_at":"{at}","agent_id":"a1","team":"t1","status":"{status}"}}"#
        )
    };
    let events = |lines: &[String]| {
        decode_events(lines.join("\n").as_bytes(), &DecodeLimits::default())
            .unwrap()
            .events
    };
    let conversation = (0..3)
        .map(|i| {
            format!(
                r#"{{"event_id":"c{i}","tenant_id":"{TENANT}","type":"conversation.started","occurred_at":"2026-03-27T1{i}:30:00Z","conversation_id":"c{i}","customer_id":"u{i}","channel":"webchat"}}"#
            )
        })
        .collect::<Vec<_>>();
    let dir = tempfile::tempdir().unwrap();
    let ingestor = open(dir.path()).await;
    let mut first = conversation.clone();
    first.push(line("s1", "2026-03-27T10:00:00Z", "online"));
    ingestor.ingest(events(&first)).await.unwrap();
    let mut incremental = TenantRollup::new();
    assert!(refresh(&ingestor, &mut incremental).await.full);
    ingestor
        .ingest(events(&[line("s2", "2026-03-27T12:00:00Z", "offline")]))
        .await
        .unwrap();
    let stats = refresh(&ingestor, &mut incremental).await;
    // The interval is read again from where it opened; conversations
    // only from the change on (the one started at 12:30).
    assert_eq!(
        (stats.since_us, stats.conversations),
        (Some(at("2026-03-27T12:00:00Z").timestamp_micros()), 1),
        "{stats:?}"
    );
    let mut scratch = TenantRollup::new();
    refresh(&ingestor, &mut scratch).await;
    let window = Window {
        from: at("2026-03-27T00:00:00Z"),
        to: at("2026-03-28T00:00:00Z"),
    };
    let now = Utc::now().timestamp_micros();
    let hours = |r: &TenantRollup| {
        super::run_overview(r, &settings(), &window, &[], true, now)
            .into_iter()
            .find(|k| k.kpi == "labor_cost" && k.measure == "online_hours")
            .and_then(|k| k.value)
    };
    assert_eq!(hours(&incremental), Some(2.0));
    assert_eq!(hours(&incremental), hours(&scratch));
}
