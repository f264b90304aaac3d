//! One renderer per page, each a pure function of a [`PageContext`] and the
//! page's data struct.

mod auth;
mod breakdowns;
mod experiments;
mod overview;
mod staffing;
mod traffic;

pub use auth::{ErrorData, LoginData, render_error, render_login};
pub use breakdowns::{
    AgentRow, BreakdownRow, BreakdownStats, ChannelsData, KeyTrend, ScriptKind, ScriptRow, ScriptsData, TagPair,
    TagsData, TeamsData, render_channels, render_scripts, render_tags, render_teams,
};
pub use experiments::{
    DecisionSummary, ExperimentResultData, ExperimentSummary, ExperimentsData, MetricResult, SrmCheck,
    VariantComparison, VariantShare, Verdict, render_experiment_result, render_experiments,
};
pub use overview::{KpiTile, OverviewData, render_overview};
pub use staffing::{StaffingData, StaffingInterval, render_staffing};
pub use traffic::{TrafficData, render_traffic};

use std::fmt::Write as _;

use crate::html::escape;
use crate::i18n::Strings;

/// A table column: its header and whether it holds numbers (right-aligned).
pub(crate) struct Col<'a>(pub(crate) &'a str, pub(crate) bool);

/// A `<table>` in a horizontally scrollable wrapper (the page itself never
/// scrolls sideways). `rows` hold cell HTML that is already escaped.
pub(crate) fn table(caption: &str, cols: &[Col<'_>], rows: &[Vec<String>]) -> String {
    let mut out = String::from(r#"<div class="tw"><table>"#);
    if !caption.is_empty() {
        let _ = write!(out, "<caption>{}</caption>", escape(caption));
    }
    out.push_str("<thead><tr>");
    for Col(name, numeric) in cols {
        let class = if *numeric { r#" class="n""# } else { "" };
        let _ = write!(out, r#"<th scope="col"{class}>{}</th>"#, escape(name));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let numeric = cols.get(i).is_some_and(|c| c.1);
            if i == 0 {
                let _ = write!(out, r#"<th scope="row">{cell}</th>"#);
            } else if numeric {
                let _ = write!(out, r#"<td class="n">{cell}</td>"#);
            } else {
                let _ = write!(out, "<td>{cell}</td>");
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A collapsed "Numbers" section holding a chart's table.
pub(crate) fn numbers(s: &Strings, table_html: &str) -> String {
    format!(
        r#"<details class="data"><summary>{}</summary>{table_html}</details>"#,
        escape(s.numbers)
    )
}

pub(crate) fn empty(s: &Strings) -> String {
    format!(r#"<p class="empty">{}</p>"#, escape(s.no_data))
}

#[cfg(test)]
mod tests;
