//! Building and refreshing a rollup from the lake: the slices of a first
//! build, and the conversations, messages, orders, agent sessions and
//! costs read since `lo`, into facts, kept rows and hourly cells. Query
//! results are read by column name.

use super::*;

/// The columns of `events` a refresh reads of changed events.
const CHANGE_COLUMNS: &str = "tenant_id, conversation_id, type, occurred_at, order_id, agent_id, customer_id";

/// The agent online intervals a read keeps.
const SESSIONS_SQL: &str = "SELECT agent_id, team, started_at, ended_at FROM agent_sessions";

/// Settings of a rollup that has none yet.
pub(super) const DEFAULT_CONFIG: TenantConfig = TenantConfig {
    sla_target_us: 120_000_000,
    attribution_window_days: 7,
};

/// A touched conversation whose first event came more than this before
/// the earliest changed event is refolded by itself (its events read by
/// id) rather than moving the recomputation back to it.
const RECENT_US: i64 = 3_600_000_000;

/// More conversations than this to refold by id move the recomputation
/// back instead (a bulk load of history, not live traffic).
const REFOLD_MAX: usize = 128;

/// The kept tables' rows from an instant on (and those of the
/// conversations refolded by id) dropped, worked out ahead.
#[derive(Debug)]
struct Cuts {
    rows: super::kept::Cut,
    script_uses: super::kept::Cut,
    exposure_events: super::kept::Cut,
}

/// What [`TenantRollup::load`] reads from the lake.
pub(super) struct Loaded {
    exposure_schema: SchemaRef,
    exposures: Vec<RecordBatch>,
    rows: Vec<RecordBatch>,
    /// The columns facts are read from, of `rows`.
    conversations: Vec<RecordBatch>,
    messages: Vec<(String, String, MessageFacts)>,
    orders: Vec<FoldedOrder>,
    online: Vec<RecordBatch>,
    costs: Vec<RecordBatch>,
}

/// What changed events require of a refresh ([`TenantRollup::read_changes`]).
struct Changes {
    /// Recompute from this instant on at least.
    lo: i64,
    /// Orders without a conversation: (interned customer, placed µs).
    unlinked_orders: Vec<(u32, i64)>,
    /// Conversation starts: (interned customer, started µs).
    starts: Vec<(u32, i64)>,
    /// Agents whose status changed: interned agent → earliest change.
    statuses: HashMap<u32, i64>,
    /// Known conversations with changed events (slots of `facts`).
    touched: BTreeSet<usize>,
    /// Known conversations credited with a refunded order.
    refunded: BTreeSet<usize>,
}

impl Changes {
    fn starting_at(lo: i64) -> Self {
        Self {
            lo,
            unlinked_orders: Vec::new(),
            starts: Vec::new(),
            statuses: HashMap::new(),
            touched: BTreeSet::new(),
            refunded: BTreeSet::new(),
        }
    }
}

/// What changes require ([`TenantRollup::changed_from`]).
struct Target {
    /// Everything from this instant on is recomputed.
    lo: i64,
    /// Agent online intervals from this instant on (at most `lo`).
    online_lo: i64,
    /// Conversations that began before `lo`, refolded by id.
    refold: Vec<usize>,
}

/// Older conversations a refresh refolds by id: the events read are
/// theirs and what credits orders to them (their customers' conversation
/// starts and orders, and refunds), since the first of their first events.
#[derive(Debug)]
struct Refold {
    since: i64,
    ids: Arc<super::kept::Ids>,
    customers: Vec<String>,
}

/// What a refresh will do, decided from the rollup and a read view
/// ([`TenantRollup::plan_refresh`]); made under a shared borrow, so that
/// readers go on while it is made and while its events are read
/// ([`TenantRollup::read_planned`]); only [`TenantRollup::apply_planned`]
/// needs the rollup alone.
#[derive(Debug)]
pub struct RefreshPlan {
    what: Planned,
    refold: Option<Refold>,
    /// The kept rows from the start instant dropped, worked out ahead.
    cuts: Option<Cuts>,
    config: TenantConfig,
    mark: LakeMark,
    through_seq: u64,
    rewrites: u64,
    events_version: Option<u64>,
    /// The state the plan was made from (see `TenantRollup::generation`).
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Planned {
    /// Everything anew (first use, or another attribution window).
    Full,
    /// Nothing to recompute; `mark`: the lake's files changed.
    Nothing { mark: bool },
    /// Everything from `lo` on, agent online intervals from `online_lo`.
    From { lo: i64, online_lo: i64 },
}

impl RefreshPlan {
    /// Whether it is a full build (which [`TenantRollup::refresh`] runs).
    pub fn is_full(&self) -> bool {
        self.what == Planned::Full
    }
}

/// What a refresh read from the lake ([`TenantRollup::read_planned`]):
/// everything from the start instant, and the conversations refolded by id.
pub struct PlannedRows(Option<Loaded>, Option<Loaded>);

impl std::fmt::Debug for PlannedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = |l: &Option<Loaded>| l.as_ref().map(|l| l.rows.iter().map(|b| b.num_rows()).sum::<usize>());
        f.debug_struct("PlannedRows")
            .field("conversations", &rows(&self.0))
            .field("refolded", &rows(&self.1))
            .finish()
    }
}

