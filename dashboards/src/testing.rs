//! Test helpers: a small markup checker.

/// Elements that never have a closing tag in HTML.
const VOID: [&str; 8] = ["meta", "link", "input", "br", "img", "hr", "source", "wbr"];

/// Checks that every opened element is closed in order (void elements and
/// `<…/>` excepted), that tags and attribute quotes are closed, and that no
/// bare `<` or `>` stands in text. Returns the first problem with a little
/// context.
pub(crate) fn check_balanced(html: &str) -> Result<(), String> {
    let bytes = html.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    let ctx = |at: usize| {
        let lo = html.floor_char_boundary(at.saturating_sub(60));
        let hi = html.ceil_char_boundary((at + 60).min(html.len()));
        html[lo..hi].to_string()
    };
    while i < bytes.len() {
        match bytes[i] {
            b'>' => return Err(format!("bare '>' in text at {i}: {}", ctx(i))),
            b'<' => {
                if html[i..].starts_with("<!--") {
                    let end = html[i..]
                        .find("-->")
                        .ok_or_else(|| format!("unclosed comment at {i}"))?;
                    i += end + 3;
                    continue;
                }
                // Find the end of the tag, honouring quotes.
                let mut j = i + 1;
                let mut quote: Option<u8> = None;
                while j < bytes.len() {
                    match (quote, bytes[j]) {
                        (None, b'"' | b'\'') => quote = Some(bytes[j]),
                        (Some(q), c) if c == q => quote = None,
                        (None, b'<') => return Err(format!("'<' inside a tag at {j}: {}", ctx(j))),
                        (None, b'>') => break,
                        _ => {}
                    }
                    j += 1;
                }
                if j >= bytes.len() {
                    return Err(format!("unclosed tag at {i}: {}", ctx(i)));
                }
                let inner = &html[i + 1..j];
                if inner.starts_with('!') {
                    i = j + 1;
                    continue;
                }
                let name: String = inner
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if name.is_empty() {
                    return Err(format!("bare '<' at {i}: {}", ctx(i)));
                }
                if inner.starts_with('/') {
                    match stack.pop() {
                        Some(open) if open == name => {}
                        Some(open) => return Err(format!("</{name}> closes <{open}> at {i}: {}", ctx(i))),
                        None => return Err(format!("</{name}> with nothing open at {i}")),
                    }
                } else if !inner.ends_with('/') && !VOID.contains(&name.as_str()) {
                    if name == "style" || name == "script" {
                        // Raw text: skip to its end tag.
                        let close = format!("</{name}>");
                        let end = html[j..].find(&close).ok_or_else(|| format!("unclosed <{name}>"))?;
                        i = j + end + close.len();
                        continue;
                    }
                    stack.push(name);
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    match stack.last() {
        Some(open) => Err(format!("<{open}> never closed (open: {stack:?})")),
        None => Ok(()),
    }
}

#[test]
fn checker_accepts_balanced_and_rejects_broken_markup() {
    assert!(check_balanced(r#"<!DOCTYPE html><html><head><meta charset="utf-8"><style>a>b{}</style></head><body><p a="x>y">t</p><svg><rect/></svg><br></body></html>"#).is_ok());
    assert!(check_balanced("<div><p></div>").is_err());
    assert!(check_balanced("<div>").is_err());
    assert!(check_balanced("</p>").is_err());
    assert!(check_balanced("<p>a < b</p>").is_err());
    assert!(check_balanced("<p>a > b</p>").is_err());
    assert!(check_balanced(r#"<p title="x>text</p>"#).is_err());
}
