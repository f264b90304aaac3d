//! The experiment registry: definitions, their validation, the lifecycle
//! `draft → running → stopped → archived`, and durable storage.
//!
//! # On disk
//!
//! One JSON file per tenant, `<data_dir>/experiments/<tenant>.json`,
//! rewritten whole on every change: temp file, `fsync`, `rename`, `fsync` of
//! the directory. A crash leaves either the old or the new file, never a
//! mix. The file holds every experiment of the tenant with its full history:
//! each change (create, edit, start, stop, archive) appends a snapshot of the
//! definition and state under a new version number, so "what did the
//! experiment look like when it started?" always has an answer.
//!
//! # Rules
//!
//! - Definitions are validated as a whole; the first problem is reported
//!   with the field it is about (`variants[1].weight`, `guardrail_metrics[0]`,
//!   `layer.buckets`).
//! - A draft may be edited freely. A running experiment keeps its variants,
//!   weights, seed, traffic, targeting, layer and metrics: changing them would
//!   move customers between variants or change the question mid-test, so it
//!   is a conflict (stop it and define a new experiment); only `description`
//!   and `planned_duration_days` may change. Stopped and archived
//!   experiments are read-only.
//! - Layers: every experiment of a layer owns a bucket range of
//!   `experiments::assignment::LAYER_BUCKETS`; drafts and running experiments
//!   hold their range (validated with [`experiments::Layer`]), stopped and
//!   archived ones release it.
//!
//! Knows nothing of HTTP: the routes map [`StoreError`] to problems.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use experiments::assignment::LAYER_BUCKETS;
use experiments::decision::{DEFAULT_MIN_SAMPLE_PER_VARIANT, Direction, MetricScale};
use experiments::{Layer, LayerSlot};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the registry file format.
pub const FILE_FORMAT: u32 = 1;

/// Most variants an experiment may have.
pub const MAX_VARIANTS: usize = 20;

/// The metrics an experiment can be judged on (DESIGN.md, KPI glossary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Conversations with an attributed order / conversations.
    Conversion,
    /// Mean CSAT score of scored conversations.
    Csat,
    /// Share of scores that are 4 or 5.
    CsatTop2,
    /// Conversations with a score / conversations with a request.
    CsatResponseRate,
    /// Conversations whose last status is resolved / conversations.
    Resolution,
    /// Conversations handed to a human / conversations with a bot reply.
    Transfer,
    /// Mean first response time in seconds.
    Frt,
    /// Attributed net order value per unit (winsorized).
    OrderValuePerCustomer,
}

impl Metric {
    /// Every metric, in the order results list them.
    pub const ALL: [Metric; 8] = [
        Metric::Conversion,
        Metric::Csat,
        Metric::CsatTop2,
        Metric::CsatResponseRate,
        Metric::Resolution,
        Metric::Transfer,
        Metric::Frt,
        Metric::OrderValuePerCustomer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Conversion => "conversion",
            Metric::Csat => "csat",
            Metric::CsatTop2 => "csat_top2",
            Metric::CsatResponseRate => "csat_response_rate",
            Metric::Resolution => "resolution",
            Metric::Transfer => "transfer",
            Metric::Frt => "frt",
            Metric::OrderValuePerCustomer => "order_value_per_customer",
        }
    }

    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn direction(self) -> Direction {
        match self {
            Metric::Transfer | Metric::Frt => Direction::LowerIsBetter,
            _ => Direction::HigherIsBetter,
        }
    }

    pub fn scale(self) -> MetricScale {
        match self {
            Metric::Conversion
            | Metric::CsatTop2
            | Metric::CsatResponseRate
            | Metric::Resolution
            | Metric::Transfer => MetricScale::Rate,
            Metric::Csat => MetricScale::Mean { unit: String::new() },
            Metric::Frt => MetricScale::Mean { unit: "s".into() },
            Metric::OrderValuePerCustomer => MetricScale::Mean { unit: String::new() },
        }
    }

    /// Smallest absolute improvement worth shipping when the definition
    /// names none: 1 pp for rates, 0.05 CSAT points, 5 s of FRT, 2 % of the
    /// control's order value per customer.
    pub fn default_minimum_useful_effect(self, control_mean: f64) -> f64 {
        match self {
            Metric::Csat => 0.05,
            Metric::Frt => 5.0,
            Metric::OrderValuePerCustomer => (0.02 * control_mean.abs()).max(1e-9),
            _ => 0.01,
        }
    }
}

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Running,
    Stopped,
    Archived,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Archived => "archived",
        }
    }

    /// Whether the experiment holds its layer buckets.
    fn holds_layer(self) -> bool {
        matches!(self, State::Draft | State::Running)
    }
}

