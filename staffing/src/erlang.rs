//! Queueing math for live channels (voice, chat) and workload math for
//! asynchronous channels (email, messaging with long response windows).
//!
//! # Models
//!
//! Notation: arrival rate `λ` (per second), mean handle time `aht_s = 1/μ`,
//! offered load `a = λ·aht_s` erlangs, `n` servers, service-level target time
//! `t = target_s`, mean patience `1/θ = patience_s`.
//!
//! **Erlang B** (M/M/n/n blocking) by the recurrence
//! `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`. Every step is a ratio of
//! positive numbers in `(0, 1]`, so it neither overflows nor cancels — no
//! factorials or powers of `a` — and runs in `O(n)` for 5,000 erlangs as for 5.
//!
//! **Erlang C** (M/M/n, infinite patience), for `n > a`:
//! `C = n·B / (n − a·(1 − B))` (probability of waiting),
//! `SL(t) = 1 − C·exp(−(n − a)·t/aht_s)`, `ASA = C·aht_s/(n − a)`,
//! occupancy `a/n`. For `n ≤ a` the queue is unstable: `C = 1`, `SL = 0`,
//! `ASA = ∞`. Reference: Gross & Harris, *Fundamentals of Queueing Theory*,
//! §2.3; Koole, *Call Center Optimization* (2013), ch. 4.
//!
//! **Erlang A** (M/M/n+M, Palm 1943; Garnett, Mandelbaum & Reiman 2002,
//! "Designing a call center with impatient customers", MSOM 4(3);
//! Mandelbaum & Zeltyn 2007, "The Palm/Erlang-A queue, with applications to
//! call centers"). With `x = n·μ/θ = n·patience_s/aht_s` and
//! `y = λ/θ = λ·patience_s`, the stationary queue length given that all
//! servers are busy is proportional to `t_j = y^j / ((x+1)(x+2)…(x+j))`,
//! whose sum is Mandelbaum–Zeltyn's
//! `A(x, y) = x·e^y·y^(−x)·γ(x, y) = Σ_j t_j` (γ the lower incomplete
//! gamma function). Then
//!
//! * `P(wait) = A·E / (1 + (A − 1)·E)` with `E = B(n, a)` (Erlang B);
//! * an arrival finding `j` people queued ahead is answered with probability
//!   `s_j = x / (x + j + 1)`, so `P(abandon | wait) = 1 − Σ p_j·s_j`
//!   (`p_j = t_j / A`), equal to the closed form `1/(ρA) + 1 − 1/ρ`, `ρ = a/n`;
//! * its offered wait is a sum of exponentials with rates `θ(x + i)`,
//!   `i = 0..=j`, which is distributed as `−ln(β)/θ` for `β ~ Beta(x, j+1)`
//!   (product of independent `Beta(x+i, 1)`). Hence, with `w = e^(−θt)`,
//!   `P(answered within t | j) = s_j·(1 − I_w(x+1, j+1))` and, since the
//!   incomplete beta with integer second argument is a negative-binomial
//!   tail, `I_w(x+1, j+1) = Σ_{k≤j} NB(k; x+1, w)`;
//! * `E[wait; answered | j] = s_j·Σ_{i=1}^{j+1} 1/(θ(x+i))`.
//!
//! All these sums have positive terms only; the `t_j` are computed in log
//! space and rescaled by their maximum, so nothing overflows for thousands of
//! agents or heavy overload, and there is no `1 − (nearly 1)` cancellation
//! apart from the final `SL`, where the absolute error stays ~1e-15.
//!
//! Definitions used for Erlang A (stated because tools differ):
//! `service_level` = fraction of **all** arrivals answered within `target_s`
//! (abandons count as misses); `asa_s` = mean wait of **answered**
//! conversations; `mean_wait_s` = mean wait over all arrivals including the
//! time abandoners waited (`= P(abandon)/θ` by Little's law); `occupancy` =
//! carried load `a·(1 − P(abandon))/n`.
//!
//! # Chat concurrency
//!
//! An agent running `c` chats at once is modelled as `c` independent servers
//! ("slots"): `servers = agents × concurrency`. The handle time must be the
//! one **measured at the concurrency actually run** (a chat handled while the
//! agent juggles three others lasts longer than one handled alone); it is not
//! divided by `c`. The server count is rounded up to whole agents and the
//! metrics are reported for that rounded count. Limits: slots of one agent are
//! not independent (an agent on a hard chat slows all its chats; a logout
//! removes `c` slots at once), handle time itself depends on concurrency and
//! load, and routing may not fill slots evenly. Erlang on slots is therefore
//! optimistic for high concurrency and high occupancy; keep `max_occupancy`
//! below 1 for chat.
//!
//! # Asynchronous channels
//!
//! Email and messaging with response windows of hours are not queues whose
//! customers wait on the line: what matters is that every item is handled
//! before its deadline. [`backlog_staffing`] therefore staffs by workload:
//! each interval gets the smallest whole number of agents whose productive
//! time (`interval_s × max_occupancy`) handles, at `aht_s` per item, the
//! constant rate needed to clear everything that falls due in the remaining
//! intervals, carrying the rest as backlog.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, finite, fraction_below_one, fraction_up_to_one, non_negative, positive};

