use std::fmt;

/// A glossary dimension: what KPIs are grouped and filtered by
/// (`group_by=channel`, `channel=whatsapp`), what a staffing queue key
/// names (`channel:whatsapp,team:billing`), and what the pages' controls
/// offer. Each is a column of the `conversations` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Channel,
    ChannelAccount,
    Queue,
    Team,
    Agent,
    Language,
    Region,
    CustomerTier,
    Tag,
    Variant,
}

impl Dimension {
    /// Every dimension, in the order the API lists and the controls show them.
    pub const ALL: [Dimension; 10] = [
        Dimension::Channel,
        Dimension::ChannelAccount,
        Dimension::Queue,
        Dimension::Team,
        Dimension::Agent,
        Dimension::Language,
        Dimension::Region,
        Dimension::CustomerTier,
        Dimension::Tag,
        Dimension::Variant,
    ];

    /// The dimensions a staffing queue key may name, in the order of its
    /// canonical text form (`channel:…,language:…,team:…`). A queue is a
    /// set of conversations one team of agents answers, so agent, tag and
    /// experiment variant are not among them.
    pub const QUEUE: [Dimension; 7] = [
        Dimension::Channel,
        Dimension::Language,
        Dimension::Team,
        Dimension::Queue,
        Dimension::ChannelAccount,
        Dimension::Region,
        Dimension::CustomerTier,
    ];

    /// The parameter name (`group_by=channel`, `channel=whatsapp`).
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Channel => "channel",
            Dimension::ChannelAccount => "channel_account",
            Dimension::Queue => "queue",
            Dimension::Team => "team",
            Dimension::Agent => "agent",
            Dimension::Language => "language",
            Dimension::Region => "region",
            Dimension::CustomerTier => "customer_tier",
            Dimension::Tag => "tag",
            Dimension::Variant => "variant",
        }
    }

    /// The column of the `conversations` view that holds it.
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Agent => "agent_id",
            Dimension::Tag => "tags",
            Dimension::Variant => "experiment_variants",
            other => other.name(),
        }
    }

    /// A conversation has a list of these (tags, experiment variants): it
    /// belongs to the group of each of them.
    pub fn is_list(self) -> bool {
        matches!(self, Dimension::Tag | Dimension::Variant)
    }

    /// The dimension named `name`.
    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The dimension a queue key part is named by, if a queue key may name it.
    pub fn parse_queue(name: &str) -> Option<Dimension> {
        Dimension::QUEUE.into_iter().find(|d| d.name() == name)
    }

    /// Where a queue dimension stands in [`Dimension::QUEUE`] (the order of
    /// a queue key's parts); `None` for the others.
    pub fn queue_rank(self) -> Option<usize> {
        Dimension::QUEUE.iter().position(|d| *d == self)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_queue_dimensions_are_single_valued_columns() {
        for d in Dimension::ALL {
            assert_eq!(Dimension::parse(d.name()), Some(d));
        }
        for d in Dimension::QUEUE {
            assert_eq!(Dimension::parse_queue(d.name()), Some(d));
            assert_eq!(d.column(), d.name(), "a queue key names its column");
            assert!(!d.is_list());
        }
        assert_eq!(Dimension::parse_queue("agent"), None);
        assert_eq!(Dimension::parse("agent_id"), None);
    }
}