/// One variant: key, weight, and what the messaging core shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDefinition {
    pub key: String,
    pub weight: f64,
    /// Greeting text, persona settings, quick-reply set: any JSON.
    #[serde(default)]
    pub payload: Value,
}

/// Who may enter; an empty list admits everyone on that dimension.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channel: Vec<String>,
    /// BCP 47; `en` also admits `en-GB`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_tier: Vec<String>,
}

/// The attributes of one assignment request that targeting looks at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_tier: Option<String>,
}

impl Targeting {
    /// Whether a unit with these attributes is targeted. A dimension with a
    /// list needs the attribute: an unknown channel is not "any channel".
    pub fn admits(&self, unit: &UnitAttributes) -> Result<(), &'static str> {
        let plain = |list: &[String], value: &Option<String>| {
            list.is_empty()
                || value
                    .as_deref()
                    .is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        let language = self.language.is_empty()
            || unit.language.as_deref().is_some_and(|v| {
                self.language.iter().any(|x| {
                    v.eq_ignore_ascii_case(x)
                        || (v.len() > x.len()
                            && v.as_bytes()[x.len()] == b'-'
                            && v.get(..x.len()).is_some_and(|p| p.eq_ignore_ascii_case(x)))
                })
            });
        if !plain(&self.channel, &unit.channel) {
            Err("channel")
        } else if !language {
            Err("language")
        } else if !plain(&self.region, &unit.region) {
            Err("region")
        } else if !plain(&self.customer_tier, &unit.customer_tier) {
            Err("customer_tier")
        } else {
            Ok(())
        }
    }
}

/// Membership in a layer: either a share of it (buckets are allocated) or
/// an explicit bucket range `[first, end)` out of 10,000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRequest {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<[u32; 2]>,
}

fn default_traffic_share() -> f64 {
    1.0
}

fn default_alpha() -> f64 {
    0.05
}

fn default_min_sample() -> u64 {
    DEFAULT_MIN_SAMPLE_PER_VARIANT
}

/// What operations send to define an experiment (create, PUT; PATCH merges
/// into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentDefinition {
    pub key: String,
    /// `greeting`, `persona`, `quick_reply`, or a custom `[a-z0-9_-]` kind.
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// Assignment seed; defaults to the key. Same seed, same split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    pub variants: Vec<VariantDefinition>,
    /// Key of the control variant; defaults to the first variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(default = "default_traffic_share")]
    pub traffic_share: f64,
    #[serde(default)]
    pub targeting: Targeting,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRequest>,
    pub primary_metric: String,
    #[serde(default)]
    pub guardrail_metrics: Vec<String>,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_min_sample")]
    pub min_sample_per_variant: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_duration_days: Option<u32>,
    /// Smallest absolute improvement of the primary metric worth shipping,
    /// in metric units (0.01 = 1 pp for a rate); default per metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_useful_effect: Option<f64>,
}

impl ExperimentDefinition {
    pub fn seed(&self) -> &str {
        self.seed.as_deref().unwrap_or(&self.key)
    }

    pub fn control_key(&self) -> &str {
        self.control
            .as_deref()
            .or_else(|| self.variants.first().map(|v| v.key.as_str()))
            .unwrap_or_default()
    }

