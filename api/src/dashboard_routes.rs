//! The manager dashboards served at `/`: sign-in with an API key that
//! starts a server-side session, and the overview page rendered by the
//! `dashboards` crate from the same KPI code `GET /v1/kpis` runs.
//!
//! # Sign-in
//!
//! `GET /login` shows a form; `POST /login` takes `key` (and `next`, a
//! local path to return to, see [`local_path`]), checks it like a bearer
//! key and answers with an `HttpOnly; SameSite=Strict` cookie holding a
//! session id, never the key ([`session`]). Pages look the session up on
//! every request and the key behind it by id, so a revoked key stops
//! working at once, and a page shows only the key's own tenant
//! (platform-wide keys are refused: a dashboard is one tenant's). Without
//! a live session a page redirects to `/login`. Roles: those that read KPIs (admin, supervisor, analyst). A
//! supervisor's pages show its team only: the overview forces the team
//! onto its filters ([`services::scope`]), the other pages get it from the
//! handlers they call.
//!
//! # Numbers
//!
//! The overview resolves `from`/`to` in the tenant's reporting time zone
//! with [`kpi_routes::windows`] and asks the tenant's materialized rollups
//! ([`services::kpis::fast`], what `GET /v1/kpis` answers from) for the
//! period, the previous period and each bucket of the trend, so a tile
//! equals the API's figure for the same `from`, `to` and filters. `format=csv` downloads what the page shows.
//!
//! # CSV downloads
//!
//! Every page's `format=csv` answers the rows its tables show (raw numbers:
//! seconds, fractions). A chart whose numbers that CSV does not hold has a
//! "CSV" link of its own, `format=csv&part=<part>` ([`dashboards::CsvPart`]),
//! with every other parameter of the view kept. There is one part, `trend`:
//!
//! | page | `format=csv&part=trend` |
//! |---|---|
//! | `/` | `kpi,unit,bucket,value`: each tile's value per bucket (`&kpi=<key>`: one tile's, the link under that tile); the same figures as `GET /v1/kpis?group_by=<bucket>` |
//! | `/channels`, `/teams`, `/tags` | `<dimension>,bucket,conversations`: the trend chart's keys (the busiest six, busiest first) × every bucket, 0 where there were none; the same figures as `GET /v1/kpis?group_by=<dimension>,<bucket>` for those keys |
//!
//! `bucket` is the bucket's start in the tenant's zone, RFC 3339, exactly as
//! `/v1/kpis` keys it (the chart labels it by date, or date and hour). Any
//! other `part`, or `trend` on a page without a trend chart, is a 400. The
//! other charts draw numbers their page's CSV already holds, so they have
//! no link of their own (see `dashboard_routes/pages.rs` for which columns).
//!
//! The other pages (`dashboard_routes/pages.rs`) call the JSON API's own
//! handlers in-process (`GET /v1/kpis` grouped by channel, team, agent or
//! tag; `/v1/analyses/{traffic,scripts,bottlenecks}`; the experiment list
//! and results; `/v1/forecast/staffing`) with the signed-in key and turn
//! their answers into the page's data, so a page can only show what the
//! API answers for the same parameters.
//!
//! `POST /logout` ends the session on the server and clears the cookie
//! (a copy of the cookie stops working too). The cookie is marked `Secure` when the
//! request came over TLS through a proxy (`X-Forwarded-Proto: https`) or
//! when `CXLAKE_SECURE_COOKIES=true` (always) / `false` (never).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use dashboards::{
    Controls, CsvPart, ErrorData, KPI_KEYS, KpiTile, Lang, LoginData, OverviewData, PageContext, Preset, RangePreset,
    Theme, Unit, unit_of,
};
use serde::Deserialize;

use crate::kpi_routes::{self, MAX_GROUPS};
use crate::problem::Problem;
use crate::state::AppState;
use services::keys::{Principal, TenantScope};
use services::kpis::lake::{Constraint, KpiRow};
use services::kpis::params::{self, Window};
use services::tenant::TenantId;

