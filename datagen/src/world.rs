//! The prepared world: per-tenant lookup tables derived once from the
//! config (arrival curve, daily plan, customers, routing, agent schedules,
//! queueing model). Everything here is a pure function of the config, so any
//! day can be generated on its own.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use rand_distr::{Distribution, Poisson};

use crate::config::{ChannelAccount, GenConfig, Intent, TenantProfile};
use crate::rng::{SimRng, cdf_of, hash, pick_cdf, unit_from_hash};

/// 15-minute slots in a week; slot 0 = Monday 00:00 local.
pub(crate) const WEEK_SLOTS: usize = 7 * 96;
pub(crate) const US: i64 = 1_000_000;

/// Stream tags keep the random streams of different purposes independent.
pub(crate) mod stream {
    pub(crate) const PLAN: u64 = 1;
    pub(crate) const ARRIVALS: u64 = 2;
    pub(crate) const CONVERSATION: u64 = 3;
    pub(crate) const AGENTS: u64 = 4;
    pub(crate) const ORGANIC: u64 = 5;
    pub(crate) const CUSTOMER: u64 = 6;
    pub(crate) const AGENT_TRAITS: u64 = 7;
    pub(crate) const SICK: u64 = 8;
}

#[derive(Debug)]
pub(crate) struct Agent {
    /// Tenant-wide agent number (rendered `agt_0042`).
    pub(crate) id: u32,
    pub(crate) team: u16,
    pub(crate) shift_start_min: u32,
    pub(crate) shift_hours: u32,
    /// Bit `w` set = day off on weekday `w` (0 = Monday).
    pub(crate) days_off: u8,
    /// Probability that a reply used the AI suggestion as is / edited.
    pub(crate) ai_accept: f64,
    pub(crate) ai_edit: f64,
}

#[derive(Debug)]
pub(crate) struct Team {
    /// Indices into `TenantWorld::agents`.
    pub(crate) agents: Vec<u32>,
    /// Per week slot: (agent index, days since the shift started).
    pub(crate) online: Vec<Vec<(u32, u8)>>,
    /// Per week slot: expected queue wait in seconds (0 when nobody is on).
    pub(crate) wait_mean_s: Vec<f64>,
    /// Per week slot: utilisation in [0, 0.97].
    pub(crate) rho: Vec<f64>,
}

#[derive(Debug)]
pub(crate) struct TenantWorld {
    pub(crate) index: u16,
    pub(crate) profile: TenantProfile,
    /// Cumulative weights of the 96 local quarter hours.
    pub(crate) bin_cdf: Vec<f64>,
    /// Conversations per day of the window.
    pub(crate) day_count: Vec<u32>,
    /// First conversation number of each day (prefix sums).
    pub(crate) conv_base: Vec<u64>,
    /// New customers per day.
    pub(crate) new_count: Vec<u32>,
    /// First new customer number of each day; customers below it exist.
    pub(crate) cust_base: Vec<u64>,
    /// UTC µs of local midnight starting day d (d = 0..=days).
    pub(crate) midnight_us: Vec<i64>,
    pub(crate) locale_cdf: Vec<f64>,
    /// Per locale: cumulative weights and account indices usable by it.
    pub(crate) locale_accounts: Vec<(Vec<f64>, Vec<u16>)>,
    /// Per locale: queue index for [Sales, Support].
    pub(crate) queue_for: Vec<[u16; 2]>,
    pub(crate) queue_team: Vec<u16>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) teams: Vec<Team>,
    pub(crate) plan_cdf: Vec<f64>,
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) days: u32,
    pub(crate) start: NaiveDate,
    pub(crate) tenants: Vec<TenantWorld>,
    pub(crate) snapshot_at_end: bool,
    pub(crate) unknown_fields: bool,
    pub(crate) experiment: Option<crate::config::ExperimentConfig>,
    pub(crate) variant_weights: Vec<f64>,
}