    pub fn weights(&self) -> Vec<f64> {
        self.variants.iter().map(|v| v.weight).collect()
    }

    /// The primary metric (validated definitions always parse).
    pub fn primary(&self) -> Option<Metric> {
        Metric::parse(&self.primary_metric)
    }

    pub fn guardrails(&self) -> Vec<Metric> {
        self.guardrail_metrics.iter().filter_map(|m| Metric::parse(m)).collect()
    }

    /// Checks everything that does not depend on other experiments.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_name("key", &self.key)?;
        if !(self.kind.len() <= 64
            && !self.kind.is_empty()
            && self
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'))
        {
            return Err(invalid(
                "kind",
                "must be greeting, persona, quick_reply or a custom kind matching [a-z0-9_-]{1,64}",
            ));
        }
        if let Some(seed) = &self.seed
            && (seed.is_empty() || seed.len() > 128)
        {
            return Err(invalid(
                "seed",
                "must be 1 to 128 characters (or absent: the key is the seed)",
            ));
        }
        if self.variants.len() < 2 {
            return Err(invalid(
                "variants",
                "an experiment needs at least two variants (control and one treatment)",
            ));
        }
        if self.variants.len() > MAX_VARIANTS {
            return Err(invalid("variants", format!("at most {MAX_VARIANTS} variants")));
        }
        for (i, v) in self.variants.iter().enumerate() {
            check_name(&format!("variants[{i}].key"), &v.key)?;
            if !(v.weight.is_finite() && v.weight > 0.0) {
                return Err(invalid(
                    &format!("variants[{i}].weight"),
                    format!("must be a positive number, got {}", v.weight),
                ));
            }
            if let Some(j) = self.variants[..i].iter().position(|w| w.key == v.key) {
                return Err(invalid(
                    &format!("variants[{i}].key"),
                    format!("duplicate variant key {:?} (also variants[{j}].key)", v.key),
                ));
            }
        }
        if let Some(control) = &self.control
            && !self.variants.iter().any(|v| &v.key == control)
        {
            return Err(invalid(
                "control",
                format!("{control:?} is not one of the variant keys"),
            ));
        }
        if !(self.traffic_share > 0.0 && self.traffic_share <= 1.0) {
            return Err(invalid(
                "traffic_share",
                format!("must be in (0, 1], got {}", self.traffic_share),
            ));
        }
        for (name, list) in [
            ("targeting.channel", &self.targeting.channel),
            ("targeting.language", &self.targeting.language),
            ("targeting.region", &self.targeting.region),
            ("targeting.customer_tier", &self.targeting.customer_tier),
        ] {
            if let Some(i) = list.iter().position(|v| v.is_empty() || v.len() > 64) {
                return Err(invalid(&format!("{name}[{i}]"), "must be 1 to 64 characters"));
            }
        }
        for (i, tier) in self.targeting.customer_tier.iter().enumerate() {
            if !["new", "regular", "vip"].contains(&tier.as_str()) {
                return Err(invalid(
                    &format!("targeting.customer_tier[{i}]"),
                    format!("{tier:?} is not a customer tier; one of new, regular, vip"),
                ));
            }
        }
        if let Some(layer) = &self.layer {
            check_name("layer.key", &layer.key)?;
            match (layer.share, layer.buckets) {
                (Some(share), None) => {
                    if !(share > 0.0 && share <= 1.0) || (share * f64::from(LAYER_BUCKETS)).round() < 1.0 {
                        return Err(invalid("layer.share", format!("must be in (0, 1], got {share}")));
                    }
                }
                (None, Some([first, end])) => {
                    if first >= end || end > LAYER_BUCKETS {
                        return Err(invalid(
                            "layer.buckets",
                            format!("must be [first, end) with first < end <= {LAYER_BUCKETS}, got [{first}, {end}]"),
                        ));
                    }
                }
                _ => {
                    return Err(invalid(
                        "layer",
                        "give exactly one of share (e.g. 0.5) or buckets (e.g. [0, 5000])",
                    ));
                }
            }
        }
        let known = || Metric::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        let Some(primary) = Metric::parse(&self.primary_metric) else {
            return Err(invalid(
                "primary_metric",
                format!("unknown metric {:?}; one of {}", self.primary_metric, known()),
            ));
        };
        for (i, g) in self.guardrail_metrics.iter().enumerate() {
            let field = format!("guardrail_metrics[{i}]");
            let Some(metric) = Metric::parse(g) else {
                return Err(invalid(&field, format!("unknown metric {g:?}; one of {}", known())));
            };
            if metric == primary {
                return Err(invalid(&field, format!("{g} is already the primary metric")));
            }
            if self.guardrail_metrics[..i].contains(g) {
                return Err(invalid(&field, format!("{g} is listed twice")));
            }
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(invalid("alpha", format!("must be in (0, 0.5), got {}", self.alpha)));
        }
        if self.min_sample_per_variant < 2 {
            return Err(invalid("min_sample_per_variant", "must be at least 2"));
        }
        if self.planned_duration_days == Some(0) {
            return Err(invalid("planned_duration_days", "must be at least 1 day"));
        }
        if let Some(m) = self.minimum_useful_effect
            && !(m.is_finite() && m > 0.0)
        {
            return Err(invalid(
                "minimum_useful_effect",
                format!("must be a positive number, got {m}"),
            ));
        }
        Ok(())
    }
}