/// The cookie holding the session id.
const COOKIE: &str = "cxlake_session";

/// The cookie that held the raw key before sessions; cleared wherever it
/// is seen, so no browser keeps a key in its cookie jar.
const LEGACY_KEY_COOKIE: &str = "cxlake_key";

mod pages;

pub use crate::page_sessions::Sessions;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(get_overview))
        .route("/login", get(get_login).post(post_login))
        .route("/logout", axum::routing::post(post_logout))
        .merge(pages::routes())
}

/// Whether cookies get the `Secure` attribute for this request: always or
/// never when `CXLAKE_SECURE_COOKIES` says so, else when a TLS-terminating
/// proxy says the browser used https (`X-Forwarded-Proto: https`, or
/// RFC 7239 `Forwarded: proto=https`; the first hop's word counts). The
/// server itself speaks plain HTTP only, so these are the TLS cases.
fn secure_cookie(headers: &HeaderMap) -> bool {
    match std::env::var("CXLAKE_SECURE_COOKIES").ok().as_deref().map(str::trim) {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        _ => {
            let first = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .map(str::trim)
            };
            let forwarded_https = first("forwarded").is_some_and(|hop| {
                hop.split(';').any(|pair| {
                    let pair = pair.trim().to_ascii_lowercase();
                    pair.strip_prefix("proto=")
                        .is_some_and(|p| p.trim_matches('"') == "https")
                })
            });
            forwarded_https || first("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
        }
    }
}

fn session_cookie(value: &str, max_age_s: u64, secure: bool) -> String {
    named_cookie(COOKIE, value, max_age_s, secure)
}

fn named_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// The `Set-Cookie` that removes a key cookie left by an older version,
/// when the request still carries one.
fn clear_legacy_key_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, LEGACY_KEY_COOKIE).map(|_| named_cookie(LEGACY_KEY_COOKIE, "", 0, secure_cookie(headers)))
}

async fn post_logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers, COOKIE) {
        state.dashboard_sessions.end(id);
    }
    tracing::info!("dashboard sign-out");
    let mut cookies = vec![session_cookie("", 0, secure_cookie(&headers))];
    cookies.extend(clear_legacy_key_cookie(&headers));
    redirect("/login", &cookies)
}

/// The signed-in principal of a page request, or the redirect to `/login`
/// that comes back to this very view (`path` with its query) afterwards.
fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    pairs: &[(String, String)],
) -> Result<Principal, Response> {
    let principal = cookie_value(headers, COOKIE)
        .and_then(|id| state.dashboard_sessions.key_id(id, Instant::now()))
        .and_then(|key_id| state.keys.principal_by_id(&key_id));
    if let Some(p) = principal {
        return Ok(p);
    }
    let mut back = vec![("next".to_string(), dashboards::href(path, pairs))];
    if let Some((_, l)) = pairs.iter().rev().find(|(k, _)| k == "lang") {
        back.push(("lang".into(), l.clone()));
    }
    let cookies: Vec<String> = clear_legacy_key_cookie(headers).into_iter().collect();
    Err(redirect(&dashboards::href("/login", &back), &cookies))
}

// ------------------------------------------------------------ responses