/// Upper bound on the number of servers any search will consider; beyond
/// this the inputs are almost certainly a unit mistake.
pub const MAX_SERVERS: u32 = 10_000_000;

/// Tolerance for rounding `x` up to whole agents: `10.000000000001` caused by
/// floating-point noise must give 10, not 11.
const CEIL_EPS: f64 = 1e-9;

fn ceil_whole(x: f64) -> u32 {
    let c = (x - CEIL_EPS).ceil().max(0.0);
    if c >= u32::MAX as f64 { u32::MAX } else { c as u32 }
}

/// Erlang B blocking probability for `servers` servers and `load_erlangs` of
/// offered traffic, via the stable recurrence.
pub fn erlang_b(servers: u32, load_erlangs: f64) -> Result<f64> {
    non_negative("load_erlangs", load_erlangs)?;
    Ok(erlang_b_unchecked(servers, load_erlangs))
}

fn erlang_b_unchecked(servers: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=servers {
        b = next_erlang_b(b, k, a);
    }
    b
}

/// One step of the recurrence: `B(k)` from `B(k−1)`.
fn next_erlang_b(b_prev: f64, k: u32, a: f64) -> f64 {
    let ab = a * b_prev;
    if ab == 0.0 { 0.0 } else { ab / (f64::from(k) + ab) }
}