/// Why a config cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid generator config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// UTC µs of a local wall-clock time; times skipped by a DST gap move one
/// hour later, repeated ones take the first occurrence.
pub(crate) fn local_to_utc_us(tz: &chrono_tz::Tz, ndt: NaiveDateTime) -> i64 {
    let dt = match tz.from_local_datetime(&ndt).earliest() {
        Some(dt) => dt,
        None => {
            let later = ndt + chrono::Duration::hours(1);
            match tz.from_local_datetime(&later).earliest() {
                Some(dt) => dt,
                None => return ndt.and_utc().timestamp_micros(),
            }
        }
    };
    dt.timestamp_micros()
}

/// Offset of the zone from UTC at a UTC instant, in seconds.
pub(crate) fn offset_at(tz: &chrono_tz::Tz, t_us: i64) -> i64 {
    let secs = t_us.div_euclid(US);
    match DateTime::from_timestamp(secs, 0) {
        Some(dt) => tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc() as i64,
        None => 0,
    }
}

fn serves(languages: &[String], language: &str) -> bool {
    languages.is_empty() || languages.iter().any(|l| l == language)
}

impl World {
    pub(crate) fn new(cfg: &GenConfig) -> Result<World, ConfigError> {
        if cfg.tenants.is_empty() {
            return err("no tenants");
        }
        if cfg.tenants.len() > 1000 {
            return err("more than 1000 tenants");
        }
        if !(cfg.conversations_per_day >= 0.0 && cfg.conversations_per_day.is_finite()) {
            return err("conversations_per_day must be a finite number >= 0");
        }
        let share_total: f64 = cfg.tenants.iter().map(|t| t.volume_share.max(0.0)).sum();
        if share_total <= 0.0 {
            return err("the tenants' volume_share values sum to zero");
        }
        let mut variant_weights = Vec::new();
        if let Some(exp) = &cfg.experiment {
            if exp.variants.is_empty() || exp.variants.len() > 250 {
                return err("experiment needs 1 to 250 variants");
            }
            variant_weights = exp.variants.iter().map(|v| v.weight).collect();
            if variant_weights.iter().any(|w| w.is_nan() || *w < 0.0) || variant_weights.iter().sum::<f64>() <= 0.0 {
                return err("experiment weights must be >= 0 and not all zero");
            }
        }
        let mut tenants = Vec::with_capacity(cfg.tenants.len());
        for (i, p) in cfg.tenants.iter().enumerate() {
            let daily_mean = cfg.conversations_per_day * p.volume_share.max(0.0) / share_total;
            tenants.push(TenantWorld::new(cfg, i as u16, p, daily_mean)?);
        }
        let mut ids: Vec<&str> = cfg.tenants.iter().map(|t| t.tenant_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != cfg.tenants.len() {
            return err("duplicate tenant_id");
        }
        Ok(World {
            seed: cfg.seed,
            days: cfg.days,
            start: cfg.start,
            tenants,
            snapshot_at_end: cfg.snapshot_at_end,
            unknown_fields: cfg.unknown_fields,
            experiment: cfg.experiment.clone(),
            variant_weights,
        })
    }

    /// Earliest local midnight over tenants starting day `d`: no event of a
    /// day-`d` chunk happens before it.
    pub(crate) fn day_floor_us(&self, d: u32) -> i64 {
        self.tenants.iter().map(|t| t.midnight(d)).min().unwrap_or(i64::MAX)
    }
}

impl TenantWorld {
    fn new(cfg: &GenConfig, index: u16, p: &TenantProfile, daily_mean: f64) -> Result<Self, ConfigError> {
        let name = &p.tenant_id;
        if !model::TenantId::is_valid(name) {
            return err(format!("tenant_id {name:?} must match [a-z0-9_-]{{1,64}}"));
        }
        if p.locales.is_empty() || p.locales.iter().all(|l| l.weight <= 0.0) {
            return err(format!("tenant {name}: no locale with a positive weight"));
        }
        if p.accounts.is_empty() || p.accounts.len() > 60_000 {
            return err(format!("tenant {name}: needs 1 to 60000 channel accounts"));
        }
        if p.teams.is_empty() || p.queues.is_empty() {
            return err(format!("tenant {name}: needs at least one team and one queue"));
        }
        if p.agent_concurrency == 0 || p.handle_time_s.is_nan() || p.handle_time_s <= 0.0 {
            return err(format!(
                "tenant {name}: agent_concurrency and handle_time_s must be positive"
            ));
        }
        if p.hourly_profile.iter().sum::<f64>() <= 0.0 || p.weekday_factors.iter().sum::<f64>() <= 0.0 {
            return err(format!(
                "tenant {name}: hourly_profile and weekday_factors must not be all zero"
            ));
        }
        if let crate::config::OrderValue::Plans(plans) = &p.order_value
            && plans.is_empty()
        {
            return err(format!("tenant {name}: no subscription plans"));
        }
        let seed = cfg.seed;
        let tz = p.timezone;

        // Arrival curve over quarter hours: the hourly weights, linearly
        // interpolated between hour centres so the heatmap is smooth.
        let h = &p.hourly_profile;
        let bins: Vec<f64> = (0..96)
            .map(|b| {
                let x = (b as f64 + 0.5) / 4.0 - 0.5;
                let i0 = x.floor();
                let frac = x - i0;
                let a = h[(i0 as i64).rem_euclid(24) as usize];
                let c = h[((i0 as i64) + 1).rem_euclid(24) as usize];
                (a + (c - a) * frac).max(0.0)
            })
            .collect();
        let bin_total: f64 = bins.iter().sum();
        let bin_cdf = cdf_of(bins.iter().copied());
        let wsum: f64 = p.weekday_factors.iter().map(|w| w.max(0.0)).sum();
        let mut weekday = [0.0; 7];
        for (w, f) in weekday.iter_mut().zip(p.weekday_factors) {
            *w = f.max(0.0) * 7.0 / wsum;
        }

        // Daily plan: counts of conversations and new customers.
        let days = cfg.days as usize;
        let mut midnight_us = Vec::with_capacity(days + 1);
        for d in 0..=days {
            let date = cfg.start + chrono::Days::new(d as u64);
            midnight_us.push(local_to_utc_us(&tz, date.and_time(NaiveTime::MIN)));
        }
        let mut day_count = Vec::with_capacity(days);
        let mut new_count = Vec::with_capacity(days);
        let mut conv_base = Vec::with_capacity(days + 1);
        let mut cust_base = Vec::with_capacity(days + 1);
        let initial_customers = (p.existing_customer_base_days.max(0.0) * daily_mean).round() as u64 + 1;
        let (mut conv_acc, mut cust_acc) = (0u64, initial_customers);
        for d in 0..days {
            let date = cfg.start + chrono::Days::new(d as u64);
            let wd = chrono::Datelike::weekday(&date).num_days_from_monday() as usize;
            let mut rng = SimRng::new(&[seed, index as u64, d as u64, stream::PLAN]);
            let noise = rng.lognormal(1.0, 0.06);
            let mean = daily_mean * weekday[wd] * (1.0 + p.growth_per_day).powf(d as f64) * noise;
            let n = if mean > 0.0 && mean.is_finite() {
                match Poisson::new(mean) {
                    Ok(dist) => dist.sample(&mut rng) as u32,
                    Err(_) => mean.round() as u32,
                }
            } else {
                0
            };
            let new = (n as f64 * p.new_customer_share.clamp(0.0, 1.0)).round() as u32;
            conv_base.push(conv_acc);
            cust_base.push(cust_acc);
            day_count.push(n);
            new_count.push(new);
            conv_acc += n as u64;
            cust_acc += new as u64;
        }
        conv_base.push(conv_acc);
        cust_base.push(cust_acc);

        // Routing tables.
        let locale_cdf = cdf_of(p.locales.iter().map(|l| l.weight));
        let mut locale_accounts = Vec::with_capacity(p.locales.len());
        for l in &p.locales {
            let usable: Vec<(u16, &ChannelAccount)> = p
                .accounts
                .iter()
                .enumerate()
                .filter(|(_, a)| serves(&a.languages, &l.language) && a.weight > 0.0)
                .map(|(i, a)| (i as u16, a))
                .collect();
            if usable.is_empty() {
                return err(format!(
                    "tenant {name}: no channel account serves language {}",
                    l.language
                ));
            }
            locale_accounts.push((
                cdf_of(usable.iter().map(|(_, a)| a.weight)),
                usable.iter().map(|(i, _)| *i).collect(),
            ));
        }
        let mut queue_team = Vec::with_capacity(p.queues.len());
        for q in &p.queues {
            match p.teams.iter().position(|t| t.name == q.team) {
                Some(t) => queue_team.push(t as u16),
                None => return err(format!("tenant {name}: queue {} names unknown team {}", q.name, q.team)),
            }
        }
        let queue_for: Vec<[u16; 2]> = p
            .locales
            .iter()
            .map(|l| {
                let find = |intent: Intent| {
                    p.queues
                        .iter()
                        .position(|q| q.intent == intent && serves(&q.languages, &l.language))
                        .or_else(|| p.queues.iter().position(|q| q.intent == intent))
                        .unwrap_or(0) as u16
                };
                [find(Intent::Sales), find(Intent::Support)]
            })
            .collect();

        // Agents and their weekly schedule.
        let mut agents = Vec::new();
        let mut teams = Vec::with_capacity(p.teams.len());
        for (ti, tp) in p.teams.iter().enumerate() {
            if tp.shifts.is_empty()
                || tp
                    .shifts
                    .iter()
                    .any(|s| s.hours == 0 || s.hours > 24 || s.start_min >= 1440)
            {
                return err(format!(
                    "tenant {name}: team {} needs shifts of 1-24 hours starting before 24:00",
                    tp.name
                ));
            }
            let n = ((tp.agents_per_1k_daily.max(0.0) * daily_mean / 1000.0).round() as u32).max(2);
            let shift_cdf = cdf_of(tp.shifts.iter().map(|s| s.share));
            let mut team = Team {
                agents: Vec::with_capacity(n as usize),
                online: vec![Vec::new(); WEEK_SLOTS],
                wait_mean_s: vec![0.0; WEEK_SLOTS],
                rho: vec![0.0; WEEK_SLOTS],
            };
            for j in 0..n {
                let sh = tp.shifts[pick_cdf(&shift_cdf, (j as f64 + 0.5) / n as f64)];
                let id = agents.len() as u32;
                let trait_h = |k: u64| unit_from_hash(hash(&[seed, index as u64, id as u64, stream::AGENT_TRAITS, k]));
                let days_off = if trait_h(0) < tp.weekend_off_share {
                    0b110_0000
                } else {
                    let first = (j * 3 + ti as u32) % 7;
                    (1u8 << first) | (1u8 << ((first + 1) % 7))
                };
                team.agents.push(id);
                for w in 0..7usize {
                    if days_off & (1 << w) != 0 {
                        continue;
                    }
                    let first_slot = w * 96 + (sh.start_min / 15) as usize;
                    for k in 0..(sh.hours * 4) as usize {
                        let day_offset = (((sh.start_min / 15) as usize + k) / 96) as u8;
                        team.online[(first_slot + k) % WEEK_SLOTS].push((agents.len() as u32, day_offset));
                    }
                }
                agents.push(Agent {
                    id,
                    team: ti as u16,
                    shift_start_min: sh.start_min,
                    shift_hours: sh.hours,
                    days_off,
                    ai_accept: 0.1 + 0.4 * trait_h(1),
                    ai_edit: 0.05 + 0.25 * trait_h(2),
                });
            }
            teams.push(team);
        }

        // Queueing model: expected human arrivals per team and slot against
        // the agents on shift, Sakasegawa's M/M/s approximation for the mean
        // wait. Evenings, when traffic peaks and the late shift is thin, wait
        // longest.
        let locale_total = *locale_cdf.last().unwrap_or(&1.0);
        let mut team_share = vec![0.0; p.teams.len()];
        for (li, l) in p.locales.iter().enumerate() {
            let w = l.weight.max(0.0) / locale_total;
            let sales = p.sales_share.clamp(0.0, 1.0);
            team_share[queue_team[queue_for[li][0] as usize] as usize] += w * sales;
            team_share[queue_team[queue_for[li][1] as usize] as usize] += w * (1.0 - sales);
        }
        let acc_total: f64 = p.accounts.iter().map(|a| a.weight.max(0.0)).sum();
        let human_share: f64 = p
            .accounts
            .iter()
            .map(|a| {
                a.weight.max(0.0) / acc_total
                    * if a.bot {
                        1.0 - p.bot_resolve_rate.clamp(0.0, 1.0)
                    } else {
                        1.0
                    }
            })
            .sum();
        for (ti, team) in teams.iter_mut().enumerate() {
            for slot in 0..WEEK_SLOTS {
                let (w, b) = (slot / 96, slot % 96);
                let arrivals_per_s =
                    daily_mean * weekday[w] * (bins[b] / bin_total) * team_share[ti] * human_share / 900.0;
                let servers = (team.online[slot].len() as f64) * p.agent_concurrency as f64;
                if servers == 0.0 {
                    continue;
                }
                let rho = (arrivals_per_s * p.handle_time_s / servers).min(0.97);
                let wq = rho.powf((2.0 * (servers + 1.0)).sqrt() - 1.0) / (servers * (1.0 - rho)) * p.handle_time_s;
                team.rho[slot] = rho;
                team.wait_mean_s[slot] = wq;
            }
        }

        let plan_cdf = match &p.order_value {
            crate::config::OrderValue::Plans(plans) => cdf_of(plans.iter().map(|x| x.1)),
            crate::config::OrderValue::LogNormal { .. } => Vec::new(),
        };

        Ok(TenantWorld {
            index,
            profile: p.clone(),
            bin_cdf,
            day_count,
            conv_base,
            new_count,
            cust_base,
            midnight_us,
            locale_cdf,
            locale_accounts,
            queue_for,
            queue_team,
            agents,
            teams,
            plan_cdf,
        })
    }

