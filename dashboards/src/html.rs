//! Escaping for HTML text and attributes, and URL query encoding.
//!
//! Every string that reaches a page from data (tenant names, tags, agent
//! ids, experiment keys, explanations) goes through [`escape`]; every
//! value put into a link goes through [`url_encode`] first and
//! [`escape`] second. Nothing else is ever spliced into markup.

/// Escapes `s` for HTML text and for double- or single-quoted attribute
/// values: `& < > " '` become entities. Safe inside SVG text as well.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `s` for a URL query component or path segment: every
/// byte outside the RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~`).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&k=v` with every key and value percent-encoded (not yet
/// HTML-escaped: pass the result through [`escape`] when it goes into an
/// attribute).
pub fn href(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Shortens `s` to at most `max` characters, ending in `…` when cut
/// (chart labels have a fixed width; tables show the full text).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_every_markup_character() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain 文本"), "plain 文本");
        assert_eq!(escape(""), "");
        // Already-escaped text is escaped again, not trusted.
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn url_encode_keeps_only_unreserved_bytes() {
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_encode("Europe/Berlin"), "Europe%2FBerlin");
        assert_eq!(url_encode("safe-._~09AZaz"), "safe-._~09AZaz");
    }

    #[test]
    fn href_joins_encoded_pairs() {
        let pairs = vec![
            ("from".to_string(), "2026-03-01".to_string()),
            ("tag".to_string(), "a&b".to_string()),
        ];
        assert_eq!(href("/tags", &pairs), "/tags?from=2026-03-01&tag=a%26b");
        assert_eq!(href("/", &[]), "/");
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate("短标签", 5), "短标签");
        assert_eq!(truncate("abcdefgh", 4), "abc…");
    }
}
