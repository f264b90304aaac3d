//! The sign-in page and the error page: no navigation, no controls, no
//! tenant data.

use std::fmt::Write as _;

use crate::html::{escape, href};
use crate::i18n::Lang;
use crate::shell::{Theme, document};

/// The sign-in form's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginData {
    /// Why the last attempt failed (shown above the form).
    pub error: Option<String>,
    /// Where to go after signing in (a local path, sent back as `next`).
    pub next: Option<String>,
}

/// An error shown as a page (the HTML face of an RFC 9457 problem).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ErrorData {
    pub status: u16,
    pub title: String,
    pub detail: String,
}

fn lang_links(out: &mut String, path: &str, lang: Lang, theme: Theme) {
    out.push_str(r#"<p class="switch" role="group" aria-label="Language / 语言">"#);
    for l in Lang::ALL {
        let mut pairs = vec![("lang".to_string(), l.code().to_string())];
        if theme != Theme::Auto {
            pairs.push(("theme".to_string(), theme.name().to_string()));
        }
        let cur = if l == lang { r#" aria-current="true""# } else { "" };
        let _ = write!(
            out,
            r#"<a href="{}"{cur} hreflang="{}" lang="{}">{}</a>"#,
            escape(&href(path, &pairs)),
            l.code(),
            l.code(),
            escape(l.native_name())
        );
    }
    out.push_str("</p>");
}

/// `/login`: a form that `POST`s `key` (and `next`) to `/login`.
pub fn render_login(lang: Lang, theme: Theme, data: &LoginData) -> String {
    let s = lang.strings();
    let mut b = String::from(r#"<main><form class="login card" method="post" action="/login">"#);
    let _ = write!(b, "<h1>cxlake · {}</h1>", escape(s.sign_in));
    if let Some(e) = &data.error {
        let _ = write!(b, r#"<p class="err" role="alert">{}</p>"#, escape(e));
    }
    let _ = write!(
        b,
        r#"<label>{}<input type="password" name="key" required autocomplete="current-password" spellcheck="false" autofocus></label><p class="notes">{}</p>"#,
        escape(s.api_key),
        escape(s.sign_in_hint)
    );
    if let Some(next) = &data.next {
        let _ = write!(b, r#"<input type="hidden" name="next" value="{}">"#, escape(next));
    }
    let _ = write!(b, r#"<input type="hidden" name="lang" value="{}">"#, lang.code());
    let _ = write!(b, r#"<button type="submit">{}</button>"#, escape(s.sign_in));
    lang_links(&mut b, "/login", lang, theme);
    b.push_str("</form></main>");
    document(&format!("{} · cxlake", s.sign_in), lang, theme, &b)
}

/// An error page with a link back to the overview.
pub fn render_error(lang: Lang, theme: Theme, data: &ErrorData) -> String {
    let s = lang.strings();
    let mut b = String::from(r#"<main><section class="login card">"#);
    let _ = write!(
        b,
        r#"<h1>{} {}</h1><p><b>{}</b></p><p>{}</p><p><a href="/">{}</a></p>"#,
        escape(s.error),
        data.status,
        escape(&data.title),
        escape(&data.detail),
        escape(s.back_to_overview)
    );
    b.push_str("</section></main>");
    document(&format!("{} {} · cxlake", s.error, data.status), lang, theme, &b)
}
