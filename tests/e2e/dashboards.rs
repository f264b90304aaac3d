//! End to end: every chart's CSV ("a CSV download of what the page
//! shows"), and the sign-in session behind the pages.
//!
//! Three days of generated traffic. The pages' trend charts have CSVs of
//! their own (`format=csv&part=trend`, linked next to each chart with the
//! view's dates, bucket and filters kept); their numbers must be
//! `GET /v1/kpis?group_by=<bucket>` (overview tiles) and
//! `GET /v1/kpis?group_by=channel,<bucket>` (the channels page) for the
//! same filters. A `part` a page does not have is a 400.

use crate::support;

use serde_json::Value;
use support::{Response, Server, create_key};

const TENANT: &str = "modehaus_eu";
const WINDOW: &str = "from=2026-03-02&to=2026-03-05";
/// For hourly buckets: 24 per key stay within the API's group limit.
const ONE_DAY: &str = "from=2026-03-03&to=2026-03-04";

/// A page as a browser signed in with `key` gets it (a fresh session
/// each time: sessions are cheap, and this keeps the helpers' signatures).
fn page(server: &Server, key: &str, path: &str) -> Response {
    let cookie = server
        .dashboard_session(key)
        .unwrap_or_else(|| panic!("{key} cannot sign in"));
    server
        .request("GET", path, &[("Cookie", &cookie)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A CSV download of a page: 200, `text/csv`, saved as `file`; its rows
/// (the header first). No field of these CSVs holds a comma.
fn page_csv(server: &Server, key: &str, path: &str, file: &str) -> Vec<Vec<String>> {
    let r = page(server, key, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"), "{path}");
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"{file}\"").as_str()),
        "{path}"
    );
    r.text()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn api(server: &Server, key: &str, path: &str) -> Value {
    let auth = format!("Bearer {key}");
    let r = server
        .request("GET", path, &[("Authorization", &auth)], b"")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The `href` of the first chart CSV link after `anchor` in a page.
fn chart_csv_href(html: &str, anchor: &str) -> String {
    let at = html.find(anchor).unwrap_or_else(|| panic!("{anchor} on the page"));
    let rest = &html[at..];
    let link = rest
        .find(r#"<a class="chart-csv" href=""#)
        .map(|i| &rest[i + r#"<a class="chart-csv" href=""#.len()..])
        .unwrap_or_else(|| panic!("a chart CSV link after {anchor}"));
    link[..link.find('"').unwrap_or(0)].replace("&amp;", "&")
}

/// Equal within 1e-9 relative (the page and the API add the same floats,
/// possibly in another order).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The figure a tile draws for `kpi` from a `kpis` object of `/v1/kpis`:
/// the mean of durations and CSAT, the value of the rest; money in `unit`
/// (its currency).
fn api_figure(kpis: &Value, kpi: &str, unit: &str) -> Option<f64> {
    let measure = if kpi.ends_with("_s") || kpi == "csat" {
        "mean"
    } else {
        "value"
    };
    let v = &kpis[kpi][measure];
    if v.is_object() { v[unit].as_f64() } else { v.as_f64() }
}

/// The overview's trend CSV for `query` (bucket and filters) equals
/// `/v1/kpis?group_by=<bucket>` for the same query; the tile's own link
/// keeps the view and answers that tile's lines.
fn overview_trend_is_the_api(server: &Server, key: &str, window: &str, bucket: &str, filter: &str) {
    let view = format!("{window}&bucket={bucket}{filter}");
    let csv = page_csv(
        server,
        key,
        &format!("/?{view}&format=csv&part=trend"),
        "overview-trend.csv",
    );
    assert_eq!(csv[0], ["kpi", "unit", "bucket", "value"]);
    let answer = api(server, key, &format!("/v1/kpis?{window}&group_by={bucket}{filter}"));
    let groups = answer["groups"].as_array().cloned().unwrap_or_default();
    let starts: Vec<&str> = groups.iter().filter_map(|g| g["key"][bucket].as_str()).collect();
    assert!(!starts.is_empty(), "{answer}");
    let mut compared = 0;
    let mut kpis = Vec::new();
    for row in &csv[1..] {
        let [kpi, unit, start, value] = row.as_slice() else {
            panic!("4 fields: {row:?}");
        };
        if !kpis.contains(kpi) {
            kpis.push(kpi.clone());
        }
        let group = groups
            .iter()
            .find(|g| g["key"][bucket].as_str() == Some(start.as_str()))
            .unwrap_or_else(|| panic!("bucket {start} of {kpi} in the API's groups {starts:?}"));
        match api_figure(&group["kpis"], kpi, unit) {
            None => assert_eq!(value, "", "{kpi} {start}: the API has none"),
            Some(expected) => {
                let shown: f64 = value.parse().unwrap_or_else(|e| panic!("{kpi} {start} {value:?}: {e}"));
                assert!(close(shown, expected), "{kpi} {start}: CSV {shown}, API {expected}");
                compared += 1;
            }
        }
    }
    // Every tile, every bucket of the API, in order.
    assert_eq!(csv.len() - 1, kpis.len() * starts.len(), "{view}");
    for kpi in &kpis {
        let mine: Vec<&str> = csv[1..]
            .iter()
            .filter(|r| &r[0] == kpi)
            .map(|r| r[2].as_str())
            .collect();
        assert_eq!(mine, starts, "{kpi}'s buckets");
    }
    for kpi in ["conversations", "frt_s", "csat", "resolution_rate"] {
        assert!(kpis.iter().any(|k| k == kpi), "{kpi} in {kpis:?}");
    }
    assert!(compared > 2 * starts.len(), "compared {compared} figures");

    // The link under the FRT tile: this view, that tile's lines.
    let html = page(server, key, &format!("/?{view}")).text();
    let href = chart_csv_href(&html, r#"id="kpi-frt_s""#);
    for kept in window.split('&').chain([format!("bucket={bucket}").as_str()]) {
        assert!(href.contains(kept), "{kept} in {href}");
    }
    assert!(href.ends_with("&format=csv&part=trend&kpi=frt_s"), "{href}");
    if let Some(f) = filter.strip_prefix('&') {
        assert!(href.contains(&f.replace(',', "%2C")), "{f} in {href}");
    }
    let tile = page_csv(server, key, &href, "overview-trend-frt_s.csv");
    let frt: Vec<&Vec<String>> = csv.iter().filter(|r| r[0] == "frt_s").collect();
    assert_eq!(tile[1..].iter().collect::<Vec<_>>(), frt);
}

/// The channels page's trend CSV for `filter` equals
/// `/v1/kpis?group_by=channel,<bucket>` for its channels, which are the
/// busiest six of the page's own CSV; each channel's buckets add up to its
/// conversations there.
fn channels_trend_is_the_api(server: &Server, key: &str, window: &str, bucket: &str, filter: &str) -> Vec<String> {
    let view = format!("{window}&bucket={bucket}{filter}");
    let table = page_csv(server, key, &format!("/channels?{view}&format=csv"), "channels.csv");
    assert_eq!(table[0][..2], ["channel", "conversations"]);
    let busiest: Vec<(String, f64)> = table[1..]
        .iter()
        .filter(|r| r[0] != "(none)")
        .take(6)
        .map(|r| (r[0].clone(), r[1].parse().unwrap_or(f64::NAN)))
        .collect();
    assert!(!busiest.is_empty(), "{view}: channels");

    let csv = page_csv(
        server,
        key,
        &format!("/channels?{view}&format=csv&part=trend"),
        "channels-trend.csv",
    );
    assert_eq!(csv[0], ["channel", "bucket", "conversations"]);
    let answer = api(
        server,
        key,
        &format!("/v1/kpis?{window}&group_by=channel,{bucket}{filter}"),
    );
    let groups = answer["groups"].as_array().cloned().unwrap_or_default();
    let mut starts: Vec<&str> = Vec::new();
    for g in &groups {
        if let Some(s) = g["key"][bucket].as_str()
            && !starts.contains(&s)
        {
            starts.push(s);
        }
    }
    let mut channels: Vec<String> = Vec::new();
    for row in &csv[1..] {
        let [channel, start, n] = row.as_slice() else {
            panic!("3 fields: {row:?}");
        };
        if !channels.contains(channel) {
            channels.push(channel.clone());
        }
        let expected = groups
            .iter()
            .find(|g| g["key"]["channel"].as_str() == Some(channel) && g["key"][bucket].as_str() == Some(start))
            .map_or(0.0, |g| {
                g["kpis"]["conversations"]["value"].as_f64().unwrap_or(f64::NAN)
            });
        let shown: f64 = n.parse().unwrap_or_else(|e| panic!("{row:?}: {e}"));
        assert_eq!(shown, expected, "{channel} {start}");
    }
    let names: Vec<&String> = busiest.iter().map(|(c, _)| c).collect();
    assert_eq!(
        channels.iter().collect::<Vec<_>>(),
        names,
        "the busiest channels, busiest first"
    );
    assert_eq!(
        csv.len() - 1,
        channels.len() * starts.len(),
        "every channel × every bucket"
    );
    for (channel, total) in &busiest {
        let sum: f64 = csv[1..]
            .iter()
            .filter(|r| &r[0] == channel)
            .map(|r| r[2].parse::<f64>().unwrap_or(f64::NAN))
            .sum();
        assert_eq!(sum, *total, "{channel}: buckets add up to its row of the page");
        let mine: Vec<&str> = csv[1..]
            .iter()
            .filter(|r| &r[0] == channel)
            .map(|r| r[1].as_str())
            .collect();
        assert_eq!(mine, starts, "{channel}'s buckets in order");
    }

    // The link next to the chart keeps the view and answers this CSV.
    let html = page(server, key, &format!("/channels?{view}")).text();
    let href = chart_csv_href(&html, "<section class=\"card trend\">");
    assert!(href.starts_with(&format!("/channels?{window}&")), "{href}");
    assert!(href.contains(&format!("bucket={bucket}")) && href.ends_with("&format=csv&part=trend"));
    if let Some(f) = filter.strip_prefix('&') {
        assert!(href.contains(&f.replace(',', "%2C")), "{f} in {href}");
    }
    assert_eq!(page_csv(server, key, &href, "channels-trend.csv"), csv);
    channels
}

#[test]
fn chart_csvs_are_the_numbers_of_the_api() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    support::generate_and_ingest(&dir.path().join("traffic.ndjson"), &data, 3, "2026-03-02", 300, 7);
    let key = create_key(&data, TENANT, "admin");
    let server = Server::start(&data, &[]);

    // The channels page, unfiltered, by day, and by hour over one day.
    let all = channels_trend_is_the_api(&server, &key, WINDOW, "day", "");
    assert!(all.len() >= 2, "the test needs two channels: {all:?}");
    channels_trend_is_the_api(&server, &key, ONE_DAY, "hour", "");
    // Filtered by channel (the trend draws those only) and by another
    // dimension.
    let two = format!("&channel={},{}", all[0], all[1]);
    assert_eq!(channels_trend_is_the_api(&server, &key, WINDOW, "day", &two), all[..2]);
    let by_team = api(&server, &key, &format!("/v1/kpis?{WINDOW}&group_by=team"));
    let team = by_team["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|g| g["key"]["team"].as_str())
        .unwrap_or_else(|| panic!("a team: {by_team}"))
        .to_string();
    channels_trend_is_the_api(&server, &key, WINDOW, "day", &format!("&team={team}"));

    // The overview's tiles, unfiltered and filtered, by day and by hour.
    overview_trend_is_the_api(&server, &key, WINDOW, "day", "");
    overview_trend_is_the_api(&server, &key, WINDOW, "day", &two);
    overview_trend_is_the_api(&server, &key, ONE_DAY, "hour", &format!("&team={team}"));

    // Teams and tags: the same scheme, their dimension first.
    for (path, dimension) in [("/teams", "team"), ("/tags", "tag")] {
        let csv = page_csv(
            &server,
            &key,
            &format!("{path}?{WINDOW}&format=csv&part=trend"),
            &format!("{}-trend.csv", &path[1..]),
        );
        assert_eq!(csv[0], [dimension, "bucket", "conversations"]);
        assert!(csv.len() > 1, "{path}: {csv:?}");
    }

    // The Chinese page links the same CSV, in Chinese.
    let zh = page(&server, &key, &format!("/channels?{WINDOW}&lang=zh-CN")).text();
    assert!(
        zh.contains(r#"title="下载此图表的数据（CSV）" download>CSV</a>"#),
        "{zh}"
    );
    assert!(chart_csv_href(&zh, "<section class=\"card trend\">").contains("lang=zh-CN&format=csv&part=trend"));

    // A part a page does not have is refused and says what to do.
    for (path, says) in [
        (format!("/traffic?{WINDOW}&format=csv&part=trend"), "leave `part` out"),
        (format!("/channels?{WINDOW}&format=csv&part=heatmap"), "`trend` is"),
        (format!("/?{WINDOW}&format=csv&part=trend&kpi=nope"), "not a tile"),
    ] {
        let r = page(&server, &key, &path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(says), "{path}: {}", r.text());
    }
    // Without `format=csv`, `part` changes nothing: the page.
    let r = page(&server, &key, &format!("/channels?{WINDOW}&part=trend"));
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("<!DOCTYPE html>"));
}

fn sign_in(server: &Server, form: &str) -> Response {
    server
        .request(
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST /login: {e}"))
}

fn with_cookie(server: &Server, method: &str, path: &str, cookie: &str) -> Response {
    server
        .request(method, path, &[("Cookie", cookie)], b"")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Every byte but letters and digits as `%XX`, as a form encodes a value.
fn form_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The cookie holds a server-side session id, never the key; signing out
/// ends it on the server, revoking the key ends it too; after sign-in only
/// a path of this server is followed.
#[test]
fn dashboard_sessions_are_server_side_and_next_stays_on_this_server() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let key = create_key(&data, TENANT, "admin");
    let other_admin = create_key(&data, TENANT, "admin");
    let server = Server::start(&data, &[]);

    let r = sign_in(&server, &format!("key={key}&next=%2Fchannels%3Fbucket%3Dweek"));
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/channels?bucket=week"));
    let cookie = set_cookies(&r)
        .iter()
        .find_map(|c| c.split(';').next().filter(|c| c.starts_with("cxlake_session=")))
        .unwrap_or_else(|| panic!("a session cookie: {:?}", r.headers))
        .to_string();
    let session = cookie.trim_start_matches("cxlake_session=");
    let secret = key.rsplit('_').next().unwrap_or(&key);
    assert!(
        session.len() == 64 && !session.contains(secret) && !set_cookies(&r).iter().any(|c| c.contains(secret)),
        "the cookie is a session id, not the key: {:?}",
        set_cookies(&r)
    );
    assert_eq!(with_cookie(&server, "GET", "/", &cookie).status, 200);

    // The key itself in a cookie opens nothing (and the cookie is cleared).
    let r = with_cookie(&server, "GET", "/", &format!("cxlake_key={key}"));
    assert_eq!(r.status, 303);
    assert!(r.header("location").is_some_and(|l| l.starts_with("/login")));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("cxlake_key=;") && c.contains("Max-Age=0")),
        "{:?}",
        r.headers
    );

    // Signing out ends the session on the server: a copy stops working.
    let copy = cookie.clone();
    let r = with_cookie(&server, "POST", "/logout", &cookie);
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = with_cookie(&server, "GET", "/", &copy);
    assert_eq!(r.status, 303, "a copied cookie after sign-out: {}", r.text());
    assert!(r.header("location").is_some_and(|l| l.starts_with("/login")));

    // Revoking the key ends its sessions.
    let cookie = server.dashboard_session(&key).unwrap_or_default();
    assert_eq!(with_cookie(&server, "GET", "/channels", &cookie).status, 200);
    let id = key.split('_').nth(1).unwrap_or_default();
    let r = server.send_json(
        &format!("Bearer {other_admin}"),
        "DELETE",
        &format!("/v1/keys/{id}"),
        "",
    );
    assert!(r.status / 100 == 2, "revoke: {} {}", r.status, r.text());
    let r = with_cookie(&server, "GET", "/channels", &cookie);
    assert_eq!(r.status, 303, "a revoked key's session: {}", r.text());

    // After sign-in, only a path of this server.
    for hostile in [
        "//evil.example",
        "/%09/evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/%2F%2Fevil.example",
        "/\t/evil.example",
        "/%5Cevil.example",
    ] {
        let r = sign_in(&server, &format!("key={other_admin}&next={}", form_encoded(hostile)));
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/"), "next={hostile:?}");
    }
    // `%09` straight in the form body arrives as a tab.
    let r = sign_in(&server, &format!("key={other_admin}&next=/%09/evil.example"));
    assert_eq!(r.header("location"), Some("/"));
    // The sign-in form carries only a local `next` along.
    let r = server
        .request("GET", "/login?next=%2F%252F%252Fevil.example", &[], b"")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.text().contains("evil.example"), "{}", r.text());
}
