//! What was generated, for the CLI to print.

use std::fmt;

/// The event types of contract v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ConversationStarted,
    MessageCreated,
    ConversationAssigned,
    ConversationHandoff,
    ConversationResolved,
    ConversationReopened,
    ConversationTagged,
    CsatRequested,
    CsatSubmitted,
    OrderPlaced,
    OrderRefunded,
    AgentStatusChanged,
    ExperimentExposed,
    CostIncurred,
}

impl EventType {
    /// Every type, in contract order.
    pub const ALL: [EventType; 14] = [
        EventType::ConversationStarted,
        EventType::MessageCreated,
        EventType::ConversationAssigned,
        EventType::ConversationHandoff,
        EventType::ConversationResolved,
        EventType::ConversationReopened,
        EventType::ConversationTagged,
        EventType::CsatRequested,
        EventType::CsatSubmitted,
        EventType::OrderPlaced,
        EventType::OrderRefunded,
        EventType::AgentStatusChanged,
        EventType::ExperimentExposed,
        EventType::CostIncurred,
    ];

    /// The contract spelling, e.g. `conversation.started`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConversationStarted => "conversation.started",
            EventType::MessageCreated => "message.created",
            EventType::ConversationAssigned => "conversation.assigned",
            EventType::ConversationHandoff => "conversation.handoff",
            EventType::ConversationResolved => "conversation.resolved",
            EventType::ConversationReopened => "conversation.reopened",
            EventType::ConversationTagged => "conversation.tagged",
            EventType::CsatRequested => "csat.requested",
            EventType::CsatSubmitted => "csat.submitted",
            EventType::OrderPlaced => "order.placed",
            EventType::OrderRefunded => "order.refunded",
            EventType::AgentStatusChanged => "agent.status_changed",
            EventType::ExperimentExposed => "experiment.exposed",
            EventType::CostIncurred => "cost.incurred",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Events written (lines).
    pub events: u64,
    /// Bytes written, newlines included.
    pub bytes: u64,
    /// Events per type, indexed like [`EventType::ALL`].
    pub by_type: [u64; 14],
    /// `conversation.started` events written.
    pub conversations: u64,
    /// Events per tenant, in config order.
    pub by_tenant: Vec<u64>,
    /// Tenants in the config.
    pub tenants: usize,
    /// Local days generated.
    pub days: u32,
}

impl GenStats {
    pub(crate) fn new(tenants: usize) -> Self {
        GenStats {
            by_tenant: vec![0; tenants],
            tenants,
            ..GenStats::default()
        }
    }

    #[inline]
    pub(crate) fn count(&mut self, ty: EventType, tenant: usize) {
        self.events += 1;
        self.by_type[ty as usize] += 1;
        if ty == EventType::ConversationStarted {
            self.conversations += 1;
        }
        if let Some(n) = self.by_tenant.get_mut(tenant) {
            *n += 1;
        }
    }

    /// Events of one type.
    pub fn of_type(&self, ty: EventType) -> u64 {
        self.by_type[ty as usize]
    }

    /// Adds another run's counts (e.g. of several `generate_day` calls).
    pub fn merge(&mut self, other: &GenStats) {
        self.events += other.events;
        self.bytes += other.bytes;
        self.conversations += other.conversations;
        self.days += other.days;
        for (a, b) in self.by_type.iter_mut().zip(other.by_type) {
            *a += b;
        }
        if self.by_tenant.len() < other.by_tenant.len() {
            self.by_tenant.resize(other.by_tenant.len(), 0);
        }
        for (a, b) in self.by_tenant.iter_mut().zip(&other.by_tenant) {
            *a += b;
        }
        self.tenants = self.tenants.max(other.tenants);
    }
}

impl fmt::Display for GenStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} events, {} conversations, {} tenants, {} days, {:.1} MiB",
            self.events,
            self.conversations,
            self.tenants,
            self.days,
            self.bytes as f64 / (1024.0 * 1024.0)
        )?;
        for ty in EventType::ALL {
            writeln!(f, "  {:<24} {:>12}", ty.as_str(), self.of_type(ty))?;
        }
        Ok(())
    }
}