/// A process-wide counter of rollup states.
pub(super) fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl TenantRollup {
    /// Brings the rollup up to date with `view` (see the module docs).
    /// `source` gives sessions over the tenant's events only.
    pub async fn refresh(
        &mut self,
        view: &ReadView,
        tenant: &str,
        config: TenantConfig,
        source: &impl SessionSource,
    ) -> Result<RefreshStats> {
        let plan = self.plan_refresh(view, tenant, config, source).await?;
        if plan.is_full() {
            let stats = self.build_full(plan.mark.clone(), config, source).await?;
            self.planned(&plan);
            return Ok(stats);
        }
        let rows = Self::read_planned(&plan, source).await?;
        Ok(self.apply_planned(plan, rows).await?.unwrap_or_default())
    }

    /// Decides what bringing the rollup up to date with `view` takes.
    pub async fn plan_refresh(
        &self,
        view: &ReadView,
        tenant: &str,
        config: TenantConfig,
        source: &impl SessionSource,
    ) -> Result<RefreshPlan> {
        let mark = lake_mark(view, tenant);
        let (what, refold) = self.plan(view, &mark, tenant, config, source).await?;
        let refold = self.refold_of(&refold);
        // Re-encoding the kept files that straddle the start instant is
        // the slow part of dropping rows: done here, where readers go on.
        let cuts = match what {
            Planned::From { lo, .. } => Some(self.cuts(lo, refold.as_ref())?),
            _ => None,
        };
        Ok(RefreshPlan {
            what,
            refold,
            cuts,
            config,
            mark,
            through_seq: view.through_seq,
            rewrites: view.recent.rewrites,
            events_version: view.table.as_ref().and_then(|t| t.version()),
            generation: self.generation,
        })
    }

    async fn plan(
        &self,
        view: &ReadView,
        mark: &LakeMark,
        tenant: &str,
        config: TenantConfig,
        source: &impl SessionSource,
    ) -> Result<(Planned, Vec<usize>)> {
        if self
            .config
            .is_none_or(|c| c.attribution_window_days != config.attribution_window_days)
        {
            return Ok((Planned::Full, Vec::new()));
        }
        // Flushes and compactions move events into other files without
        // changing them; only an erasure does. Unless one happened, what
        // changed since the last refresh is exactly the batches
        // acknowledged since, when they are still held apart.
        let since_seq = match (self.as_of_seq, self.rewrites) {
            (Some(seq), Some(r)) if r == view.recent.rewrites => view.batches_after(seq),
            _ => None,
        };
        if let Some(batches) = since_seq {
            let mut changes = Changes::starting_at(i64::MAX);
            for b in batches {
                self.read_changes(b, Some(tenant), &mut changes)?;
            }
            return Ok(match self.changed_from(&changes, config, true) {
                Some(t) => (
                    Planned::From {
                        lo: t.lo,
                        online_lo: t.online_lo,
                    },
                    t.refold,
                ),
                None => (
                    Planned::Nothing {
                        mark: *mark != self.mark,
                    },
                    Vec::new(),
                ),
            });
        }
        if *mark == self.mark {
            return Ok((Planned::Nothing { mark: false }, Vec::new()));
        }
        let mut days: BTreeSet<i32> = BTreeSet::new();
        for (path, date) in &mark.files {
            if !self.mark.files.contains_key(path) {
                days.extend(partition_day(date));
            }
        }
        for (path, date) in &self.mark.files {
            if !mark.files.contains_key(path) {
                days.extend(partition_day(date));
            }
        }
        if mark.buffer != self.mark.buffer {
            days.extend(mark.buffer_days.iter().copied());
            days.extend(self.mark.buffer_days.iter().copied());
        }
        let Some(&first_day) = days.first() else {
            return Ok((Planned::Nothing { mark: true }, Vec::new()));
        };
        // Every event of the touched days counts as changed (files were
        // removed too, so which events are new is not known).
        let ctx = source.session(EventRange::default()).await?;
        let placeholders: Vec<String> = (1..=days.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM events WHERE event_date IN ({})",
            placeholders.join(", ")
        );
        let day_params: Vec<ScalarValue> = days.iter().map(|d| ScalarValue::Date32(Some(*d))).collect();
        let mut stream = ctx
            .sql(&sql)
            .await?
            .with_param_values(day_params)?
            .execute_stream()
            .await?;
        let mut changes = Changes::starting_at(i64::from(first_day) * DAY_US);
        while let Some(batch) = stream.next().await {
            self.read_changes(&batch?, None, &mut changes)?;
        }
        let mut lo = self.changed_from(&changes, config, false).map_or(changes.lo, |t| t.lo);
        // Conversations with events in a touched day whose events are gone
        // (erased, or rewritten by compaction) are recomputed whole too.
        let touched: Vec<(i64, i64)> = days
            .iter()
            .map(|d| (i64::from(*d) * DAY_US, (i64::from(*d) + 1) * DAY_US))
            .collect();
        for f in self.facts.iter().flatten() {
            if f.first_event_us < lo
                && touched
                    .iter()
                    .any(|(start, end)| f.first_event_us < *end && f.last_event_us >= *start)
            {
                lo = f.first_event_us;
            }
        }
        Ok((Planned::From { lo, online_lo: lo }, Vec::new()))
    }

    /// What refolding the conversations in slots `refold` reads and drops.
    fn refold_of(&self, refold: &[usize]) -> Option<Refold> {
        let facts: Vec<&Fact> = refold.iter().filter_map(|&i| self.facts[i].as_ref()).collect();
        let since = facts.iter().map(|f| f.first_event_us).min()?;
        let customers: BTreeSet<&str> = facts
            .iter()
            .filter(|f| f.customer != NONE)
            .map(|f| self.customers.name(f.customer))
            .collect();
        Some(Refold {
            since,
            ids: Arc::new(super::kept::Ids {
                column: "conversation_id",
                ids: facts.iter().map(|f| f.id.clone()).collect(),
                keys: facts.iter().map(|f| f.first_event_us).collect(),
            }),
            customers: customers.into_iter().map(str::to_string).collect(),
        })
    }

    /// Reads from the lake what `plan` recomputes (nothing of the rollup
    /// is needed: no lock is held meanwhile).
    pub async fn read_planned(plan: &RefreshPlan, source: &impl SessionSource) -> Result<PlannedRows> {
        let Planned::From { lo, online_lo } = plan.what else {
            return Ok(PlannedRows(None, None));
        };
        let since = |us: i64| EventRange {
            since_us: Some(us),
            ..EventRange::default()
        };
        let ctx = source.session(since(lo)).await?;
        // Agent intervals from the start of those the new statuses end.
        let online = match online_lo < lo {
            true => Some(source.session(since(online_lo)).await?),
            false => None,
        };
        let loaded = Self::read(&ctx, plan.config, lo, None, online.as_ref()).await?;
        let refolded = match &plan.refold {
            Some(r) => {
                let started = std::time::Instant::now();
                let ctx = source.session(since(r.since)).await?;
                let loaded = Self::read_refold(&ctx, plan.config, r).await?;
                tracing::debug!(
                    conversations = r.ids.ids.len(),
                    since_us = r.since,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "rollup refold read"
                );
                Some(loaded)
            }
            None => None,
        };
        Ok(PlannedRows(Some(loaded), refolded))
    }

    /// The events of the conversations `refold` names and those that
    /// credit orders to them, folded.
    async fn read_refold(ctx: &SessionContext, config: TenantConfig, refold: &Refold) -> Result<Loaded> {
        let mut params: Vec<ScalarValue> = Vec::new();
        let mut list = |values: &mut dyn Iterator<Item = &str>| {
            let names: Vec<String> = values
                .map(|v| {
                    params.push(ScalarValue::from(v));
                    format!("${}", params.len())
                })
                .collect();
            if names.is_empty() {
                "NULL".to_string()
            } else {
                names.join(", ")
            }
        };
        let ids = list(&mut refold.ids.ids.iter().map(|s| s.as_ref()));
        let customers = list(&mut refold.customers.iter().map(String::as_str));
        let [start, placed] = CREDIT_TYPES;
        let filter = format!(
            "conversation_id IN ({ids}) OR (customer_id IN ({customers}) AND type IN ('{start}', '{placed}')) \
             OR type = 'order.refunded'"
        );
        let (rows, messages, orders) = Self::fold(ctx, config, i64::MIN, None, Some((filter, params))).await?;
        let conversations = Self::fact_columns(&rows, i64::MIN).await?;
        Ok(Loaded {
            exposure_schema: Arc::new(Schema::empty()),
            exposures: Vec::new(),
            rows,
            conversations,
            messages,
            orders,
            online: Vec::new(),
            costs: Vec::new(),
        })
    }

    /// Applies a plan and what was read for it; `None` (nothing done)
    /// when the rollup is no longer in the state the plan was made from.
    pub async fn apply_planned(&mut self, mut plan: RefreshPlan, rows: PlannedRows) -> Result<Option<RefreshStats>> {
        if plan.generation != self.generation || plan.is_full() {
            return Ok(None);
        }
        if self
            .config
            .is_some_and(|c| c.sla_target_us != plan.config.sla_target_us)
        {
            self.config = Some(plan.config);
            self.rebuild_cells(i64::MIN);
            self.unsaved_from(i64::MAX);
        }
        let stats = match (plan.what, rows.0) {
            (Planned::From { lo, online_lo }, Some(loaded)) => {
                let n = self.take(loaded, lo, None, plan.cuts.take(), online_lo).await?;
                let refolded = match (&plan.refold, rows.1) {
                    (Some(r), Some(loaded)) => self.take_refold(loaded, r).await?,
                    _ => 0,
                };
                self.rebuild_cells(lo);
                RefreshStats {
                    full: false,
                    conversations: n,
                    refolded,
                    since_us: Some(lo),
                    slices: 0,
                }
            }
            (Planned::Nothing { mark }, _) => {
                if mark {
                    self.unsaved_from(i64::MAX);
                }
                RefreshStats::default()
            }
            _ => return Err(DataFusionError::Internal("a refresh plan without its rows".into())),
        };
        self.mark = plan.mark.clone();
        self.planned(&plan);
        Ok(Some(stats))
    }

    /// Records what the rollup now reflects.
    fn planned(&mut self, plan: &RefreshPlan) {
        self.as_of_seq = Some(plan.through_seq);
        self.rewrites = Some(plan.rewrites);
        self.events_version = plan.events_version;
        self.generation = next_generation();
    }

    /// Builds everything anew, in slices.
    async fn build_full(
        &mut self,
        mark: LakeMark,
        config: TenantConfig,
        source: &impl SessionSource,
    ) -> Result<RefreshStats> {
        *self = TenantRollup {
            exact_below: self.exact_below,
            slice_conversations: self.slice_conversations,
            ..TenantRollup::default()
        };
        self.config = Some(config);
        let started = std::time::Instant::now();
        let slices = self.slices(source).await?;
        tracing::debug!(
            slices = slices.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rollup slices planned"
        );
        for (i, range) in slices.iter().enumerate() {
            let ctx = source.session(*range).await?;
            // What starts at the next slice's start is that slice's.
            let hi = slices.get(i + 1).and_then(|r| r.since_us);
            self.load(&ctx, range.since_us.unwrap_or(i64::MIN), hi).await?;
        }
        let n = self.by_id.len();
        self.rebuild_cells(i64::MIN);
        self.mark = mark;
        Ok(RefreshStats {
            full: true,
            conversations: n,
            refolded: 0,
            since_us: None,
            slices: slices.len(),
        })
    }

    /// Reads changed events (the columns of [`CHANGE_COLUMNS`], of
    /// `tenant` only when given) into `changes`: the earliest instant each
    /// moves a recomputation back to, and the customers whose orders and
    /// conversation starts need the facts' index to say more.
    fn read_changes(&self, b: &RecordBatch, tenant: Option<&str>, changes: &mut Changes) -> Result<()> {
        let (conv, typ, order, agent, customer) = (
            strings(b, "conversation_id")?,
            strings(b, "type")?,
            strings(b, "order_id")?,
            strings(b, "agent_id")?,
            strings(b, "customer_id")?,
        );
        let at = int64s(b, "occurred_at")?;
        let tenants = strings(b, "tenant_id")?;
        let (conv, typ, order, agent, customer, tenants) = (
            conv.as_string::<i32>(),
            typ.as_string::<i32>(),
            order.as_string::<i32>(),
            agent.as_string::<i32>(),
            customer.as_string::<i32>(),
            tenants.as_string::<i32>(),
        );
        let at = at.as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            if tenant.is_some_and(|t| tenants.value(r) != t) || at.is_null(r) {
                continue;
            }
            let t = at.value(r);
            changes.lo = changes.lo.min(t);
            if conv.is_valid(r) {
                if let Some(&i) = self.by_id.get(conv.value(r)) {
                    changes.touched.insert(i);
                }
            }
            let known_customer = || {
                customer
                    .is_valid(r)
                    .then(|| self.customers.get(customer.value(r)))
                    .flatten()
            };
            match typ.value(r) {
                // Credited to the customer's latest conversation started
                // within the window before it.
                "order.placed" if conv.is_null(r) => {
                    if let Some(c) = known_customer() {
                        changes.unlinked_orders.push((c, t));
                    }
                }
                // May take the credit of the customer's later orders.
                "conversation.started" => {
                    if let Some(c) = known_customer() {
                        changes.starts.push((c, t));
                    }
                }
                "order.refunded" if order.is_valid(r) => {
                    if let Some(&i) = self
                        .order_index
                        .get(order.value(r))
                        .and_then(|&o| self.orders[o].attributed.as_ref())
                        .and_then(|c| self.by_id.get(c))
                    {
                        changes.refunded.insert(i);
                    }
                }
                "agent.status_changed" if agent.is_valid(r) => {
                    if let Some(id) = self.names.get(agent.value(r)) {
                        let e = changes.statuses.entry(id).or_insert(t);
                        *e = (*e).min(t);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What a recomputation of `changes` takes; `None` when nothing
    /// changed. Everything from the earliest changed event on is
    /// recomputed, moved back to the first event of the conversations it
    /// touches. With `by_id`, conversations that began more than
    /// [`RECENT_US`] before it, and those credited anew (by an order
    /// without a conversation, or a refund) or losing credit (to a new
    /// start of their customer), are refolded by id instead; without it,
    /// they move the start back too, agent intervals as well.
    fn changed_from(&self, changes: &Changes, config: TenantConfig, by_id: bool) -> Option<Target> {
        let aw_us = i64::from(config.attribution_window_days) * DAY_US;
        let t0 = changes.lo;
        if t0 == i64::MAX {
            return None;
        }
        let mut lo = t0;
        // Slots of conversations whose facts credit changes.
        let mut credit: BTreeSet<usize> = changes.refunded.clone();
        for &i in &changes.touched {
            let Some(f) = self.facts[i].as_ref() else { continue };
            if by_id && f.first_event_us < t0.saturating_sub(RECENT_US) {
                credit.insert(i);
            } else {
                lo = lo.min(f.first_event_us);
            }
        }
        if let (Some(from), Some(to)) = (
            changes.unlinked_orders.iter().map(|(_, t)| *t).min(),
            changes.unlinked_orders.iter().map(|(_, t)| *t).max(),
        ) {
            // The customers' conversations started within a window before
            // any of the orders, by customer.
            let wanted: HashMap<u32, ()> = changes.unlinked_orders.iter().map(|(c, _)| (*c, ())).collect();
            let mut starts: HashMap<u32, Vec<(i64, usize)>> = HashMap::new();
            for &(s, i) in self.by_start.range((from.saturating_sub(aw_us), 0)..(to, 0)) {
                if let Some(f) = self.facts[i].as_ref().filter(|f| wanted.contains_key(&f.customer)) {
                    starts.entry(f.customer).or_default().push((s, i));
                }
            }
            let id = |i: usize| self.facts[i].as_ref().map(|f| f.id.clone());
            for (c, t) in &changes.unlinked_orders {
                let credited = starts
                    .get(c)
                    .into_iter()
                    .flatten()
                    .filter(|(s, _)| *s < *t && *s >= t - aw_us)
                    .max_by(|a, b| (a.0, id(a.1)).cmp(&(b.0, id(b.1))));
                if let Some(&(_, i)) = credited {
                    credit.insert(i);
                }
            }
        }
        if let Some(from) = changes.starts.iter().map(|(_, s)| *s).min() {
            let mut first: HashMap<u32, (i64, i64)> = HashMap::new();
            for (c, s) in &changes.starts {
                let e = first.entry(*c).or_insert((*s, *s));
                *e = (e.0.min(*s), e.1.max(*s));
            }
            let to = changes
                .starts
                .iter()
                .map(|(_, s)| *s)
                .max()
                .unwrap_or(from)
                .saturating_add(aw_us);
            let begin = self.orders.partition_point(|o| o.placed_us <= from);
            for o in self.orders[begin..].iter().take_while(|o| o.placed_us <= to) {
                let Some(&(min_s, max_s)) = first.get(&o.customer) else {
                    continue;
                };
                if o.placed_us <= min_s || o.placed_us > max_s.saturating_add(aw_us) {
                    continue;
                }
                if let Some(&i) = o.attributed.as_ref().and_then(|c| self.by_id.get(c)) {
                    credit.insert(i);
                }
            }
        }
        // A status change ends or splits the agent's interval it falls in.
        let mut online_lo = lo;
        if !changes.statuses.is_empty() {
            for s in &self.online {
                if let Some(&t) = changes.statuses.get(&s.agent) {
                    if s.end_us.is_none_or(|end| end >= t) {
                        online_lo = online_lo.min(s.start_us);
                    }
                }
            }
        }
        let first = |i: &usize| self.facts[*i].as_ref().map(|f| f.first_event_us);
        if !by_id || credit.len() > REFOLD_MAX {
            lo = credit.iter().filter_map(first).fold(lo.min(online_lo), i64::min);
            online_lo = lo;
        }
        // Those that began from `lo` on are recomputed with everything else.
        let refold = credit
            .into_iter()
            .filter(|i| first(i).is_some_and(|f| f < lo))
            .collect();
        Some(Target { lo, online_lo, refold })
    }

    /// The ranges a full build reads, in order: each holds the whole of
    /// the conversations whose first event falls in it (up to about
    /// [`SLICE_CONVERSATIONS`] of them), its events end after the last of
    /// those conversations' events, and the order, start and agent events
    /// run on to the end ([`LONG_HORIZON_TYPES`]) so that orders placed
    /// later are credited as a whole build would. Conversations that start
    /// before a slice's end and are seen only in part are loaded again,
    /// whole, by the next slice ([`Self::load`] replaces everything from
    /// its `lo` on).
    pub(super) async fn slices(&self, source: &impl SessionSource) -> Result<Vec<EventRange>> {
        let budget = self.slice_conversations.unwrap_or(SLICE_CONVERSATIONS);
        let ctx = source.session(EventRange::default()).await?;
        let sql = "SELECT arrow_cast(min(occurred_at), 'Int64') AS f, arrow_cast(max(occurred_at), 'Int64') AS l \
                   FROM events WHERE conversation_id IS NOT NULL GROUP BY conversation_id";
        // first-event day → (conversations, latest event of any of them)
        let mut days: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
        let mut stream = ctx.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let b = batch?;
            let (f, l) = (int64s(&b, "f")?, int64s(&b, "l")?);
            let (f, l) = (f.as_primitive::<Int64Type>(), l.as_primitive::<Int64Type>());
            for r in 0..b.num_rows() {
                if f.is_valid(r) && l.is_valid(r) {
                    let e = days.entry(f.value(r).div_euclid(DAY_US)).or_insert((0, i64::MIN));
                    e.0 += 1;
                    e.1 = e.1.max(l.value(r));
                }
            }
        }
        // An order placed before `hi + window` may credit a conversation
        // of the slice (one that started before `hi`); later ones cannot.
        let window_us = i64::from(self.config.unwrap_or(DEFAULT_CONFIG).attribution_window_days) * DAY_US;
        let mut ranges = Vec::new();
        let (mut since, mut count, mut last) = (None, 0u64, i64::MIN);
        for (day, (n, day_last)) in days {
            if count > 0 && count + n > budget {
                let hi = day * DAY_US;
                let until = hi.max(last.saturating_add(1));
                ranges.push(EventRange {
                    since_us: since,
                    until_us: Some(until),
                    credit_until_us: Some(until.max(hi.saturating_add(window_us).saturating_add(DAY_US))),
                });
                (since, count, last) = (Some(hi), 0, i64::MIN);
            }
            count += n;
            last = last.max(day_last);
        }
        ranges.push(EventRange {
            since_us: since,
            until_us: None,
            credit_until_us: None,
        });
        Ok(ranges)
    }

    /// Replaces everything from `lo` on with what `ctx` computes (its
    /// events start at `lo`); returns the conversations loaded. With `hi`
    /// (a slice of a full build), conversations whose first event is at or
    /// after `hi` and exposure events from `hi` on are not kept: the next
    /// slice, which starts there, loads them whole (a slice also sees the
    /// starts of an attribution window past its end, for the credit of
    /// orders; keeping their partial conversations only to drop them
    /// again cost memory and time).
    pub(super) async fn load(&mut self, ctx: &SessionContext, lo: i64, hi: Option<i64>) -> Result<usize> {
        let config = self.config.unwrap_or(DEFAULT_CONFIG);
        let loaded = Self::read(ctx, config, lo, hi, None).await?;
        self.take(loaded, lo, hi, None, lo).await
    }

    /// The lake's part of [`Self::load`]: every query, nothing of the
    /// rollup but its settings.
    /// Agent intervals are read from `online` when given (a session that
    /// starts earlier), else from `ctx`.
    async fn read(
        ctx: &SessionContext,
        config: TenantConfig,
        lo: i64,
        hi: Option<i64>,
        online: Option<&SessionContext>,
    ) -> Result<Loaded> {
        // Where a read's time goes, for `CXLAKE_LOG=warehouse=debug`.
        let mut phases: Vec<(&str, u128)> = Vec::new();
        let mut clock = std::time::Instant::now();
        let mut lap = |name: &'static str, phases: &mut Vec<(&str, u128)>| {
            phases.push((name, clock.elapsed().as_millis()));
            clock = std::time::Instant::now();
        };
        let df = ctx
            .sql(&format!(
                "SELECT * FROM exposure_events WHERE {}",
                in_bounds("occurred_at", hi)
            ))
            .await?
            .with_param_values(bound_params(lo, hi))?;
        let exposure_schema = nullable_schema(df.schema().as_arrow());
        let exposures = df.collect().await?;
        lap("exposures", &mut phases);
        // The conversations are folded from their events once (the view's
        // rows, `crate::fold`); their rows are kept and the facts read from
        // them.
        let (rows, messages, orders) = Self::fold(ctx, config, lo, hi, None).await?;
        lap("fold", &mut phases);
        let conversations = Self::fact_columns(&rows, lo).await?;
        lap("facts", &mut phases);
        let online = online.unwrap_or(ctx).sql(SESSIONS_SQL).await?.collect().await?;
        lap("agent sessions", &mut phases);
        let costs_sql = "SELECT occurred_at, currency, CAST(amount AS DOUBLE) AS amount \
                         FROM events WHERE type = 'cost.incurred'";
        let costs = ctx.sql(costs_sql).await?.collect().await?;
        lap("costs", &mut phases);
        tracing::debug!(lo, hi = ?hi, phases_ms = ?phases, "rollup read");
        Ok(Loaded {
            exposure_schema,
            exposures,
            rows,
            conversations,
            messages,
            orders,
            online,
            costs,
        })
    }

    /// The rollup's part of [`Self::load`]: replaces everything from `lo`
    /// on (agent online intervals from `online_lo`) with what was read.
    async fn take(
        &mut self,
        loaded: Loaded,
        lo: i64,
        hi: Option<i64>,
        cuts: Option<Cuts>,
        online_lo: i64,
    ) -> Result<usize> {
        let Loaded {
            exposure_schema,
            exposures,
            rows: new_rows,
            conversations,
            messages,
            mut orders,
            online,
            costs,
        } = loaded;
        // Where the time under the rollup's lock goes.
        let mut phases: Vec<(&str, u128)> = Vec::new();
        let mut clock = std::time::Instant::now();
        let mut lap = |name: &'static str, phases: &mut Vec<(&str, u128)>| {
            phases.push((name, clock.elapsed().as_millis()));
            clock = std::time::Instant::now();
        };
        self.unsaved_from(lo);
        // facts with first_event >= lo go
        let gone: Vec<(i64, usize)> = self.by_first_event.range((lo, 0)..).copied().collect();
        for (_, i) in gone {
            if let Some(f) = self.facts[i].take() {
                self.by_id.remove(&f.id);
                self.by_first_event.remove(&(f.first_event_us, i));
                if let Some(s) = f.started() {
                    self.by_start.remove(&(s, i));
                }
                self.free.push(i);
            }
        }
        let cuts = match cuts {
            Some(c) => c,
            None => self.cuts(lo, None)?,
        };
        self.rows.apply_cut(cuts.rows).await?;
        self.script_uses.apply_cut(cuts.script_uses).await?;
        self.exposure_events.apply_cut(cuts.exposure_events).await?;
        self.exposure_events.set_schema(exposure_schema);
        self.exposure_events.push(&exposures).await?;
        lap("drop and exposures", &mut phases);
        let mut loaded: HashMap<Arc<str>, Fact> = HashMap::new();
        for b in &conversations {
            self.read_conversations(b, &mut loaded)?;
        }
        // A conversation that began before `lo` is seen only in part from
        // here; no new event touched it (else `lo` would be before its
        // first), so it keeps its fact.
        loaded.retain(|id, _| !self.by_id.contains_key(id));
        lap("facts", &mut phases);
        self.keep_rows(new_rows, &loaded).await?;
        self.keep_script_uses(&messages, &loaded).await?;
        lap("kept rows", &mut phases);
        // orders: placed since lo are recomputed; attributed ones feed facts
        let old_attribution: HashMap<Arc<str>, Arc<str>> = self
            .orders
            .iter()
            .filter(|o| o.placed_us >= lo)
            .filter_map(|o| o.attributed.clone().map(|a| (o.order_id.clone(), a)))
            .collect();
        let keep = self.orders.partition_point(|o| o.placed_us < lo);
        self.orders.truncate(keep);
        let mut conv_orders: HashMap<Arc<str>, Vec<(u32, f64, u32)>> = HashMap::new();
        let mut new_orders = Vec::new();
        orders.sort_by(|a, b| (a.placed_us, &a.order_id).cmp(&(b.placed_us, &b.order_id)));
        for o in orders {
            let Some(order_id) = o.order_id.as_deref().filter(|_| o.placed_us >= lo) else {
                continue;
            };
            let order_id: Arc<str> = Arc::from(order_id);
            let mut attributed: Option<Arc<str>> = o.attributed_conversation_id.as_deref().map(Arc::from);
            if let Some((k, _)) = attributed.as_ref().and_then(|a| loaded.get_key_value(a.as_ref())) {
                self.credit(&mut conv_orders, k.clone(), &o);
            } else if attributed.is_none() {
                // credited to a conversation older than `lo`: keep what was known
                attributed = old_attribution.get(&order_id).cloned();
            }
            new_orders.push(OrderRec {
                order_id,
                placed_us: o.placed_us,
                customer: o.customer_id.as_deref().map_or(NONE, |c| self.customers.intern(c)),
                attributed,
            });
        }
        new_orders.sort_by_key(|o| o.placed_us);
        self.orders.extend(new_orders);
        self.index_orders();

        lap("orders", &mut phases);
        let keep = self.online.partition_point(|s| s.start_us < online_lo);
        self.online.truncate(keep);
        let mut new_online = Vec::new();
        for b in &online {
            self.read_online(b, online_lo, &mut new_online)?;
        }
        new_online.sort_by_key(|s| s.start_us);
        self.online.extend(new_online);

        lap("agent sessions", &mut phases);
        let keep = self.costs.partition_point(|c| c.0 < lo);
        self.costs.truncate(keep);
        let mut new_costs = Vec::new();
        for b in &costs {
            self.read_costs(b, lo, &mut new_costs)?;
        }
        new_costs.sort_by_key(|c| c.0);
        self.costs.extend(new_costs);

        lap("costs", &mut phases);
        tracing::debug!(lo, hi = ?hi, conversations = loaded.len(), phases_ms = ?phases, "rollup load");
        let n = loaded.len();
        self.insert_loaded(loaded, &messages, conv_orders);
        Ok(n)
    }

    /// Replaces the facts and kept rows of the conversations `refold`
    /// names with those `loaded` folded (their kept rows were cut with
    /// the rest); returns how many were refolded.
    async fn take_refold(&mut self, loaded: Loaded, refold: &Refold) -> Result<usize> {
        let mut hours: BTreeSet<i64> = BTreeSet::new();
        for id in &refold.ids.ids {
            let Some(i) = self.by_id.remove(id) else { continue };
            if let Some(f) = self.facts[i].take() {
                self.by_first_event.remove(&(f.first_event_us, i));
                if let Some(s) = f.started() {
                    self.by_start.remove(&(s, i));
                    hours.insert(s.div_euclid(HOUR_US));
                }
                self.free.push(i);
            }
        }
        let mut facts: HashMap<Arc<str>, Fact> = HashMap::new();
        for b in &loaded.conversations {
            self.read_conversations(b, &mut facts)?;
        }
        facts.retain(|id, _| refold.ids.ids.contains(id));
        self.keep_rows(loaded.rows, &facts).await?;
        self.keep_script_uses(&loaded.messages, &facts).await?;
        let mut conv_orders: HashMap<Arc<str>, Vec<(u32, f64, u32)>> = HashMap::new();
        for o in &loaded.orders {
            let Some((k, _)) = o
                .attributed_conversation_id
                .as_deref()
                .and_then(|a| facts.get_key_value(a))
            else {
                continue;
            };
            let k = k.clone();
            // The orders this refold credits: their credit was not known
            // to the recomputation from the start instant.
            if let Some(&i) = o.order_id.as_deref().and_then(|id| self.order_index.get(id)) {
                self.orders[i].attributed = Some(k.clone());
            }
            self.credit(&mut conv_orders, k, o);
        }
        hours.extend(
            facts
                .values()
                .filter_map(|f| f.started())
                .map(|s| s.div_euclid(HOUR_US)),
        );
        let n = facts.len();
        self.insert_loaded(facts, &loaded.messages, conv_orders);
        self.rebuild_hours(&hours);
        self.unsaved_from(refold.since);
        Ok(n)
    }

    /// Adds order `o` to what `conv_orders` credits conversation `k` with,
    /// by currency: (currency, net amount, orders).
    fn credit(&mut self, conv_orders: &mut HashMap<Arc<str>, Vec<(u32, f64, u32)>>, k: Arc<str>, o: &FoldedOrder) {
        let currency = self.names.opt(o.currency.as_deref());
        let amount = o.net_amount.unwrap_or(f64::NAN);
        let list = conv_orders.entry(k).or_default();
        match list.iter_mut().find(|(c, _, _)| *c == currency) {
            Some(e) => {
                e.1 += amount;
                e.2 += 1;
            }
            None => list.push((currency, amount, 1)),
        }
    }

    /// Inserts the facts of `loaded` with their customer turns and
    /// replying agents (from `messages`) and credited orders.
    fn insert_loaded(
        &mut self,
        loaded: HashMap<Arc<str>, Fact>,
        messages: &[(String, String, MessageFacts)],
        mut conv_orders: HashMap<Arc<str>, Vec<(u32, f64, u32)>>,
    ) {
        let mut turns: HashMap<Arc<str>, Vec<(f64, u8)>> = HashMap::new();
        let mut agents: HashMap<Arc<str>, Vec<u32>> = HashMap::new();
        for (_, id, m) in messages {
            let Some((k, _)) = loaded.get_key_value(id.as_str()) else {
                continue;
            };
            if !m.turns.is_empty() {
                let seg = |by: &Replier| match by {
                    Replier::Bot => SEG_BOT,
                    Replier::Agent => SEG_HUMAN,
                };
                turns.insert(k.clone(), m.turns.iter().map(|(w, by)| (*w, seg(by))).collect());
            }
            if !m.replying_agents.is_empty() {
                let ids = m.replying_agents.iter().map(|a| self.names.intern(a)).collect();
                agents.insert(k.clone(), ids);
            }
        }
        for (id, mut f) in loaded {
            if let Some(t) = turns.remove(&id) {
                f.turns = t.into_boxed_slice();
            }
            if let Some(a) = agents.remove(&id) {
                f.set_replying_agents(&a);
            }
            if let Some(o) = conv_orders.remove(&id) {
                f.orders = o.into_boxed_slice();
            }
            self.insert_fact(f);
        }
    }

    /// The `conversations` rows whose first event is in `[lo, hi)`, folded
    /// from the events of `ctx` ([`crate::fold`]), each one's message facts
    /// as (tenant, conversation, facts), and the `orders` rows.
    #[allow(clippy::type_complexity)]
    pub(super) async fn fold(
        ctx: &SessionContext,
        config: TenantConfig,
        lo: i64,
        hi: Option<i64>,
        filter: Option<(String, Vec<ScalarValue>)>,
    ) -> Result<(Vec<RecordBatch>, Vec<(String, String, MessageFacts)>, Vec<FoldedOrder>)> {
        let columns: Vec<String> = EVENT_COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
        let sql = format!("SELECT {} FROM events", columns.join(", "));
        let events = match filter {
            Some((filter, params)) => {
                ctx.sql(&format!("{sql} WHERE {filter}"))
                    .await?
                    .with_param_values(params)?
                    .collect()
                    .await?
            }
            None => ctx.sql(&sql).await?.collect().await?,
        };
        let folded = fold_with_messages(
            &events,
            FoldSettings {
                attribution_window_us: i64::from(config.attribution_window_days) * DAY_US,
                sla_target_us: config.sla_target_us,
                now_us: chrono::Utc::now().timestamp_micros(),
            },
        )?;
        drop(events);
        let first = int64s(&folded.rows, "first_event_at")?;
        let mask: BooleanArray = first
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| Some(v.is_some_and(|v| v >= lo && hi.is_none_or(|hi| v < hi))))
            .collect();
        let rows = filter_record_batch(&folded.rows, &mask)?;
        let (tenants, ids) = (strings(&rows, "tenant_id")?, strings(&rows, "conversation_id")?);
        let (tenants, ids) = (tenants.as_string::<i32>(), ids.as_string::<i32>());
        let messages = folded
            .messages
            .into_iter()
            .zip(mask.values().iter())
            .filter(|(_, keep)| *keep)
            .enumerate()
            .map(|(r, (m, _))| (tenants.value(r).to_string(), ids.value(r).to_string(), m))
            .collect();
        let rows = if rows.num_rows() == 0 { vec![] } else { vec![rows] };
        Ok((rows, messages, folded.orders))
    }

    /// The kept tables with everything from `lo` on, and the rows of the
    /// conversations `refold` names, dropped, worked out under a shared
    /// borrow ([`super::kept::KeptRows::cut`]).
    fn cuts(&self, lo: i64, refold: Option<&Refold>) -> Result<Cuts> {
        let ids = refold.map_or_else(Arc::default, |r| r.ids.clone());
        Ok(Cuts {
            rows: self.rows.cut(lo, ids.clone())?,
            script_uses: self.script_uses.cut(lo, ids)?,
            exposure_events: self.exposure_events.cut(lo, Arc::default())?,
        })
    }

    /// Keeps the `script_uses` rows of the conversations in `loaded`, each
    /// with its conversation's first event.
    pub(super) async fn keep_script_uses(
        &mut self,
        messages: &[(String, String, MessageFacts)],
        loaded: &HashMap<Arc<str>, Fact>,
    ) -> Result<()> {
        let schema = script_uses_schema();
        self.script_uses.set_schema(schema.clone());
        let (mut tenants, mut ids, mut kinds, mut keys, mut firsts) = (vec![], vec![], vec![], vec![], vec![]);
        for (tenant, id, m) in messages {
            let Some(f) = loaded.get(id.as_str()) else { continue };
            for (kind, key) in &m.scripts {
                tenants.push(tenant.as_str());
                ids.push(id.as_str());
                kinds.push(kind.name());
                keys.push(key.as_str());
                firsts.push(f.first_event_us);
            }
        }
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(tenants)),
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(kinds)),
                Arc::new(StringArray::from(keys)),
                Arc::new(TimestampMicrosecondArray::from(firsts).with_timezone("UTC")),
            ],
        )?;
        self.script_uses.push(&[batch]).await
    }

    /// Keeps the rows of `batches` whose conversation is in `loaded`, under
    /// the all-nullable schema.
    pub(super) async fn keep_rows(
        &mut self,
        batches: Vec<RecordBatch>,
        loaded: &HashMap<Arc<str>, Fact>,
    ) -> Result<()> {
        if let Some(first) = batches.first() {
            self.rows.set_schema(nullable_schema(&first.schema()));
        }
        let mut keep = Vec::with_capacity(batches.len());
        for b in batches {
            let Some(ids) = b
                .column_by_name("conversation_id")
                .and_then(|c| c.as_string_opt::<i32>())
            else {
                continue;
            };
            let mask: BooleanArray = ids
                .iter()
                .map(|id| Some(id.is_some_and(|id| loaded.contains_key(id))))
                .collect();
            keep.push(filter_record_batch(&b, &mask)?);
        }
        self.rows.push(&keep).await
    }

    /// The facts of the `conversations` rows in `rows` whose first event
    /// is at or after `lo`, by conversation.
    pub(super) async fn facts_of_rows(&mut self, rows: &[RecordBatch], lo: i64) -> Result<HashMap<Arc<str>, Fact>> {
        let mut loaded: HashMap<Arc<str>, Fact> = HashMap::new();
        for b in Self::fact_columns(rows, lo).await? {
            self.read_conversations(&b, &mut loaded)?;
        }
        Ok(loaded)
    }

    /// The columns of the `conversations` rows in `rows` a [`Fact`] is
    /// read from ([`Self::read_conversations`]), of those whose first
    /// event is at or after `lo`.
    async fn fact_columns(rows: &[RecordBatch], lo: i64) -> Result<Vec<RecordBatch>> {
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let rows_ctx = SessionContext::new();
        rows_ctx.register_table(
            "conversations",
            Arc::new(MemTable::try_new(first.schema(), vec![rows.to_vec()])?),
        )?;
        let conv_sql = "SELECT conversation_id, arrow_cast(first_event_at, 'Int64') AS first_event_us, \
                arrow_cast(last_event_at, 'Int64') AS last_event_us, arrow_cast(started_at, 'Int64') AS started_us, \
                channel, channel_account, queue, team, agent_id, language, region, \
                customer_tier, customer_id, tags, experiment_variants, frt_s, human_frt_s, handling_s, \
                arrow_cast(first_customer_message_at, 'Int64') AS first_customer_message_us, \
                arrow_cast(first_reply_at, 'Int64') AS first_reply_us, \
                is_resolved, resolves, reopened_within_7d, bot_replies, handoffs, bot_only, attributed_orders, \
                agent_replies, copilot_replies, csat_score, csat_requested \
             FROM conversations WHERE arrow_cast(first_event_at, 'Int64') >= $1";
        let lo = vec![ScalarValue::Int64(Some(lo))];
        rows_ctx.sql(conv_sql).await?.with_param_values(lo)?.collect().await
    }

    /// The online intervals in `b` (`agent_id`, `team`, `started_at`,
    /// `ended_at`) that start at or after `lo`.
    pub(super) fn read_online(&mut self, b: &RecordBatch, lo: i64, out: &mut Vec<OnlineInterval>) -> Result<()> {
        let (a, t, s, e) = (
            strings(b, "agent_id")?,
            strings(b, "team")?,
            int64s(b, "started_at")?,
            int64s(b, "ended_at")?,
        );
        let (a, t, s, e) = (
            a.as_string::<i32>(),
            t.as_string::<i32>(),
            s.as_primitive::<Int64Type>(),
            e.as_primitive::<Int64Type>(),
        );
        for r in 0..b.num_rows() {
            if s.is_null(r) || s.value(r) < lo {
                continue;
            }
            out.push(OnlineInterval {
                agent: self.names.opt(a.is_valid(r).then(|| a.value(r))),
                team: self.names.opt(t.is_valid(r).then(|| t.value(r))),
                start_us: s.value(r),
                end_us: e.is_valid(r).then(|| e.value(r)),
            });
        }
        Ok(())
    }

    /// The costs in `b` (`occurred_at`, `currency`, `amount`) at or after `lo`.
    pub(super) fn read_costs(&mut self, b: &RecordBatch, lo: i64, out: &mut Vec<(i64, u32, f64)>) -> Result<()> {
        let (at, cur, amount) = (
            int64s(b, "occurred_at")?,
            strings(b, "currency")?,
            float64s(b, "amount")?,
        );
        let (at, cur, amount) = (
            at.as_primitive::<Int64Type>(),
            cur.as_string::<i32>(),
            amount.as_primitive::<Float64Type>(),
        );
        for r in 0..b.num_rows() {
            if at.is_null(r) || at.value(r) < lo || amount.is_null(r) {
                continue;
            }
            let c = self.names.opt(cur.is_valid(r).then(|| cur.value(r)));
            out.push((at.value(r), c, amount.value(r)));
        }
        Ok(())
    }

    /// Rebuilds the look-up of orders by id after `orders` changed.
    pub(super) fn index_orders(&mut self) {
        self.order_index = self
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.order_id.clone(), i))
            .collect();
    }

    pub(super) fn insert_fact(&mut self, f: Fact) {
        let i = match self.free.pop() {
            Some(i) => i,
            None => {
                self.facts.push(None);
                self.facts.len() - 1
            }
        };
        self.by_id.insert(f.id.clone(), i);
        self.by_first_event.insert((f.first_event_us, i));
        if let Some(s) = f.started() {
            self.by_start.insert((s, i));
        }
        self.facts[i] = Some(f);
    }

    pub(super) fn read_conversations(&mut self, b: &RecordBatch, out: &mut HashMap<Arc<str>, Fact>) -> Result<()> {
        let id = strings(b, "conversation_id")?;
        let (first, last, started) = (
            int64s(b, "first_event_us")?,
            int64s(b, "last_event_us")?,
            int64s(b, "started_us")?,
        );
        // In the order of `Fact::dims`.
        let dims: Vec<_> = [
            "channel",
            "channel_account",
            "queue",
            "team",
            "agent_id",
            "language",
            "region",
            "customer_tier",
        ]
        .iter()
        .map(|c| strings(b, c))
        .collect::<Result<_>>()?;
        let (tags, variants) = (string_lists(b, "tags")?, string_lists(b, "experiment_variants")?);
        let customer = strings(b, "customer_id")?;
        let customer = customer.as_string::<i32>();
        let (frt, human, handling) = (
            float64s(b, "frt_s")?,
            float64s(b, "human_frt_s")?,
            float64s(b, "handling_s")?,
        );
        let (fcm, reply) = (int64s(b, "first_customer_message_us")?, int64s(b, "first_reply_us")?);
        let bools: Vec<_> = ["is_resolved", "reopened_within_7d", "bot_only", "csat_requested"]
            .iter()
            .map(|c| booleans(b, c))
            .collect::<Result<_>>()?;
        let ints: Vec<_> = [
            "resolves",
            "bot_replies",
            "handoffs",
            "attributed_orders",
            "agent_replies",
            "copilot_replies",
            "csat_score",
        ]
        .iter()
        .map(|c| int64s(b, c))
        .collect::<Result<_>>()?;
        let id = id.as_string::<i32>();
        let (first, last, started) = (
            first.as_primitive::<Int64Type>(),
            last.as_primitive::<Int64Type>(),
            started.as_primitive::<Int64Type>(),
        );
        let dims: Vec<_> = dims.iter().map(|d| d.as_string::<i32>()).collect();
        let (frt, human, handling) = (
            frt.as_primitive::<Float64Type>(),
            human.as_primitive::<Float64Type>(),
            handling.as_primitive::<Float64Type>(),
        );
        let (fcm, reply) = (fcm.as_primitive::<Int64Type>(), reply.as_primitive::<Int64Type>());
        let bools: Vec<_> = bools.iter().map(|a| a.as_boolean()).collect();
        let ints: Vec<_> = ints.iter().map(|a| a.as_primitive::<Int64Type>()).collect();
        let int = |k: usize, r: usize| if ints[k].is_valid(r) { ints[k].value(r) } else { 0 };
        let boolean = |k: usize, r: usize| bools[k].is_valid(r) && bools[k].value(r);
        let opt_f = |a: &arrow::array::Float64Array, r: usize| if a.is_valid(r) { a.value(r) } else { f64::NAN };
        let opt_i = |a: &arrow::array::Int64Array, r: usize| if a.is_valid(r) { a.value(r) } else { NO_US };
        for r in 0..b.num_rows() {
            if id.is_null(r) || first.is_null(r) {
                continue;
            }
            let mut d = [NONE; 8];
            for (k, col) in dims.iter().enumerate() {
                d[k] = self.names.opt(col.is_valid(r).then(|| col.value(r)));
            }
            let mut ids = Vec::new();
            let mut list = |lists: &arrow::array::ListArray, names: &mut Interner| -> u16 {
                if lists.is_null(r) {
                    return 0;
                }
                let v = lists.value(r);
                let v = v.as_string::<i32>();
                let before = ids.len();
                ids.extend(
                    (0..v.len())
                        .filter(|&i| v.is_valid(i))
                        .map(|i| names.intern(v.value(i)))
                        .take(usize::from(u16::MAX)),
                );
                (ids.len() - before) as u16
            };
            let n_tags = list(tags.as_list::<i32>(), &mut self.names);
            let n_variants = list(variants.as_list::<i32>(), &mut self.names);
            // resolves 0, bot_replies 1, handoffs 2, attributed_orders 3,
            // agent_replies 4, copilot_replies 5, csat_score 6
            let mut flags = 0u16;
            let mut set = |bit: u16, on: bool| {
                if on {
                    flags |= bit;
                }
            };
            set(RESOLVED, boolean(0, r));
            set(EVER_RESOLVED, int(0, r) > 0);
            set(REOPENED_7D, boolean(1, r));
            set(BOT_REPLIED, int(1, r) > 0);
            set(HANDED_OFF, int(2, r) > 0);
            set(BOT_ONLY, boolean(2, r));
            set(CONVERTED, int(3, r) > 0);
            set(CSAT_REQUESTED, boolean(3, r));
            set(HUMAN_HANDLED, int(4, r) > 0);
            let fact = Fact {
                id: Arc::from(id.value(r)),
                first_event_us: first.value(r),
                last_event_us: if last.is_valid(r) {
                    last.value(r)
                } else {
                    first.value(r)
                },
                started_us: opt_i(started, r),
                dims: d,
                ids: ids.into_boxed_slice(),
                n_tags,
                n_variants,
                durations: [opt_f(frt, r), opt_f(human, r), opt_f(handling, r)],
                first_customer_message_us: opt_i(fcm, r),
                first_reply_us: opt_i(reply, r),
                flags,
                agent_replies: int(4, r).max(0) as u32,
                copilot_replies: int(5, r).max(0) as u32,
                csat_score: if ints[6].is_valid(r) {
                    ints[6].value(r) as i32
                } else {
                    NO_SCORE
                },
                customer: self.customers.opt(customer.is_valid(r).then(|| customer.value(r))),
                turns: Box::new([]),
                orders: Box::new([]),
            };
            out.insert(fact.id.clone(), fact);
        }
        Ok(())
    }

    /// Rebuilds the cells of `hours` (hours since the epoch).
    fn rebuild_hours(&mut self, hours: &BTreeSet<i64>) {
        for &h in hours {
            self.rebuild_range(h * HOUR_US, Some((h + 1) * HOUR_US));
        }
    }

    /// Rebuilds the cells of the hours from `lo`'s on.
    pub(super) fn rebuild_cells(&mut self, lo: i64) {
        let h0 = if lo == i64::MIN {
            i64::MIN
        } else {
            lo.div_euclid(HOUR_US) * HOUR_US
        };
        self.rebuild_range(h0, None);
    }

    /// Rebuilds the cells of the hours in `[from, to)` (`from` an hour's
    /// start; `None`: to the end) from the facts of the conversations
    /// started then.
    fn rebuild_range(&mut self, from: i64, to: Option<i64>) {
        let target = self.config.map_or(DEFAULT_CONFIG.sla_target_us, |c| c.sla_target_us);
        // No conversation starts at the last instant there is.
        let to = to.unwrap_or(i64::MAX);
        let stale: Vec<(i64, u32)> = self.cells.range((from, 0)..(to, 0)).map(|(k, _)| *k).collect();
        for k in stale {
            self.cells.remove(&k);
        }
        let mut cells: BTreeMap<(i64, u32), Summary<Sketch>> = BTreeMap::new();
        for &(start, i) in self.by_start.range((from, 0)..(to, 0)) {
            let Some(f) = self.facts[i].as_ref() else { continue };
            let key = (start.div_euclid(HOUR_US) * HOUR_US, f.dims[0]);
            cells.entry(key).or_default().add_fact(f, target);
        }
        for (k, mut c) in cells {
            c.shrink();
            self.cells.insert(k, c);
        }
    }
}

