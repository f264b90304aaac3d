/// How a glossary KPI is measured, which decides how it is aggregated,
/// shown and compared between periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// A whole number of things (conversations).
    Count,
    /// A duration in seconds, summarised by mean, median and p90.
    Duration,
    /// A share in [0, 1].
    Rate,
    /// A mean score (CSAT 1–5).
    Score,
    /// An amount of money in the tenant's currency.
    Money,
    /// Any other number (conversations per agent).
    Decimal,
}

/// A KPI of the glossary (`DESIGN.md`), in the order the overview shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kpi {
    Conversations,
    Frt,
    HumanFrt,
    Response,
    Handling,
    SlaAttainment,
    Csat,
    ResolutionRate,
    ReopenRate,
    TransferRate,
    AutomationRate,
    ConversionRate,
    Aov,
    RepurchaseRate,
    ConversationsPerAgent,
    CopilotAdoption,
    LaborCost,
    CostPerConversation,
}

impl Kpi {
    pub const ALL: [Kpi; 18] = [
        Kpi::Conversations,
        Kpi::Frt,
        Kpi::HumanFrt,
        Kpi::Response,
        Kpi::Handling,
        Kpi::SlaAttainment,
        Kpi::Csat,
        Kpi::ResolutionRate,
        Kpi::ReopenRate,
        Kpi::TransferRate,
        Kpi::AutomationRate,
        Kpi::ConversionRate,
        Kpi::Aov,
        Kpi::RepurchaseRate,
        Kpi::ConversationsPerAgent,
        Kpi::CopilotAdoption,
        Kpi::LaborCost,
        Kpi::CostPerConversation,
    ];

    /// The key of the API's `kpis` object and of the rollups' `kpi` column.
    pub const fn key(self) -> &'static str {
        match self {
            Kpi::Conversations => "conversations",
            Kpi::Frt => "frt_s",
            Kpi::HumanFrt => "human_frt_s",
            Kpi::Response => "response_s",
            Kpi::Handling => "handling_s",
            Kpi::SlaAttainment => "sla_attainment",
            Kpi::Csat => "csat",
            Kpi::ResolutionRate => "resolution_rate",
            Kpi::ReopenRate => "reopen_rate",
            Kpi::TransferRate => "transfer_rate",
            Kpi::AutomationRate => "automation_rate",
            Kpi::ConversionRate => "conversion_rate",
            Kpi::Aov => "aov",
            Kpi::RepurchaseRate => "repurchase_rate",
            Kpi::ConversationsPerAgent => "conversations_per_agent",
            Kpi::CopilotAdoption => "copilot_adoption",
            Kpi::LaborCost => "labor_cost",
            Kpi::CostPerConversation => "cost_per_conversation",
        }
    }

    pub fn parse(key: &str) -> Option<Kpi> {
        Kpi::ALL.into_iter().find(|k| k.key() == key)
    }

    pub fn measure(self) -> Measure {
        match self {
            Kpi::Conversations => Measure::Count,
            Kpi::Frt | Kpi::HumanFrt | Kpi::Response | Kpi::Handling => Measure::Duration,
            Kpi::Csat => Measure::Score,
            Kpi::Aov | Kpi::LaborCost | Kpi::CostPerConversation => Measure::Money,
            Kpi::ConversationsPerAgent => Measure::Decimal,
            Kpi::SlaAttainment
            | Kpi::ResolutionRate
            | Kpi::ReopenRate
            | Kpi::TransferRate
            | Kpi::AutomationRate
            | Kpi::ConversionRate
            | Kpi::RepurchaseRate
            | Kpi::CopilotAdoption => Measure::Rate,
        }
    }

    /// Whether a higher value is better; `None` for volume, where neither is.
    pub fn higher_is_better(self) -> Option<bool> {
        match self {
            Kpi::Conversations => None,
            Kpi::Frt
            | Kpi::HumanFrt
            | Kpi::Response
            | Kpi::Handling
            | Kpi::ReopenRate
            | Kpi::TransferRate
            | Kpi::LaborCost
            | Kpi::CostPerConversation => Some(false),
            Kpi::SlaAttainment
            | Kpi::Csat
            | Kpi::ResolutionRate
            | Kpi::AutomationRate
            | Kpi::ConversionRate
            | Kpi::Aov
            | Kpi::RepurchaseRate
            | Kpi::ConversationsPerAgent
            | Kpi::CopilotAdoption => Some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_durations_are_the_keys_in_seconds() {
        for k in Kpi::ALL {
            assert_eq!(Kpi::parse(k.key()), Some(k));
            assert_eq!(k.measure() == Measure::Duration, k.key().ends_with("_s"), "{}", k.key());
            assert_eq!(k.higher_is_better().is_none(), k.measure() == Measure::Count);
        }
    }
}
