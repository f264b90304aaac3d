//! Traffic: conversations by local weekday × hour of day.

use std::fmt::Write as _;

use crate::charts::heatmap;
use crate::format;
use crate::html::escape;
use crate::kpi::Unit;
use crate::pages::{Col, empty, numbers, table};
use crate::shell::{self, Page, PageContext};

/// Conversations started per local weekday (Monday first) and hour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficData {
    pub conversations: [[u64; 24]; 7],
}

/// The traffic page: the heatmap and its numbers.
pub fn render_traffic(ctx: &PageContext, data: &TrafficData) -> String {
    let s = ctx.strings();
    let mut main = String::new();
    let total: u64 = data.conversations.iter().flatten().sum();
    if total == 0 {
        main.push_str(&empty(s));
    } else {
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        let values: Vec<Vec<f64>> = data
            .conversations
            .iter()
            .map(|row| row.iter().map(|&v| v as f64).collect())
            .collect();
        let _ = write!(
            main,
            r#"<section class="card"><h2>{}</h2>{}"#,
            escape(s.traffic_heatmap),
            heatmap(s.traffic_heatmap, &s.weekdays, &hours, &values, &Unit::Count)
        );
        let max = data.conversations.iter().flatten().copied().max().unwrap_or(0);
        let _ = write!(
            main,
            r#"<p class="legend">0 <span class="ramp"></span> {}</p>"#,
            format::group_thousands(max as i64)
        );
        let mut cols = vec![Col(s.weekday, false)];
        cols.extend(hours.iter().map(|h| Col(h.as_str(), true)));
        cols.push(Col(s.total, true));
        let body: Vec<Vec<String>> = data
            .conversations
            .iter()
            .enumerate()
            .map(|(d, row)| {
                let mut cells = vec![escape(s.weekdays[d])];
                cells.extend(row.iter().map(|&v| format::group_thousands(v as i64)));
                cells.push(format::group_thousands(row.iter().sum::<u64>() as i64));
                cells
            })
            .collect();
        main.push_str(&numbers(s, &table(s.hour_of_day, &cols, &body)));
        main.push_str("</section>");
    }
    shell::render(
        &shell::Frame {
            ctx,
            page: Page::Traffic,
            path: Page::Traffic.path(),
            heading: s.traffic,
            controls: true,
        },
        &main,
    )
}