/// Keys of experiments, variants and layers: `[A-Za-z0-9_.-]{1,64}`
/// (they appear in URLs, events and SQL literals).
pub fn check_name(field: &str, value: &str) -> Result<(), StoreError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{value:?} must match [A-Za-z0-9_.-]{{1,64}}")))
    }
}

/// What a change did, in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Edit,
    Start,
    Stop,
    Archive,
}

/// One version of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub version: u32,
    pub at: String,
    pub action: Action,
    /// Id of the key that made the change.
    pub by: String,
    pub state: State,
    pub definition: ExperimentDefinition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_slot: Option<LayerSlot>,
}

/// An experiment as stored: the current version plus its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub key: String,
    pub version: u32,
    pub state: State,
    pub definition: ExperimentDefinition,
    /// Buckets owned in the layer, when the definition names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_slot: Option<LayerSlot>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl Experiment {
    /// Everything but the history, for API answers.
    pub fn summary(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut v {
            o.remove("history");
            o.insert("assignment_algorithm".into(), experiments::ALGORITHM_VERSION.into());
        }
        v
    }

    /// Whether the planned duration has elapsed at `now` (false without one).
    pub fn planned_duration_reached(&self, now: DateTime<Utc>) -> bool {
        let (Some(days), Some(started)) = (self.definition.planned_duration_days, &self.started_at) else {
            return false;
        };
        let Ok(started) = DateTime::parse_from_rfc3339(started) else {
            return false;
        };
        let end = if self.state == State::Running {
            now
        } else {
            self.stopped_at
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map_or(now, |t| t.with_timezone(&Utc))
        };
        end - started.with_timezone(&Utc) >= chrono::Duration::days(i64::from(days))
    }

    fn record(&mut self, action: Action, by: &str, at: &str) {
        self.updated_at = at.to_string();
        self.history.push(HistoryEntry {
            version: self.version,
            at: at.to_string(),
            action,
            by: by.to_string(),
            state: self.state,
            definition: self.definition.clone(),
            layer_slot: self.layer_slot.clone(),
        });
    }
}

/// All experiments of one tenant: the content of `<tenant>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub format: u32,
    pub tenant: String,
    pub experiments: Vec<Experiment>,
}

/// Errors of the registry; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// 400: the definition is invalid.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// 404.
    #[error("no experiment {0:?} in this tenant")]
    NotFound(String),
    /// 409: the change conflicts with the experiment's state or another experiment.
    #[error("{reason}")]
    Conflict { field: Option<String>, reason: String },
    /// 500: the file could not be read or written.
    #[error("experiment store {path}: {detail}")]
    Io { path: PathBuf, detail: String },
}

