//! # dashboards — manager web pages (not built yet)
//!
//! This crate will render the manager pages served by the `cxlake` server
//! under `/`: overview tiles for every KPI, channels, teams and agents,
//! tags, the traffic heatmap, scripts, experiments and staffing, with
//! charts drawn on the server as SVG.
//!
//! Invariant to keep: page rendering is a pure function of the data handed
//! to it — no lake, no server, no clock — so every page is testable
//! without starting anything. No JavaScript library is copied in and no
//! Node build step is needed.