    pub(crate) fn midnight(&self, d: u32) -> i64 {
        self.midnight_us.get(d as usize).copied().unwrap_or_else(|| {
            *self.midnight_us.last().unwrap_or(&0) + (d as i64 - self.midnight_us.len() as i64 + 1) * 86_400 * US
        })
    }

    /// Local seconds since the epoch (wall clock read as if UTC).
    pub(crate) fn local_secs(&self, t_us: i64) -> i64 {
        t_us.div_euclid(US) + offset_at(&self.profile.timezone, t_us)
    }

    /// Week slot (0 = Monday 00:00) and local day number of an instant.
    pub(crate) fn week_slot(&self, t_us: i64) -> (usize, i64) {
        let local = self.local_secs(t_us);
        let day = local.div_euclid(86_400);
        // 1970-01-01 was a Thursday (weekday 3 counting from Monday = 0).
        let wd = (day + 3).rem_euclid(7) as usize;
        let slot = wd * 96 + (local.rem_euclid(86_400) / 900) as usize;
        (slot, day)
    }

    /// Whether an agent is off sick on the shift that starts on local day
    /// number `day` (pure, so routing and status events agree).
    pub(crate) fn sick(&self, seed: u64, agent: u32, day: i64) -> bool {
        unit_from_hash(hash(&[seed, self.index as u64, agent as u64, day as u64, stream::SICK])) < 0.03
    }
}