/// The kept `script_uses` rows: the view's columns and each
/// conversation's first event.
pub(super) fn script_uses_schema() -> SchemaRef {
    let text = || Field::new("", DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text().with_name("tenant_id"),
        text().with_name("conversation_id"),
        text().with_name("kind"),
        text().with_name("key"),
        Field::new(
            "first_event_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// `schema` with every top-level field nullable.
pub(super) fn nullable_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
    ))
}

/// The column `name` of a rollup query's result, cast to `t`. Columns are
/// read by name, so a query can change its column order, and one that
/// loses a column fails here rather than reading another.
pub(super) fn cast(b: &RecordBatch, name: &str, t: &DataType) -> Result<Arc<dyn Array>> {
    let column = b
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("rollup query lacks column {name}")))?;
    Ok(arrow::compute::cast(column, t)?)
}
pub(super) fn strings(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Utf8)
}
pub(super) fn int64s(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Int64)
}
pub(super) fn float64s(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Float64)
}
pub(super) fn booleans(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(b, name, &DataType::Boolean)
}
pub(super) fn string_lists(b: &RecordBatch, name: &str) -> Result<Arc<dyn Array>> {
    cast(
        b,
        name,
        &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    )
}

/// `column` (an instant) at or after `$1` and, with `hi`, before `$2`, in
/// microseconds since the epoch: the bounds of [`bound_params`].
fn in_bounds(column: &str, hi: Option<i64>) -> String {
    let lo = format!("arrow_cast({column}, 'Int64') >= $1");
    match hi {
        Some(_) => format!("{lo} AND arrow_cast({column}, 'Int64') < $2"),
        None => lo,
    }
}

/// The parameters of [`in_bounds`].
fn bound_params(lo: i64, hi: Option<i64>) -> Vec<ScalarValue> {
    std::iter::once(lo)
        .chain(hi)
        .map(|us| ScalarValue::Int64(Some(us)))
        .collect()
}