/// Erlang C probability of waiting from the Erlang B value at the same `n`.
fn erlang_c_from_b(n: u32, a: f64, b: f64) -> f64 {
    let n = f64::from(n);
    if n <= a {
        return 1.0;
    }
    (n * b / (n - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// Erlang C probability that an arrival waits (`1.0` when `servers ≤ load`).
pub fn erlang_c(servers: u32, load_erlangs: f64) -> Result<f64> {
    non_negative("load_erlangs", load_erlangs)?;
    if load_erlangs == 0.0 {
        return Ok(0.0);
    }
    let b = erlang_b_unchecked(servers, load_erlangs);
    Ok(erlang_c_from_b(servers, load_erlangs, b))
}

/// Performance of a queue with a given number of servers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueueMetrics {
    /// Servers (agents × concurrency) the figures are for.
    pub servers: u32,
    /// Fraction of all arrivals answered within the target time.
    pub service_level: f64,
    /// Probability that an arrival has to wait at all.
    pub p_wait: f64,
    /// Mean wait of answered conversations, seconds (∞ when unstable).
    pub asa_s: f64,
    /// Mean wait over all arrivals (abandoners' waits included), seconds.
    pub mean_wait_s: f64,
    /// Fraction of server time busy with conversations.
    pub occupancy: f64,
    /// Probability of abandoning (Erlang A only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p_abandon: Option<f64>,
}

/// What arrives at a queue: rate, handle time and optionally patience.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Arrivals per second.
    pub arrival_rate_per_s: f64,
    /// Mean handle time in seconds (at the concurrency actually run).
    pub aht_s: f64,
    /// Mean patience in seconds; `Some` selects Erlang A, `None` Erlang C.
    pub patience_s: Option<f64>,
}

impl Workload {
    /// Validates and builds a workload from arrivals counted per interval.
    pub fn new(arrivals: f64, interval_s: f64, aht_s: f64, patience_s: Option<f64>) -> Result<Self> {
        non_negative("arrivals", arrivals)?;
        positive("interval_s", interval_s)?;
        positive("aht_s", aht_s)?;
        if let Some(p) = patience_s {
            positive("patience_s", p)?;
        }
        Ok(Self {
            arrival_rate_per_s: arrivals / interval_s,
            aht_s,
            patience_s,
        })
    }

    fn validate(&self) -> Result<()> {
        non_negative("arrivals", self.arrival_rate_per_s)?;
        positive("aht_s", self.aht_s)?;
        if let Some(p) = self.patience_s {
            positive("patience_s", p)?;
        }
        Ok(())
    }

    /// Offered load in erlangs, `λ·aht_s`.
    pub fn load_erlangs(&self) -> f64 {
        self.arrival_rate_per_s * self.aht_s
    }
}

/// Erlang C metrics for `servers` servers.
pub fn erlang_c_metrics(servers: u32, load_erlangs: f64, aht_s: f64, target_s: f64) -> Result<QueueMetrics> {
    non_negative("load_erlangs", load_erlangs)?;
    positive("aht_s", aht_s)?;
    non_negative("target_s", target_s)?;
    let b = erlang_b_unchecked(servers, load_erlangs);
    Ok(erlang_c_metrics_from_b(servers, load_erlangs, aht_s, target_s, b))
}

fn erlang_c_metrics_from_b(n: u32, a: f64, aht_s: f64, target_s: f64, b: f64) -> QueueMetrics {
    let nf = f64::from(n);
    if a == 0.0 {
        return QueueMetrics {
            servers: n,
            service_level: 1.0,
            p_wait: 0.0,
            asa_s: 0.0,
            mean_wait_s: 0.0,
            occupancy: 0.0,
            p_abandon: None,
        };
    }
    if nf <= a {
        return QueueMetrics {
            servers: n,
            service_level: 0.0,
            p_wait: 1.0,
            asa_s: f64::INFINITY,
            mean_wait_s: f64::INFINITY,
            occupancy: 1.0,
            p_abandon: None,
        };
    }
    let c = erlang_c_from_b(n, a, b);
    let sl = 1.0 - c * (-(nf - a) * target_s / aht_s).exp();
    let asa = c * aht_s / (nf - a);
    QueueMetrics {
        servers: n,
        service_level: sl.clamp(0.0, 1.0),
        p_wait: c,
        asa_s: asa,
        mean_wait_s: asa,
        occupancy: a / nf,
        p_abandon: None,
    }
}

/// Erlang A (M/M/n+M) metrics for `servers` servers; see the module docs for
/// the formulas and the exact definitions of each figure.
pub fn erlang_a_metrics(
    servers: u32,
    arrival_rate_per_s: f64,
    aht_s: f64,
    patience_s: f64,
    target_s: f64,
) -> Result<QueueMetrics> {
    non_negative("arrivals", arrival_rate_per_s)?;
    positive("aht_s", aht_s)?;
    positive("patience_s", patience_s)?;
    non_negative("target_s", target_s)?;
    let a = arrival_rate_per_s * aht_s;
    let b = erlang_b_unchecked(servers, a);
    erlang_a_from_b(servers, arrival_rate_per_s, aht_s, patience_s, target_s, b)
}

/// Relative size below which queue-length terms are dropped.
const SERIES_TOL: f64 = 1e-18;

fn erlang_a_from_b(n: u32, lambda: f64, aht_s: f64, patience_s: f64, target_s: f64, e: f64) -> Result<QueueMetrics> {
    let a = lambda * aht_s;
    if a == 0.0 {
        return Ok(QueueMetrics {
            servers: n,
            service_level: 1.0,
            p_wait: 0.0,
            asa_s: 0.0,
            mean_wait_s: 0.0,
            occupancy: 0.0,
            p_abandon: Some(0.0),
        });
    }
    let theta = 1.0 / patience_s;
    if n == 0 {
        // Nobody is ever answered: everyone waits until they give up.
        return Ok(QueueMetrics {
            servers: 0,
            service_level: 0.0,
            p_wait: 1.0,
            asa_s: f64::INFINITY,
            mean_wait_s: patience_s,
            occupancy: 0.0,
            p_abandon: Some(1.0),
        });
    }
    let x = f64::from(n) * patience_s / aht_s;
    let y = lambda * patience_s;

    // log t_j, j = 0, 1, ...; t_j rises while y > x + j, then falls faster
    // than geometrically, so stop once past the peak and negligible.
    let mut log_t = Vec::with_capacity(64);
    let mut lt = 0.0_f64;
    let mut peak = 0.0_f64;
    log_t.push(0.0);
    let mut j = 0u64;
    loop {
        j += 1;
        lt += (y / (x + j as f64)).ln();
        peak = peak.max(lt);
        log_t.push(lt);
        if (j as f64) > y - x && lt - peak < SERIES_TOL.ln() {
            break;
        }
        if j > 50_000_000 {
            return Err(Error::Unreachable {
                param: "arrivals",
                detail: "load too far above the number of servers for Erlang A".into(),
            });
        }
    }
    let t: Vec<f64> = log_t.iter().map(|l| (l - peak).exp()).collect();
    let a_scaled: f64 = t.iter().sum();

    // P(wait) = A·E / (1 + (A−1)·E) = 1 / (1 + (1−E)/(A·E)), with A = e^peak·a_scaled.
    let p_wait = if e <= 0.0 {
        0.0
    } else {
        let ratio = ((1.0 - e) / e) * (-peak).exp() / a_scaled;
        1.0 / (1.0 + ratio)
    };

    // Per queue position j: p_j, s_j, harmonic sums, and suffix sums of p_j·s_j.
    let jn = t.len();
    let mut served_given_wait = 0.0;
    let mut wait_answered = 0.0; // Σ p_j s_j H_j (H_j without the 1/θ)
    let mut harmonic = 0.0;
    let mut ps = vec![0.0; jn];
    for (j, tj) in t.iter().enumerate() {
        let p = tj / a_scaled;
        let s = x / (x + j as f64 + 1.0);
        harmonic += 1.0 / (x + j as f64 + 1.0);
        ps[j] = p * s;
        served_given_wait += p * s;
        wait_answered += p * s * harmonic;
    }
    // Suffix sums S_k = Σ_{j≥k} p_j s_j, accumulated from the small end.
    let mut suffix = vec![0.0; jn];
    let mut acc = 0.0;
    for k in (0..jn).rev() {
        acc += ps[k];
        suffix[k] = acc;
    }
    // Σ_k NB(k; x+1, w)·S_k with w = e^(−θt): answered but after t, given wait.
    let theta_t = theta * target_s;
    let ln_w = -theta_t;
    let ln_1mw = if theta_t == 0.0 {
        f64::NEG_INFINITY
    } else {
        (-(-theta_t).exp_m1()).ln()
    };
    let r = x + 1.0;
    let mut ln_nb = r * ln_w;
    let mut late = 0.0;
    let mut prev = f64::NEG_INFINITY;
    for (k, sk) in suffix.iter().enumerate() {
        if k > 0 {
            ln_nb += ((r + k as f64 - 1.0) / k as f64).ln() + ln_1mw;
        }
        late += ln_nb.exp() * sk;
        // The NB pmf is unimodal and S_k ≤ 1: once it falls and is below
        // e^-50 the remaining terms cannot matter.
        if k > 0 && ln_nb < prev && ln_nb < -50.0 {
            break;
        }
        prev = ln_nb;
    }
    let answered_within_given_wait = (served_given_wait - late).max(0.0);

    let p_abandon = (p_wait * (1.0 - served_given_wait)).clamp(0.0, 1.0);
    let service_level = ((1.0 - p_wait) + p_wait * answered_within_given_wait).clamp(0.0, 1.0);
    let p_answered = (1.0 - p_wait) + p_wait * served_given_wait;
    let asa_s = if p_answered > 0.0 {
        p_wait * wait_answered * patience_s / p_answered
    } else {
        f64::INFINITY
    };
    Ok(QueueMetrics {
        servers: n,
        service_level,
        p_wait,
        asa_s,
        mean_wait_s: p_abandon * patience_s,
        occupancy: (a * (1.0 - p_abandon) / f64::from(n)).min(1.0),
        p_abandon: Some(p_abandon),
    })
}

/// Metrics for `servers` servers, Erlang A if the workload has a patience,
/// Erlang C otherwise.
pub fn metrics(servers: u32, workload: &Workload, target_s: f64) -> Result<QueueMetrics> {
    workload.validate()?;
    non_negative("target_s", target_s)?;
    let a = workload.load_erlangs();
    let b = erlang_b_unchecked(servers, a);
    metrics_from_b(servers, workload, target_s, b)
}

fn metrics_from_b(n: u32, w: &Workload, target_s: f64, b: f64) -> Result<QueueMetrics> {
    match w.patience_s {
        None => Ok(erlang_c_metrics_from_b(n, w.load_erlangs(), w.aht_s, target_s, b)),
        Some(p) => erlang_a_from_b(n, w.arrival_rate_per_s, w.aht_s, p, target_s, b),
    }
}

/// A staffing target: service level within a time, and/or a maximum occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Answer time the service level refers to, seconds.
    pub target_s: f64,
    /// Required fraction answered within `target_s`, in [0, 1); `None` for no
    /// service-level constraint.
    pub service_level: Option<f64>,
    /// Maximum occupancy in (0, 1]; `None` for no occupancy cap.
    pub max_occupancy: Option<f64>,
}