fn invalid(field: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn conflict(field: Option<&str>, reason: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        field: field.map(str::to_string),
        reason: reason.into(),
    }
}

impl Registry {
    pub fn get(&self, key: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.key == key)
    }

    fn get_mut(&mut self, key: &str) -> Result<&mut Experiment, StoreError> {
        self.experiments
            .iter_mut()
            .find(|e| e.key == key)
            .ok_or_else(|| StoreError::NotFound(key.to_string()))
    }

    /// The bucket range `definition` gets in its layer, given the other
    /// experiments that hold buckets there. Keeps `current` when it still fits.
    fn allocate_slot(
        &self,
        definition: &ExperimentDefinition,
        current: Option<&LayerSlot>,
    ) -> Result<Option<LayerSlot>, StoreError> {
        let Some(layer) = &definition.layer else {
            return Ok(None);
        };
        let others: Vec<LayerSlot> = self
            .experiments
            .iter()
            .filter(|e| e.key != definition.key && e.state.holds_layer())
            .filter(|e| e.definition.layer.as_ref().is_some_and(|l| l.key == layer.key))
            .filter_map(|e| e.layer_slot.clone())
            .collect();
        let fits = |slot: &LayerSlot| {
            let mut all = others.clone();
            all.push(slot.clone());
            Layer::new(layer.key.clone(), all)
        };
        match (layer.buckets, layer.share) {
            (Some([first, end]), _) => {
                let slot = LayerSlot {
                    experiment_key: definition.key.clone(),
                    first_bucket: first,
                    end_bucket: end,
                };
                match fits(&slot) {
                    Ok(_) => Ok(Some(slot)),
                    Err(experiments::assignment::AssignmentError::LayerOverlap { first, second }) => {
                        let other = if first == definition.key { second } else { first };
                        Err(invalid(
                            "layer.buckets",
                            format!(
                                "buckets overlap those of experiment {other:?} in layer {:?}; free ranges: {}",
                                layer.key,
                                describe_free(&others)
                            ),
                        ))
                    }
                    Err(e) => Err(invalid("layer.buckets", e.to_string())),
                }
            }
            (None, Some(share)) => {
                let size = ((share * f64::from(LAYER_BUCKETS)).round() as u32).clamp(1, LAYER_BUCKETS);
                if let Some(slot) = current
                    && slot.end_bucket - slot.first_bucket == size
                    && fits(slot).is_ok()
                {
                    return Ok(Some(slot.clone()));
                }
                let first = free_ranges(&others)
                    .into_iter()
                    .find(|(a, b)| b - a >= size)
                    .map(|(a, _)| a)
                    .ok_or_else(|| {
                        invalid(
                            "layer.share",
                            format!(
                                "layer {:?} has no free range of {size} buckets (share {share}); free ranges: {}",
                                layer.key,
                                describe_free(&others)
                            ),
                        )
                    })?;
                Ok(Some(LayerSlot {
                    experiment_key: definition.key.clone(),
                    first_bucket: first,
                    end_bucket: first + size,
                }))
            }
            (None, None) => Err(invalid("layer", "give share or buckets")),
        }
    }
}

/// Gaps between taken slots, as `[first, end)` ranges.
fn free_ranges(taken: &[LayerSlot]) -> Vec<(u32, u32)> {
    let mut slots: Vec<(u32, u32)> = taken.iter().map(|s| (s.first_bucket, s.end_bucket)).collect();
    slots.sort_unstable();
    let mut free = Vec::new();
    let mut at = 0;
    for (a, b) in slots {
        if a > at {
            free.push((at, a));
        }
        at = at.max(b);
    }
    if at < LAYER_BUCKETS {
        free.push((at, LAYER_BUCKETS));
    }
    free
}

