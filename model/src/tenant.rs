use std::fmt;

/// A validated tenant id, `[a-z0-9_-]{1,64}` (event contract v1). Safe to
/// put into a file name or a SQL string literal as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// The id, when `s` is one.
    pub fn parse(s: &str) -> Option<TenantId> {
        Self::is_valid(s).then(|| TenantId(s.to_string()))
    }

    /// Whether `s` matches `[a-z0-9_-]{1,64}`.
    pub fn is_valid(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_contract() {
        assert!(TenantId::parse("acme").is_some());
        assert!(TenantId::parse("a-b_9").is_some());
        assert!(TenantId::parse(&"a".repeat(64)).is_some());
        assert!(TenantId::parse("").is_none());
        assert!(TenantId::parse("Acme").is_none());
        assert!(TenantId::parse("a'b").is_none());
        assert!(TenantId::parse("../x").is_none());
        assert!(TenantId::parse("a b").is_none());
        assert!(TenantId::parse(&"a".repeat(65)).is_none());
    }
}