impl Target {
    fn validate(&self) -> Result<()> {
        non_negative("target_s", self.target_s)?;
        if let Some(sl) = self.service_level {
            fraction_below_one("service_level", sl)?;
        }
        if let Some(o) = self.max_occupancy {
            fraction_up_to_one("max_occupancy", o)?;
        }
        Ok(())
    }

    fn met_by(&self, m: &QueueMetrics, erlang_c: bool) -> bool {
        let sl_ok = match self.service_level {
            Some(sl) => m.service_level >= sl,
            // Erlang C without a service-level target still needs a stable queue.
            None => !erlang_c || m.asa_s.is_finite(),
        };
        let occ_ok = self.max_occupancy.is_none_or(|o| m.occupancy <= o + 1e-12);
        sl_ok && occ_ok
    }
}

/// The smallest number of servers meeting `target`, with its metrics.
///
/// Service level rises and occupancy falls with every added server, so the
/// first count meeting both is the answer. Erlang C scans upwards from the
/// stability bound updating Erlang B incrementally (`O(n)` in total);
/// Erlang A, whose answer can lie below the load, gallops and bisects.
pub fn required_servers(workload: &Workload, target: &Target) -> Result<QueueMetrics> {
    workload.validate()?;
    target.validate()?;
    let a = workload.load_erlangs();
    if a == 0.0 {
        return metrics(0, workload, target.target_s);
    }
    match workload.patience_s {
        None => {
            let mut n0 = (a.floor() as u64 + 1).min(u64::from(MAX_SERVERS)) as u32;
            if let Some(o) = target.max_occupancy {
                n0 = n0.max(ceil_whole(a / o));
            }
            let mut b = erlang_b_unchecked(n0, a);
            let mut n = n0;
            loop {
                let m = erlang_c_metrics_from_b(n, a, workload.aht_s, target.target_s, b);
                if target.met_by(&m, true) {
                    return Ok(m);
                }
                if n >= MAX_SERVERS {
                    return Err(unreachable_target());
                }
                n += 1;
                b = next_erlang_b(b, n, a);
            }
        }
        Some(_) => {
            let meets = |n: u32| -> Result<Option<QueueMetrics>> {
                let m = metrics(n, workload, target.target_s)?;
                Ok(target.met_by(&m, false).then_some(m))
            };
            let mut lo = 0u32; // known not to meet (a > 0 and n = 0 answers nobody)
            if target.service_level.is_none() && target.max_occupancy.is_none() {
                return metrics(1, workload, target.target_s);
            }
            let mut hi = (a.ceil() as u32).max(1);
            let mut best = loop {
                if let Some(m) = meets(hi)? {
                    break m;
                }
                if hi >= MAX_SERVERS {
                    return Err(unreachable_target());
                }
                lo = hi;
                hi = hi.saturating_mul(2).min(MAX_SERVERS);
            };
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                match meets(mid)? {
                    Some(m) => {
                        hi = mid;
                        best = m;
                    }
                    None => lo = mid,
                }
            }
            Ok(best)
        }
    }
}