fn describe_free(taken: &[LayerSlot]) -> String {
    let free = free_ranges(taken);
    if free.is_empty() {
        "none".into()
    } else {
        free.iter()
            .map(|(a, b)| format!("[{a}, {b})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Pure state transitions on a registry; [`ExperimentStore`] persists them.
impl Registry {
    pub fn create(&mut self, definition: ExperimentDefinition, by: &str, now: &str) -> Result<&Experiment, StoreError> {
        definition.validate()?;
        if self.get(&definition.key).is_some() {
            return Err(conflict(
                Some("key"),
                format!(
                    "experiment {:?} already exists; edit it (PUT/PATCH) while it is a draft or choose a new key",
                    definition.key
                ),
            ));
        }
        let layer_slot = self.allocate_slot(&definition, None)?;
        let mut experiment = Experiment {
            key: definition.key.clone(),
            version: 1,
            state: State::Draft,
            definition,
            layer_slot,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            started_at: None,
            stopped_at: None,
            archived_at: None,
            history: Vec::new(),
        };
        experiment.record(Action::Create, by, now);
        self.experiments.push(experiment);
        Ok(&self.experiments[self.experiments.len() - 1])
    }

    /// Replaces the definition (PUT, and PATCH after merging).
    pub fn edit(
        &mut self,
        key: &str,
        definition: ExperimentDefinition,
        by: &str,
        now: &str,
    ) -> Result<&Experiment, StoreError> {
        if definition.key != key {
            return Err(invalid(
                "key",
                format!(
                    "the body names {:?} but the URL {key:?}; keys cannot be renamed",
                    definition.key
                ),
            ));
        }
        definition.validate()?;
        let current = self.get(key).ok_or_else(|| StoreError::NotFound(key.to_string()))?;
        let state = current.state;
        match state {
            State::Draft => {}
            State::Running => {
                if let Some(field) = locked_field_changed(&current.definition, &definition) {
                    let hint = if field == "variants" {
                        "the variants of a running experiment cannot change (customers would move between variants); stop it and define a new experiment (a new key, e.g. with a version suffix)"
                    } else {
                        "a running experiment only accepts changes to description and planned_duration_days; stop it and define a new experiment"
                    };
                    return Err(conflict(Some(field), format!("{field}: {hint}")));
                }
            }
            State::Stopped | State::Archived => {
                return Err(conflict(
                    None,
                    format!(
                        "experiment {key:?} is {}; define a new experiment instead",
                        state.as_str()
                    ),
                ));
            }
        }
        let current_slot = current.layer_slot.clone();
        let layer_slot = if state == State::Draft {
            self.allocate_slot(&definition, current_slot.as_ref())?
        } else {
            current_slot
        };
        let experiment = self.get_mut(key)?;
        if experiment.definition == definition {
            return Ok(experiment);
        }
        experiment.definition = definition;
        experiment.layer_slot = layer_slot;
        experiment.version += 1;
        experiment.record(Action::Edit, by, now);
        Ok(experiment)
    }

    pub fn transition(&mut self, key: &str, action: Action, by: &str, now: &str) -> Result<&Experiment, StoreError> {
        let experiment = self.get_mut(key)?;
        let (from_ok, to) = match action {
            Action::Start => (experiment.state == State::Draft, State::Running),
            Action::Stop => (experiment.state == State::Running, State::Stopped),
            Action::Archive => (
                matches!(experiment.state, State::Draft | State::Stopped),
                State::Archived,
            ),
            Action::Create | Action::Edit => (false, experiment.state),
        };
        if !from_ok {
            let hint = match action {
                Action::Start => "only a draft can be started; a stopped experiment stays stopped (define a new one)",
                Action::Stop => "only a running experiment can be stopped",
                Action::Archive => "stop it first; drafts and stopped experiments can be archived",
                Action::Create | Action::Edit => "not a state change",
            };
            return Err(conflict(
                Some("state"),
                format!("experiment {key:?} is {}: {hint}", experiment.state.as_str()),
            ));
        }
        experiment.state = to;
        match action {
            Action::Start => experiment.started_at = Some(now.to_string()),
            Action::Stop => experiment.stopped_at = Some(now.to_string()),
            Action::Archive => experiment.archived_at = Some(now.to_string()),
            Action::Create | Action::Edit => {}
        }
        experiment.version += 1;
        experiment.record(action, by, now);
        Ok(experiment)
    }
}

/// Which field a running experiment may not change, if any changed.
fn locked_field_changed(old: &ExperimentDefinition, new: &ExperimentDefinition) -> Option<&'static str> {
    if old.variants != new.variants {
        return Some("variants");
    }
    let checks: [(&'static str, bool); 10] = [
        ("kind", old.kind != new.kind),
        ("seed", old.seed() != new.seed()),
        ("control", old.control_key() != new.control_key()),
        ("traffic_share", old.traffic_share != new.traffic_share),
        ("targeting", old.targeting != new.targeting),
        ("layer", old.layer != new.layer),
        ("primary_metric", old.primary_metric != new.primary_metric),
        ("guardrail_metrics", old.guardrail_metrics != new.guardrail_metrics),
        ("alpha", old.alpha != new.alpha),
        (
            "min_sample_per_variant",
            old.min_sample_per_variant != new.min_sample_per_variant
                || old.minimum_useful_effect != new.minimum_useful_effect,
        ),
    ];
    checks.into_iter().find(|(_, changed)| *changed).map(|(f, _)| f)
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The registries of all tenants, cached in memory and persisted per tenant.
#[derive(Debug)]
pub struct ExperimentStore {
    dir: PathBuf,
    tenants: Mutex<HashMap<String, Registry>>,
}

impl ExperimentStore {
    /// A store under `<data_dir>/experiments/`; files are read on first use.
    pub fn open(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("experiments"),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("{tenant}.json"))
    }

    fn io_err(&self, path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }

    fn load(&self, tenant: &str) -> Result<Registry, StoreError> {
        let path = self.path(tenant);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let registry: Registry = serde_json::from_slice(&bytes).map_err(|e| self.io_err(&path, e))?;
                if registry.format != FILE_FORMAT {
                    return Err(self.io_err(&path, format!("unknown file format {}", registry.format)));
                }
                Ok(registry)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry {
                format: FILE_FORMAT,
                tenant: tenant.to_string(),
                experiments: Vec::new(),
            }),
            Err(e) => Err(self.io_err(&path, e)),
        }
    }

    fn write(&self, registry: &Registry) -> Result<(), StoreError> {
        let path = self.path(&registry.tenant);
        let bytes = serde_json::to_vec_pretty(registry).map_err(|e| self.io_err(&path, e))?;
        crate::fsutil::write_atomic(&path, &bytes).map_err(|e| self.io_err(&path, e))
    }

    /// Runs `read` on the tenant's registry.
    pub fn read<T>(&self, tenant: &str, read: impl FnOnce(&Registry) -> T) -> Result<T, StoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if !tenants.contains_key(tenant) {
            let registry = self.load(tenant)?;
            tenants.insert(tenant.to_string(), registry);
        }
        let registry = tenants
            .get(tenant)
            .ok_or_else(|| self.io_err(&self.path(tenant), "registry vanished"))?;
        Ok(read(registry))
    }

    /// Applies `change` to a copy of the tenant's registry, makes the copy
    /// durable, then publishes it; a failed change or write leaves nothing.
    /// Blocking (fsync): call from `spawn_blocking`.
    pub fn update<T>(
        &self,
        tenant: &str,
        change: impl FnOnce(&mut Registry) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut registry = match tenants.get(tenant) {
            Some(r) => r.clone(),
            None => self.load(tenant)?,
        };
        let out = change(&mut registry)?;
        self.write(&registry)?;
        tenants.insert(tenant.to_string(), registry);
        Ok(out)
    }
}

/// Now as stored in the registry (RFC 3339, UTC, milliseconds).
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
