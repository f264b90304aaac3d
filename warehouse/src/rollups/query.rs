//! Answers from a rollup's facts and cells: the overview of a window,
//! its groups, dimension values and tag counts.

use super::*;

impl TenantRollup {
    pub(super) fn resolve_filters(&self, filters: &[FactFilter]) -> Vec<(Dimension, Option<Vec<u32>>)> {
        filters
            .iter()
            .map(|f| {
                (
                    f.dim,
                    f.values
                        .as_ref()
                        .map(|vs| vs.iter().filter_map(|v| self.names.get(v)).collect()),
                )
            })
            .collect()
    }

    pub(super) fn facts_in(&self, from_us: i64, to_us: i64) -> impl Iterator<Item = &Fact> {
        let range = if from_us < to_us {
            self.by_start.range((from_us, 0)..(to_us, 0))
        } else {
            self.by_start.range((0, 0)..(0, 0))
        };
        range.filter_map(|&(_, i)| self.facts[i].as_ref())
    }

    /// The summary of the conversations started in `[from, to)` that pass
    /// `filters`: cells for whole hours when only `channel` filters.
    pub(super) fn summarize(&self, from_us: i64, to_us: i64, filters: &[FactFilter]) -> Summary<SketchAcc> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        let mut sum = Summary::<SketchAcc>::default();
        let cells_ok = resolved.iter().all(|(d, _)| *d == Dimension::Channel);
        let h0 = from_us.div_euclid(HOUR_US) * HOUR_US + if from_us.rem_euclid(HOUR_US) == 0 { 0 } else { HOUR_US };
        let h1 = to_us.div_euclid(HOUR_US) * HOUR_US;
        let exact_below = self.exact_below.unwrap_or(EXACT_BELOW);
        let small = || {
            let mut n = 0u64;
            for c in self.cells.range((h0, 0)..(h1, 0)).map(|(_, c)| c) {
                n += c.conversations;
                if n > exact_below {
                    return false;
                }
            }
            true
        };
        if cells_ok && h0 < h1 && !small() {
            let channel_ok = |c: u32| {
                resolved.iter().all(|(_, values)| match values {
                    None => c == NONE,
                    Some(vs) => c != NONE && vs.contains(&c),
                })
            };
            for ((_, channel), cell) in self.cells.range((h0, 0)..(h1, 0)) {
                if channel_ok(*channel) {
                    sum.merge_cell(cell);
                }
            }
            for f in self.facts_in(from_us, h0).chain(self.facts_in(h1, to_us)) {
                if f.matches(&resolved) {
                    sum.add_fact(f, target);
                }
            }
        } else {
            for f in self.facts_in(from_us, to_us) {
                if f.matches(&resolved) {
                    sum.add_fact(f, target);
                }
            }
        }
        sum
    }

    /// The values `dim` takes among conversations started in `[from, to)`
    /// that pass `filters`, sorted, and whether some have none.
    pub fn dimension_values(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        dim: Dimension,
    ) -> (Vec<String>, bool) {
        let groups = self
            .occurring_groups(from_us, to_us, filters, &[dim], usize::MAX)
            .unwrap_or_default();
        let none = groups.iter().any(|g| g[0].is_none());
        (groups.into_iter().filter_map(|mut g| g.pop().flatten()).collect(), none)
    }

    /// What `sql/analyses/bottlenecks_pairs.sql` counts among the
    /// conversations started in `[from, to)` that pass `filters` and have a
    /// tag, in one pass over the facts.
    pub fn tag_counts(&self, from_us: i64, to_us: i64, filters: &[FactFilter]) -> TagCounts {
        let resolved = self.resolve_filters(filters);
        let mut tagged = 0u64;
        let mut tags: HashMap<u32, u64> = HashMap::new();
        let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
        let mut list: Vec<u32> = Vec::new();
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            list.clear();
            list.extend(f.tags().iter().copied().filter(|&t| t != NONE));
            list.sort_unstable();
            list.dedup();
            if list.is_empty() {
                continue;
            }
            tagged += 1;
            for &a in &list {
                *tags.entry(a).or_default() += 1;
                for &b in &list {
                    if a != b {
                        *pairs.entry((a, b)).or_default() += 1;
                    }
                }
            }
        }
        let name = |i: u32| self.names.name(i).to_string();
        TagCounts {
            tagged,
            tags: tags.into_iter().map(|(t, n)| (name(t), n)).collect(),
            pairs: pairs.into_iter().map(|((a, b), n)| ((name(a), name(b)), n)).collect(),
        }
    }

    /// The combinations of values of `dims` (`None` for NULL or empty)
    /// that occur among the conversations started in `[from, to)` that
    /// pass `filters`, in one pass: ordered by the first dimension's value,
    /// then the second's, and so on, values by name and `None` last (so
    /// teams × agents lists each team's agents, not every pair). `None`
    /// when there are more than `limit`.
    pub fn occurring_groups(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        dims: &[Dimension],
        limit: usize,
    ) -> Option<Vec<Vec<Option<String>>>> {
        let resolved = self.resolve_filters(filters);
        let mut seen: std::collections::HashSet<Vec<u32>> = std::collections::HashSet::new();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            let mut over = false;
            combinations.each(f, |key| {
                if !seen.contains(key) {
                    seen.insert(key.to_vec());
                    over |= seen.len() > limit;
                }
            });
            if over {
                return None;
            }
        }
        let mut groups: Vec<Vec<Option<String>>> = seen.iter().map(|key| self.group_names(key)).collect();
        groups.sort_by(|a, b| group_order(a, b));
        Some(groups)
    }

    /// Every row of `sql/kpis/overview.sql` for conversations started in
    /// `[from, to)` that pass `filters`; the time-based keys (repurchase,
    /// labour, costs, per online hour) only with `time_based`.
    pub fn overview(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        time_based: bool,
        rates: &[HourlyRate],
        now_us: i64,
    ) -> Vec<OverviewRow> {
        let mut s = self.summarize(from_us, to_us, filters);
        self.rows_of(&mut s, from_us, to_us, time_based, rates, now_us)
    }

    /// [`Self::overview_groups`] of every group of `dims` that occurs
    /// ([`Self::occurring_groups`]) in each of `windows` (contiguous, in
    /// order: a window's buckets), all in one pass over the facts of their
    /// span: `(group, rows per window)` in the order of
    /// [`Self::occurring_groups`] over the span; a group has rows for every
    /// window, those without conversations too. `None` when more than
    /// `limit` groups occur.
    pub fn overview_occurring(
        &self,
        windows: &[(i64, i64)],
        filters: &[FactFilter],
        dims: &[Dimension],
        limit: usize,
        now_us: i64,
    ) -> Option<Vec<(Vec<Option<String>>, Vec<Vec<OverviewRow>>)>> {
        let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
            return Some(Vec::new());
        };
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        let mut index: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut sums: Vec<Vec<Summary<SketchAcc>>> = Vec::new();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(first.0, last.1).filter(|f| f.matches(&resolved)) {
            let at = f.started().unwrap_or(first.0);
            // the window the fact started in (the last one starting at or before it)
            let w = windows.partition_point(|(from, _)| *from <= at).saturating_sub(1);
            let mut over = false;
            combinations.each(f, |key| {
                let g = match index.get(key) {
                    Some(&g) => g,
                    None => {
                        index.insert(key.to_vec(), sums.len());
                        sums.push(windows.iter().map(|_| Summary::default()).collect());
                        over |= sums.len() > limit;
                        sums.len() - 1
                    }
                };
                sums[g][w].add_fact(f, target);
            });
            if over {
                return None;
            }
        }
        let mut groups: Vec<(Vec<Option<String>>, Vec<Summary<SketchAcc>>)> = index
            .into_iter()
            .map(|(key, g)| (self.group_names(&key), std::mem::take(&mut sums[g])))
            .collect();
        groups.sort_by(|a, b| group_order(&a.0, &b.0));
        Some(
            groups
                .into_iter()
                .map(|(key, mut sums)| {
                    let rows = sums
                        .iter_mut()
                        .zip(windows)
                        .map(|(s, (from, to))| self.rows_of(s, *from, *to, false, &[], now_us))
                        .collect();
                    (key, rows)
                })
                .collect(),
        )
    }

    /// A group's values by name (`None` for NULL or empty).
    pub(super) fn group_names(&self, key: &[u32]) -> Vec<Option<String>> {
        key.iter()
            .map(|&v| (v != NONE).then(|| self.names.name(v).to_string()))
            .collect()
    }

    /// [`Self::overview`] (without the time-based keys) of each group of
    /// `dims` in `groups` (a value per dimension, `None` for NULL or
    /// empty), among the conversations that pass `filters`: one pass over
    /// the window's facts instead of one per group. The numbers are those
    /// of `overview` with `filters` and the group's values as filters, so
    /// long as those filters do not let it use the hourly cells (a
    /// dimension other than the channel among `dims`).
    pub fn overview_groups(
        &self,
        from_us: i64,
        to_us: i64,
        filters: &[FactFilter],
        dims: &[Dimension],
        groups: &[Vec<Option<String>>],
        now_us: i64,
    ) -> Vec<Vec<OverviewRow>> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let resolved = self.resolve_filters(filters);
        // A value no fact has was never interned: its group stays empty.
        let index: HashMap<Vec<u32>, usize> = groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let key: Option<Vec<u32>> = g
                    .iter()
                    .map(|v| v.as_deref().map_or(Some(NONE), |v| self.names.get(v)))
                    .collect();
                Some((key?, i))
            })
            .collect();
        let mut sums: Vec<Summary<SketchAcc>> = groups.iter().map(|_| Summary::default()).collect();
        let mut combinations = Combinations::new(dims);
        for f in self.facts_in(from_us, to_us).filter(|f| f.matches(&resolved)) {
            combinations.each(f, |key| {
                if let Some(&g) = index.get(key) {
                    sums[g].add_fact(f, target);
                }
            });
        }
        sums.iter_mut()
            .map(|s| self.rows_of(s, from_us, to_us, false, &[], now_us))
            .collect()
    }

    /// The rows of [`Self::overview`] from a summary of its conversations.
    pub(super) fn rows_of(
        &self,
        s: &mut Summary<SketchAcc>,
        from_us: i64,
        to_us: i64,
        time_based: bool,
        rates: &[HourlyRate],
        now_us: i64,
    ) -> Vec<OverviewRow> {
        let target = self.config.map_or(120_000_000, |c| c.sla_target_us);
        let mut rows = Vec::new();
        let mut row = |kpi: &str, measure: &str, segment: &str, value: Option<f64>, n: u64| {
            rows.push(OverviewRow {
                kpi: kpi.to_string(),
                measure: measure.to_string(),
                segment: segment.to_string(),
                value: value.filter(|v| v.is_finite()),
                n: n as i64,
            });
        };
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let conversations = s.conversations;
        row(
            "conversations",
            "value",
            "all",
            Some(conversations as f64),
            conversations,
        );
        for (i, (kpi, segment)) in DURATION_KEYS.iter().enumerate() {
            let d = &mut s.durations[i];
            let n = s.duration_n[i];
            row(kpi, "mean", segment, d.mean(), n);
            row(kpi, "median", segment, d.quantile(0.5), n);
            row(kpi, "p90", segment, d.quantile(0.9), n);
        }
        let missed_by_now = s
            .unanswered_since
            .iter()
            .filter(|&&fcm| now_us > fcm.saturating_add(target))
            .count() as u64;
        let sla_n = s.sla_answered + missed_by_now;
        row("sla_attainment", "value", "all", ratio(s.sla_met, sla_n), sla_n);
        row(
            "csat",
            "mean",
            "all",
            (s.csat_n > 0).then(|| s.csat_sum as f64 / s.csat_n as f64),
            s.csat_n,
        );
        row("csat", "top2_share", "all", ratio(s.csat_top2, s.csat_n), s.csat_n);
        row(
            "csat",
            "response_rate",
            "all",
            ratio(s.csat_answered, s.csat_requested),
            s.csat_requested,
        );
        for (k, n) in s.csat_distribution.iter().enumerate() {
            row("csat", "share", &(k + 1).to_string(), ratio(*n, s.csat_n), *n);
        }
        row(
            "resolution_rate",
            "value",
            "all",
            ratio(s.resolved, conversations),
            conversations,
        );
        row(
            "reopen_rate",
            "value",
            "all",
            ratio(s.reopened, s.ever_resolved),
            s.ever_resolved,
        );
        row(
            "transfer_rate",
            "value",
            "all",
            ratio(s.transferred, s.bot_replied),
            s.bot_replied,
        );
        row(
            "automation_rate",
            "value",
            "all",
            ratio(s.bot_only, conversations),
            conversations,
        );
        row(
            "conversion_rate",
            "value",
            "all",
            ratio(s.converted, conversations),
            conversations,
        );
        for (cur, (net, orders, convs)) in &s.aov {
            let c = self.names.name(*cur);
            row("aov", "value", c, (*orders > 0).then(|| net / *orders as f64), *convs);
            row("aov", "orders", c, Some(*orders as f64), *convs);
            row("aov", "net_amount", c, Some(*net), *convs);
        }
        row(
            "conversations_per_agent",
            "value",
            "all",
            ratio(s.human_handled, s.agents.len()),
            s.human_handled,
        );
        row(
            "copilot_adoption",
            "value",
            "all",
            ratio(s.copilot_replies, s.agent_replies),
            s.human_handled,
        );
        if time_based {
            let (customers, repeat) = self.repurchase(from_us, to_us);
            row("repurchase_rate", "value", "all", ratio(repeat, customers), customers);
            let (hours, unrated, labor) = self.labor(from_us, to_us, rates, now_us);
            row(
                "conversations_per_agent",
                "per_online_hour",
                "all",
                (hours != 0.0).then(|| s.human_handled as f64 / hours),
                s.human_handled,
            );
            row("labor_cost", "online_hours", "all", Some(hours), conversations);
            row("labor_cost", "unrated_hours", "all", Some(unrated), conversations);
            let mut total: BTreeMap<String, f64> = BTreeMap::new();
            for (cur, cost) in &labor {
                row("labor_cost", "value", cur, Some(*cost), conversations);
                *total.entry(cur.clone()).or_default() += cost;
            }
            let lo = self.costs.partition_point(|c| c.0 < from_us);
            let hi = self.costs.partition_point(|c| c.0 < to_us);
            let mut other: BTreeMap<u32, f64> = BTreeMap::new();
            for &(_, cur, amount) in &self.costs[lo..hi.max(lo)] {
                *other.entry(cur).or_default() += amount;
            }
            for (cur, cost) in other {
                *total.entry(self.names.name(cur).to_string()).or_default() += cost;
            }
            for (cur, cost) in total {
                row(
                    "cost_per_conversation",
                    "value",
                    &cur,
                    (conversations > 0).then(|| cost / conversations as f64),
                    conversations,
                );
            }
        }
        rows
    }

    /// Customers with an order placed in `[from, to)`, and those with two or more.
    pub(super) fn repurchase(&self, from_us: i64, to_us: i64) -> (u64, u64) {
        let lo = self.orders.partition_point(|o| o.placed_us < from_us);
        let hi = self.orders.partition_point(|o| o.placed_us < to_us);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for o in &self.orders[lo..hi.max(lo)] {
            if o.customer != NONE {
                *counts.entry(o.customer).or_default() += 1;
            }
        }
        let repeat = counts.values().filter(|&&n| n >= 2).count() as u64;
        (counts.len() as u64, repeat)
    }

    /// Online hours in `[from, to)` (an open interval counts up to now),
    /// hours without a rate, and labour cost per currency.
    pub(super) fn labor(
        &self,
        from_us: i64,
        to_us: i64,
        rates: &[HourlyRate],
        now_us: i64,
    ) -> (f64, f64, BTreeMap<String, f64>) {
        let mut per_team: BTreeMap<u32, i64> = BTreeMap::new();
        let hi = self.online.partition_point(|s| s.start_us < to_us);
        for s in &self.online[..hi] {
            let end = s.end_us.unwrap_or(now_us).min(to_us);
            if end > from_us {
                *per_team.entry(s.team).or_default() += end - s.start_us.max(from_us);
            }
        }
        let default = rates.iter().find(|r| r.team.is_none());
        let (mut hours, mut unrated) = (0.0, 0.0);
        let mut cost: BTreeMap<String, f64> = BTreeMap::new();
        for (team, us) in per_team {
            let h = us as f64 / 3_600_000_000.0;
            hours += h;
            let team_name = (team != NONE).then(|| self.names.name(team));
            let rate = team_name
                .and_then(|t| rates.iter().find(|r| r.team.as_deref() == Some(t)))
                .or(default);
            match rate {
                Some(r) => *cost.entry(r.currency.clone()).or_default() += h * r.rate,
                None => unrated += h,
            }
        }
        (hours, unrated, cost)
    }
}