fn unreachable_target() -> Error {
    Error::Unreachable {
        param: "service_level",
        detail: format!("not met with up to {MAX_SERVERS} servers; check the units of arrivals and aht_s"),
    }
}

/// Combines shrinkage components (breaks, training, absence, …), each a
/// fraction of paid time, as `1 − Π(1 − sᵢ)`: each applies to the time the
/// previous ones left, so they multiply rather than add.
pub fn combine_shrinkage(components: &[f64]) -> Result<f64> {
    let mut remaining = 1.0;
    for &s in components {
        fraction_below_one("shrinkage", s)?;
        remaining *= 1.0 - s;
    }
    Ok(1.0 - remaining)
}

/// Agents to schedule so that `productive_agents` are available after
/// shrinkage: `⌈N / (1 − s)⌉`.
pub fn apply_shrinkage(productive_agents: u32, shrinkage: f64) -> Result<u32> {
    fraction_below_one("shrinkage", shrinkage)?;
    Ok(ceil_whole(f64::from(productive_agents) / (1.0 - shrinkage)))
}

fn default_concurrency() -> u32 {
    1
}

/// A single staffing calculation, as the `GET /v1/staffing/erlang` endpoint
/// receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffingRequest {
    /// Conversations arriving in the interval.
    pub arrivals: f64,
    /// Interval length in seconds (e.g. 1800).
    pub interval_s: f64,
    /// Mean handle time in seconds, measured at `concurrency`.
    pub aht_s: f64,
    /// Service-level answer time in seconds.
    pub target_s: f64,
    /// Required fraction answered within `target_s`, in [0, 1).
    pub service_level: f64,
    /// Mean patience in seconds; given → Erlang A, absent → Erlang C.
    #[serde(default)]
    pub patience_s: Option<f64>,
    /// Total shrinkage in [0, 1) (see [`combine_shrinkage`]).
    #[serde(default)]
    pub shrinkage: f64,
    /// Maximum occupancy in (0, 1].
    #[serde(default)]
    pub max_occupancy: Option<f64>,
    /// Conversations an agent handles at once (1 for voice).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