/// Headers of every page: HTML, never cached (it holds tenant data), and a
/// policy that allows no script and no request beyond this server.
fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies.iter().filter_map(|c| HeaderValue::from_str(c).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A CSV download: never cached (it holds tenant data), saved as `file_name`.
fn csv_response(body: String, file_name: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The chart a `format=csv` request asks for (`part=`), `None` for the
/// page's own CSV.
fn csv_part(pairs: &Pairs) -> Result<Option<CsvPart>, Problem> {
    match pairs.iter().rev().find(|(k, _)| k == "part").map(|(_, v)| v.trim()) {
        None | Some("") => Ok(None),
        Some(name) => CsvPart::parse(name).map(Some).ok_or_else(|| {
            Problem::bad_request(
                "invalid-parameter",
                format!(
                    "part: `{name}` is not a chart's CSV; `trend` is (the trend charts of /, /channels, /teams and \
                     /tags); leave `part` out for the page's own CSV"
                ),
            )
        }),
    }
}

fn error_page(lang: Lang, theme: Theme, p: &Problem) -> Response {
    let data = ErrorData {
        status: p.status.as_u16(),
        title: p.title.to_string(),
        detail: p.detail.clone(),
    };
    let mut resp = html(p.status, dashboards::render_error(lang, theme, &data));
    if let Some(seconds) = p.retry_after_s {
        // A page that can be retried (facts still being built) reloads
        // itself, as a manager would press reload.
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        resp.headers_mut()
            .insert(header::REFRESH, HeaderValue::from(seconds.max(1)));
    }
    resp
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------ sign-in

/// The value of the cookie `name` in the request, if any.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// Keys are `cxk_<id>_<secret>`; anything else is refused before the key
/// store is asked.
fn key_shaped(key: &str) -> bool {
    !key.is_empty() && key.len() <= 256 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `%XX` escapes decoded (others kept as they are), as a browser or a
/// proxy might before following a location.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where to go after signing in: `next` when it is a path on this server,
/// else `/`. A browser drops tabs and newlines from a location and reads
/// `\` as `/`, and a proxy may decode `%2F`, so `next` must start with a
/// single `/` and hold no control character, space or backslash; and once
/// percent-decoded, its path (before `?` or `#`) still must not: `//evil`,
/// `/%09/evil` (a tab once the form is decoded), `/\evil`, `/%2F%2Fevil`
/// and `https://evil` all lead to `/`. A decoded query may hold anything
/// (`team=Customer%20Care`): it cannot change the origin.
fn local_path(next: Option<&str>) -> String {
    let path_of = |n: &str| n.split(['?', '#']).next().unwrap_or_default().to_string();
    let plain = |s: &str| !s.contains('\\') && !s.chars().any(|c| c.is_control() || c.is_whitespace());
    let rooted = |n: &str| n.starts_with('/') && !path_of(n).contains("//");
    let is_local = |n: &str| {
        let decoded = percent_decoded(n);
        rooted(n) && plain(n) && rooted(&decoded) && plain(&path_of(&decoded))
    };
    match next {
        Some(n) if is_local(n) => n.to_string(),
        _ => "/".to_string(),
    }
}

/// The tenant a signed-in key shows, or why it cannot use the dashboards.
fn dashboard_tenant(p: &Principal) -> Result<TenantId, Problem> {
    kpi_routes::require_reader(p, "the dashboard")?;
    match &p.tenant {
        TenantScope::One(t) => {
            TenantId::parse(t).ok_or_else(|| Problem::forbidden(format!("key tenant {t:?} is not a tenant id")))
        }
        TenantScope::All => Err(Problem::forbidden(
            "this key is platform-wide; the dashboards show one tenant: sign in with a key of that tenant",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    lang: Option<String>,
    theme: Option<String>,
    next: Option<String>,
}

async fn get_login(Query(q): Query<LoginQuery>, headers: HeaderMap) -> Response {
    let lang = Lang::negotiate(q.lang.as_deref(), accept_language(&headers));
    let data = LoginData {
        error: None,
        next: q.next.filter(|n| local_path(Some(n)) == *n),
    };
    html(
        StatusCode::OK,
        dashboards::render_login(lang, Theme::parse(q.theme.as_deref()), &data),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
    lang: Option<String>,
}

async fn post_login(State(state): State<Arc<AppState>>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let lang = Lang::negotiate(form.lang.as_deref(), accept_language(&headers));
    let key = form.key.trim();
    let refused = |detail: String| {
        let data = LoginData {
            error: Some(detail),
            next: form.next.clone().filter(|n| local_path(Some(n)) == *n),
        };
        html(
            StatusCode::UNAUTHORIZED,
            dashboards::render_login(lang, Theme::Auto, &data),
        )
    };
    let principal = if key_shaped(key) {
        state.keys.authenticate(key)
    } else {
        None
    };
    let Some(principal) = principal else {
        tracing::info!("dashboard sign-in refused: unknown key");
        state
            .audit
            .record(services::audit::sign_in(
                "page",
                Err((key, "unknown, revoked or expired key")),
            ))
            .await;
        return refused("This key is not valid. Check that it was copied whole (cxk_…).".into());
    };
    if let Err(p) = dashboard_tenant(&principal) {
        state
            .audit
            .record(services::audit::sign_in("page", Err((key, &p.detail))))
            .await;
        return refused(p.0.detail);
    }
    tracing::info!(key = %principal.key_id, tenant = %principal.tenant, "dashboard sign-in");
    state
        .audit
        .record(services::audit::sign_in("page", Ok(&principal)))
        .await;
    let session = state.dashboard_sessions.start(&principal.key_id, Instant::now());
    let mut cookies = vec![session_cookie(
        &session,
        crate::page_sessions::MAX_LIFETIME.as_secs(),
        secure_cookie(&headers),
    )];
    cookies.extend(clear_legacy_key_cookie(&headers));
    redirect(&local_path(form.next.as_deref()), &cookies)
}

// ------------------------------------------------------------ overview

/// The date ranges the controls offer, for the tenant's `today`: past
/// periods (weeks start on Monday), or for a forecast the days ahead.
fn date_presets(today: NaiveDate, forecast: bool) -> Vec<RangePreset> {
    let day = |n: i64| today.checked_add_signed(chrono::Duration::days(n)).unwrap_or(today);
    let monday = day(-i64::from(today.weekday().num_days_from_monday()));
    let first = today.with_day(1).unwrap_or(today);
    let ranges = if forecast {
        vec![
            (Preset::Today, today, day(1)),
            (Preset::Tomorrow, day(1), day(2)),
            (Preset::Next7Days, day(1), day(8)),
        ]
    } else {
        vec![
            (Preset::Last7Days, day(-7), today),
            (
                Preset::LastWeek,
                monday.checked_sub_days(Days::new(7)).unwrap_or(monday),
                monday,
            ),
            (Preset::ThisMonth, first, day(1)),
            (
                Preset::LastMonth,
                first.checked_sub_months(Months::new(1)).unwrap_or(first),
                first,
            ),
        ]
    };
    let date = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    ranges
        .into_iter()
        .map(|(preset, from, to)| RangePreset {
            preset,
            from: date(from),
            to: date(to),
        })
        .collect()
}

/// The query string of a page as pairs (all of them, repeated or not).
type Pairs = Vec<(String, String)>;

async fn get_overview(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<Pairs>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let last = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let lang = Lang::negotiate(last("lang"), accept_language(&headers));
    let theme = Theme::parse(last("theme"));
    let principal = match signed_in(&state, &headers, "/", &pairs) {
        Ok(p) => p,
        Err(to_login) => return to_login,
    };
    match overview(&state, &principal, &pairs, accept_language(&headers)).await {
        Ok(resp) => resp,
        Err(p) => error_page(lang, theme, &p),
    }
}

/// The figure a tile shows for `key` among an overview's rows: the mean
/// of durations and CSAT, the value of everything else (money in
/// `currency`).
fn headline(rows: &[KpiRow], key: &str, currency: Option<&str>) -> Option<f64> {
    let measure = if key.ends_with("_s") || key == "csat" {
        "mean"
    } else {
        "value"
    };
    rows.iter()
        .find(|r| r.kpi == key && r.measure == measure && currency.map_or(r.segment == "all", |c| r.segment == c))
        .and_then(|r| r.value)
}

/// The currency money tiles are shown in: the one of the most orders /
/// the largest cost among the current rows, alphabetically first on ties.
fn currency_of(rows: &[KpiRow], key: &str) -> Option<String> {
    let mut candidates: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| r.kpi == key && r.measure == "value" && r.segment != "all" && r.value.is_some())
        .map(|r| (r.segment.as_str(), r.n as f64))
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    candidates.first().map(|(c, _)| c.to_string())
}

/// A bucket label for the trend: the local date, or date and hour.
fn bucket_label(rfc3339: &str, hourly: bool) -> String {
    if hourly {
        rfc3339
            .get(5..16)
            .map_or_else(|| rfc3339.to_string(), |s| s.replace('T', " "))
    } else {
        rfc3339.get(..10).unwrap_or(rfc3339).to_string()
    }
}

async fn overview(
    state: &AppState,
    principal: &Principal,
    pairs: &Pairs,
    accept_language: Option<&str>,
) -> Result<Response, Problem> {
    let tenant = dashboard_tenant(principal)?;
    let settings = state.load_settings(&tenant).await?;
    let tz = settings.tz();
    // Default view: the last 7 full local days.
    let today = Utc::now().with_timezone(&tz).date_naive();
    let week_ago = today.checked_sub_days(Days::new(7)).unwrap_or(today);
    let defaults = Controls {
        from: week_ago.format("%Y-%m-%d").to_string(),
        to: today.format("%Y-%m-%d").to_string(),
        time_zone: settings.time_zone.clone(),
        presets: date_presets(today, false),
        ..Controls::default()
    };
    let mut ctx = PageContext::from_query(tenant.as_str(), pairs, accept_language, &defaults);
    // Windows are local to the tenant's reporting zone, as in the API.
    ctx.controls.time_zone = settings.time_zone.clone();
    let csv = pairs.iter().any(|(k, v)| k == "format" && v == "csv");
    let part = if csv { csv_part(pairs)? } else { None };

    let q: BTreeMap<String, String> = [
        ("from".to_string(), ctx.controls.from.clone()),
        ("to".to_string(), ctx.controls.to.clone()),
    ]
    .into_iter()
    .collect();
    let windows = kpi_routes::windows(&q, &settings)?;
    let mut filters: Vec<Constraint> = Vec::new();
    for &(dimension, ref value) in &ctx.controls.filters {
        let values = params::parse_filter(dimension, value).map_err(kpi_routes::param_problem)?;
        filters.push(Constraint {
            dimension,
            values: Some(values),
        });
    }
    let filters = services::scope::scoped_filters(principal, filters)?;
    let bucket = Some(ctx.controls.bucket)
        .filter(|b| params::Bucket::TRENDS.contains(b))
        .unwrap_or(params::Bucket::Day);
    if params::bucket_count(&windows.current, bucket) > MAX_GROUPS as i64 + 2 {
        return Err(kpi_routes::param_problem(params::ParamError::new(
            "bucket",
            format!(
                "{} buckets over this period would be more than {MAX_GROUPS}; choose a coarser bucket or a shorter period",
                bucket.name()
            ),
        )));
    }

    // The numbers of `/v1/kpis`, from the same materialized rollups.
    let rollup = services::kpis::fast::serving_rollup(&state.warehouse, &tenant, &settings)
        .await
        .map_err(kpi_routes::internal)?;
    let now_us = Utc::now().timestamp_micros();
    let filtered = !filters.is_empty();
    let run = |window: Window| {
        let mut rows = services::kpis::fast::run_overview(&rollup, &settings, &window, &filters, !filtered, now_us);
        if filtered {
            rows.retain(|r| !services::kpis::lake::is_time_based(r));
        }
        std::future::ready(Ok::<_, Problem>(rows))
    };
    let current = run(windows.current).await?;
    let previous = run(windows.previous).await?;
    // Each bucket's start as `/v1/kpis` keys it (RFC 3339), and its rows.
    let mut trend_rows: Vec<(String, Vec<KpiRow>)> = Vec::new();
    for b in params::buckets(&windows.current, bucket, &tz) {
        let rows = run(b.window).await?;
        trend_rows.push((b.label, rows));
    }
    let hourly = bucket == params::Bucket::Hour;

    let mut tiles = Vec::new();
    for key in KPI_KEYS {
        // Left out under a filter, as in the API (see `is_time_based`).
        if filtered && matches!(key, "repurchase_rate" | "labor_cost" | "cost_per_conversation") {
            continue;
        }
        let money = matches!(key, "aov" | "labor_cost" | "cost_per_conversation");
        let currency = if money { currency_of(&current, key) } else { None };
        let unit = unit_of(key, currency.as_deref().unwrap_or(""));
        let cur = currency.as_deref();
        let value = headline(&current, key, cur);
        let trend = trend_rows
            .iter()
            .map(|(start, rows)| {
                (
                    bucket_label(start, hourly),
                    headline(rows, key, cur).unwrap_or(f64::NAN),
                )
            })
            .collect();
        tiles.push(KpiTile::new(
            key,
            key,
            unit,
            value,
            headline(&previous, key, cur),
            trend,
        ));
    }
    let mut notes = Vec::new();
    if filtered {
        notes.push(ctx.strings().note_time_based.to_string());
    }
    if money_currencies(&current) > 1 {
        notes.push(ctx.strings().note_one_currency.to_string());
    }
    let data = OverviewData { tiles, notes };
    tracing::info!(tenant = %tenant, key = %principal.key_id, csv, "dashboard overview");
    if csv {
        return Ok(match part {
            None => csv_response(overview_csv(&data, &current), "overview.csv"),
            Some(CsvPart::Trend) => {
                let starts: Vec<&str> = trend_rows.iter().map(|(start, _)| start.as_str()).collect();
                let kpi = pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "kpi")
                    .map(|(_, v)| v.trim())
                    .filter(|v| !v.is_empty());
                let body = overview_trend_csv(&data, &starts, kpi)?;
                let file = kpi.map_or_else(
                    || "overview-trend.csv".to_string(),
                    |k| format!("overview-trend-{k}.csv"),
                );
                csv_response(body, &file)
            }
        });
    }
    Ok(html(StatusCode::OK, dashboards::render_overview(&ctx, &data)))
}

fn money_currencies(rows: &[KpiRow]) -> usize {
    let mut c: Vec<&str> = rows
        .iter()
        .filter(|r| r.kpi == "aov" && r.measure == "value")
        .map(|r| r.segment.as_str())
        .collect();
    c.sort_unstable();
    c.dedup();
    c.len()
}

/// A tile's unit in a CSV: `count`, `seconds`, …, or the currency code.
fn unit_name(u: &Unit) -> String {
    match u {
        Unit::Count => "count".to_string(),
        Unit::Seconds => "seconds".to_string(),
        Unit::Fraction => "fraction".to_string(),
        Unit::Score => "score".to_string(),
        Unit::Money(c) => c.clone(),
        Unit::Decimal => "number".to_string(),
    }
}

/// A raw number in a CSV; empty for none (or not finite).
fn num(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite()).map(|v| v.to_string()).unwrap_or_default()
}

/// The tiles' trend charts, `kpi,unit,bucket,value`, one line per tile and
/// bucket (`starts`: each bucket's start, in the order of the tiles'
/// trends); only the tile `kpi` when given (a tile's own CSV link).
fn overview_trend_csv(data: &OverviewData, starts: &[&str], kpi: Option<&str>) -> Result<String, Problem> {
    let tiles: Vec<&KpiTile> = data.tiles.iter().filter(|t| kpi.is_none_or(|k| t.key == k)).collect();
    if let (Some(k), true) = (kpi, tiles.is_empty()) {
        let shown: Vec<&str> = data.tiles.iter().map(|t| t.key.as_str()).collect();
        return Err(Problem::bad_request(
            "invalid-parameter",
            format!("kpi: `{k}` is not a tile of this view; one of {}", shown.join(", ")),
        ));
    }
    let mut out = String::from("kpi,unit,bucket,value\n");
    for t in tiles {
        let unit = kpi_routes::csv_field(&unit_name(&t.unit));
        for (start, (_, v)) in starts.iter().zip(&t.trend) {
            out.push_str(&format!(
                "{},{unit},{},{}\n",
                t.key,
                kpi_routes::csv_field(start),
                num(Some(*v))
            ));
        }
    }
    Ok(out)
}

/// What the overview shows, one line per tile and period or bucket:
/// `kpi,unit,period,bucket,value`; money in every currency at the end.
fn overview_csv(data: &OverviewData, current: &[KpiRow]) -> String {
    let mut out = String::from("kpi,unit,period,bucket,value\n");
    for t in &data.tiles {
        let unit = kpi_routes::csv_field(&unit_name(&t.unit));
        out.push_str(&format!("{},{unit},current,,{}\n", t.key, num(t.value)));
        out.push_str(&format!("{},{unit},previous,,{}\n", t.key, num(t.previous)));
        for (label, v) in &t.trend {
            out.push_str(&format!(
                "{},{unit},bucket,{},{}\n",
                t.key,
                kpi_routes::csv_field(label),
                num(Some(*v))
            ));
        }
    }
    for r in current
        .iter()
        .filter(|r| matches!(r.kpi.as_str(), "aov" | "labor_cost" | "cost_per_conversation") && r.measure == "value")
    {
        out.push_str(&format!(
            "{},{},current,,{}\n",
            r.kpi,
            kpi_routes::csv_field(&r.segment),
            num(r.value)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn the_session_is_read_from_its_cookie_only() {
        assert_eq!(
            cookie_value(&headers("a=1; cxlake_session=ab12; b=2"), COOKIE),
            Some("ab12")
        );
        assert_eq!(cookie_value(&headers("cxlake_sessionx=1"), COOKIE), None);
        assert_eq!(cookie_value(&headers("cxlake_key=cxk_a_b"), COOKIE), None);
        assert_eq!(cookie_value(&HeaderMap::new(), COOKIE), None);
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for local in [
            "/",
            "/channels?x=1",
            "/channels?from=2026-03-01&team=Customer%20Care&lang=zh-CN",
            "/experiments/greeting%2Dtest",
        ] {
            assert_eq!(local_path(Some(local)), local);
        }
        for hostile in [
            "//evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "/%5Cevil.example",
            "https://evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/ /evil.example",
            "/\r\nSet-Cookie: x",
            "evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
        assert!(key_shaped("cxk_abc_DEF-1"));
        assert!(!key_shaped("cxk_a; Path=/x"));
        assert!(!key_shaped(""));
    }

    #[test]
    fn the_cookie_is_secure_behind_https_and_cleared_on_sign_out() {
        assert_eq!(
            session_cookie("ab12", 60, true),
            "cxlake_session=ab12; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert_eq!(
            session_cookie("", 0, false),
            "cxlake_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        if std::env::var_os("CXLAKE_SECURE_COOKIES").is_none() {
            let mut h = HeaderMap::new();
            assert!(!secure_cookie(&h));
            h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            assert!(secure_cookie(&h));
            h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
            assert!(!secure_cookie(&h));
            let mut h = HeaderMap::new();
            h.insert(
                "forwarded",
                HeaderValue::from_static("for=192.0.2.60;proto=https;by=203.0.113.43"),
            );
            assert!(secure_cookie(&h));
            h.insert(
                "forwarded",
                HeaderValue::from_static("for=192.0.2.60;proto=http, proto=https"),
            );
            assert!(!secure_cookie(&h));
        }
    }

    pub(super) fn row(kpi: &str, measure: &str, segment: &str, value: f64, n: i64) -> KpiRow {
        KpiRow {
            kpi: kpi.into(),
            measure: measure.into(),
            segment: segment.into(),
            value: Some(value),
            n,
        }
    }

    #[test]
    fn tiles_take_the_mean_of_durations_and_the_value_of_rates() {
        let rows = vec![
            row("frt_s", "mean", "all", 90.0, 10),
            row("frt_s", "p90", "all", 300.0, 10),
            row("csat", "mean", "all", 4.2, 5),
            row("csat", "top2_share", "all", 0.8, 5),
            row("sla_attainment", "value", "all", 0.7, 10),
            row("aov", "value", "EUR", 50.0, 3),
            row("aov", "value", "USD", 70.0, 9),
        ];
        assert_eq!(headline(&rows, "frt_s", None), Some(90.0));
        assert_eq!(headline(&rows, "csat", None), Some(4.2));
        assert_eq!(headline(&rows, "sla_attainment", None), Some(0.7));
        assert_eq!(currency_of(&rows, "aov").as_deref(), Some("USD"));
        assert_eq!(headline(&rows, "aov", Some("USD")), Some(70.0));
        assert_eq!(money_currencies(&rows), 2);
        assert_eq!(bucket_label("2026-03-01T00:00:00+01:00", false), "2026-03-01");
        assert_eq!(bucket_label("2026-03-01T09:00:00+01:00", true), "03-01 09:00");
    }

    #[test]
    fn a_tiles_trend_csv_has_a_line_per_bucket_keyed_as_the_api_keys_buckets() {
        let data = OverviewData {
            tiles: vec![
                KpiTile::new(
                    "conversations",
                    "conversations",
                    Unit::Count,
                    Some(5.0),
                    None,
                    vec![("2026-03-01".into(), 2.0), ("2026-03-02".into(), 3.0)],
                ),
                KpiTile::new(
                    "aov",
                    "aov",
                    Unit::Money("EUR".into()),
                    None,
                    None,
                    vec![("2026-03-01".into(), 40.5), ("2026-03-02".into(), f64::NAN)],
                ),
            ],
            notes: vec![],
        };
        let starts = ["2026-03-01T00:00:00+01:00", "2026-03-02T00:00:00+01:00"];
        assert_eq!(
            overview_trend_csv(&data, &starts, None).ok().as_deref(),
            Some(
                "kpi,unit,bucket,value\n\
                 conversations,count,2026-03-01T00:00:00+01:00,2\n\
                 conversations,count,2026-03-02T00:00:00+01:00,3\n\
                 aov,EUR,2026-03-01T00:00:00+01:00,40.5\n\
                 aov,EUR,2026-03-02T00:00:00+01:00,\n"
            )
        );
        let one = overview_trend_csv(&data, &starts, Some("aov")).unwrap_or_default();
        assert_eq!(one.lines().count(), 3);
        let unknown = overview_trend_csv(&data, &starts, Some("nope")).err();
        assert_eq!(unknown.map(|p| p.status), Some(StatusCode::BAD_REQUEST));
        assert!(csv_part(&vec![("part".into(), "trend".into())]).is_ok_and(|p| p == Some(CsvPart::Trend)));
        assert!(csv_part(&vec![("part".into(), "pie".into())]).is_err());
        assert!(csv_part(&vec![]).is_ok_and(|p| p.is_none()));
    }

    #[test]
    fn date_presets_are_whole_weeks_and_months_or_the_days_ahead() {
        let wednesday = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap_or_default();
        let ranges: Vec<(Preset, String, String)> = date_presets(wednesday, false)
            .into_iter()
            .map(|p| (p.preset, p.from, p.to))
            .collect();
        let r = |p, f: &str, t: &str| (p, f.to_string(), t.to_string());
        assert_eq!(
            ranges,
            vec![
                r(Preset::Last7Days, "2026-02-25", "2026-03-04"),
                r(Preset::LastWeek, "2026-02-23", "2026-03-02"),
                r(Preset::ThisMonth, "2026-03-01", "2026-03-05"),
                r(Preset::LastMonth, "2026-02-01", "2026-03-01"),
            ]
        );
        let ahead = date_presets(wednesday, true);
        assert_eq!(
            (ahead[1].preset, ahead[1].from.as_str(), ahead[1].to.as_str()),
            (Preset::Tomorrow, "2026-03-05", "2026-03-06")
        );
    }
}