/// The answer to a [`StaffingRequest`]. Field names are part of the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffingResult {
    /// Agents to schedule (after shrinkage).
    pub agents: u32,
    /// Agents needed on the floor (before shrinkage).
    pub productive_agents: u32,
    /// Servers = productive agents × concurrency.
    pub servers: u32,
    /// `"erlang_c"` or `"erlang_a"`.
    pub model: String,
    /// Offered load in erlangs (slot-erlangs for chat).
    pub load_erlangs: f64,
    /// Fraction of arrivals answered within `target_s`.
    pub service_level: f64,
    /// Probability of waiting.
    pub p_wait: f64,
    /// Average speed of answer of answered conversations, seconds.
    pub asa_s: f64,
    /// Occupancy of the servers.
    pub occupancy: f64,
    /// Probability of abandoning (only with `patience_s`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p_abandon: Option<f64>,
    /// Which constraint set the count: `"service_level"`, `"max_occupancy"`
    /// or `"none"` (no arrivals).
    pub binding: String,
}

impl StaffingRequest {
    fn validate(&self) -> Result<Workload> {
        finite("arrivals", self.arrivals)?;
        let w = Workload::new(self.arrivals, self.interval_s, self.aht_s, self.patience_s)?;
        non_negative("target_s", self.target_s)?;
        fraction_below_one("service_level", self.service_level)?;
        fraction_below_one("shrinkage", self.shrinkage)?;
        if let Some(o) = self.max_occupancy {
            fraction_up_to_one("max_occupancy", o)?;
        }
        if self.concurrency == 0 {
            return Err(Error::OutOfRange {
                param: "concurrency",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        Ok(w)
    }
}

/// The single-calculation entry point: agents needed for one interval.
pub fn staff(req: &StaffingRequest) -> Result<StaffingResult> {
    let workload = req.validate()?;
    let target = Target {
        target_s: req.target_s,
        service_level: Some(req.service_level),
        max_occupancy: req.max_occupancy,
    };
    let c = req.concurrency;
    let slots = required_servers(&workload, &target)?;
    // Whole agents: round the slot count up to a multiple of the concurrency
    // and report the metrics for what will actually be staffed.
    let productive_agents = slots.servers.div_ceil(c);
    let servers = productive_agents.saturating_mul(c);
    let m = if servers == slots.servers {
        slots
    } else {
        metrics(servers, &workload, req.target_s)?
    };
    let binding = if workload.load_erlangs() == 0.0 {
        "none"
    } else {
        let sl_only = Target {
            max_occupancy: None,
            ..target
        };
        let by_sl = required_servers(&workload, &sl_only)?;
        if by_sl.servers >= slots.servers {
            "service_level"
        } else {
            "max_occupancy"
        }
    };
    Ok(StaffingResult {
        agents: apply_shrinkage(productive_agents, req.shrinkage)?,
        productive_agents,
        servers,
        model: if req.patience_s.is_some() {
            "erlang_a"
        } else {
            "erlang_c"
        }
        .to_string(),
        load_erlangs: workload.load_erlangs(),
        service_level: m.service_level,
        p_wait: m.p_wait,
        asa_s: m.asa_s,
        occupancy: m.occupancy,
        p_abandon: m.p_abandon,
        binding: binding.to_string(),
    })
}

/// Workload staffing for an asynchronous channel over consecutive intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacklogRequest {
    /// Items arriving in each interval.
    pub arrivals: Vec<f64>,
    /// Interval length in seconds.
    pub interval_s: f64,
    /// Handle time per item in seconds.
    pub aht_s: f64,
    /// Every item must be handled within this many seconds of arriving.
    pub response_deadline_s: f64,
    /// Items already waiting at the start, all due in the first interval.
    #[serde(default)]
    pub backlog_at_start: f64,
    /// Productive fraction of an on-floor agent's time spent handling, (0, 1].
    pub max_occupancy: f64,
    /// Shrinkage in [0, 1).
    #[serde(default)]
    pub shrinkage: f64,
}

/// One interval of an asynchronous staffing plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BacklogInterval {
    /// Agents to schedule (after shrinkage).
    pub agents: u32,
    /// Agents working items.
    pub productive_agents: u32,
    /// Items handled in the interval.
    pub handled: f64,
    /// Items waiting at the end of the interval.
    pub backlog_end: f64,
}

/// Staffs an asynchronous channel by workload and deadline (see module docs).
///
/// Items are assumed to arrive at the start of their interval (the
/// conservative end), so an item of interval `i` must be handled by the end
/// of interval `i + max(⌊deadline/interval⌋, 1) − 1`. In each interval the
/// plan handles the smallest constant rate that clears everything falling
/// due in the rest of the horizon; items not due within the horizon may be
/// left in the final backlog.
pub fn backlog_staffing(req: &BacklogRequest) -> Result<Vec<BacklogInterval>> {
    positive("interval_s", req.interval_s)?;
    positive("aht_s", req.aht_s)?;
    positive("response_deadline_s", req.response_deadline_s)?;
    non_negative("backlog_at_start", req.backlog_at_start)?;
    fraction_up_to_one("max_occupancy", req.max_occupancy)?;
    fraction_below_one("shrinkage", req.shrinkage)?;
    for &x in &req.arrivals {
        non_negative("arrivals", x)?;
    }
    let steps = ((req.response_deadline_s / req.interval_s).floor() as usize).max(1);
    let lag = steps - 1;
    let len = req.arrivals.len();
    // Cumulative arrivals (with the starting backlog) and cumulative due.
    let mut arrived = Vec::with_capacity(len);
    let mut acc = req.backlog_at_start;
    for &x in &req.arrivals {
        acc += x;
        arrived.push(acc);
    }
    let due: Vec<f64> = (0..len)
        .map(|t| {
            if t >= lag {
                arrived[t - lag]
            } else {
                req.backlog_at_start
            }
        })
        .collect();
    let per_agent_items = req.interval_s * req.max_occupancy / req.aht_s;
    let mut done = 0.0;
    let mut out = Vec::with_capacity(len);
    for t in 0..len {
        let mut rate = 0.0_f64;
        for (k, d) in due[t..].iter().enumerate() {
            rate = rate.max((d - done) / (k as f64 + 1.0));
        }
        let available = arrived[t] - done;
        let rate = rate.clamp(0.0, available.max(0.0));
        let productive_agents = ceil_whole(rate / per_agent_items);
        // Agents work ahead when rounding leaves them spare capacity.
        let handled = (f64::from(productive_agents) * per_agent_items).min(available.max(0.0));
        done += handled;
        out.push(BacklogInterval {
            agents: apply_shrinkage(productive_agents, req.shrinkage)?,
            productive_agents,
            handled,
            backlog_end: (arrived[t] - done).max(0.0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
