//! AI-assistant referrals: did this page load come from ChatGPT, Perplexity, Claude, ...?
//!
//! Capture, then derive: the JS edge reads `location.href` and `document.referrer` once into a
//! [`PageSnapshot`]; everything here is a pure function of that snapshot (and the app's
//! [`CustomProvider`]s). No globals, no clock, no dependencies, and no panics on any input.
//!
//! The rules, in order:
//!
//! 1. The referrer is parsed as a URL, by hand, the way browsers find the host; only
//!    `http`/`https` referrers with a host count. Hosts are compared lowercased, without
//!    userinfo, port or a trailing dot, on whole DNS labels: a provider host matches itself and
//!    its subdomains.
//! 2. A referrer from the landing page's own host never counts, and stops the search.
//! 3. A referrer that names a provider (custom providers first, then [`PROVIDERS`]) is an AI
//!    referral; any other `http(s)` referrer is not.
//! 4. With no usable referrer (empty, unparseable, or not `http(s)`, such as
//!    `android-app://...`), the landing URL's `utm_source` may name the provider instead; the
//!    referral's `referrer_url` is then `""`.

#[allow(unused_imports)]
use crate::prelude::*;
/// The longest [`AiReferral::query_hint`], in characters.
pub const MAX_QUERY_HINT_CHARS: usize = 200;

/// The UTM parameters [`utm_params`] extracts, in the order it returns them.
pub const UTM_KEYS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];

/// What the page looked like at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSnapshot<'a> {
    /// `location.href`.
    pub url: &'a str,
    /// `document.referrer` (`""` when there is none).
    pub referrer: &'a str,
}

/// A provider rule. The built-in table is [`PROVIDERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Stable id sent as `source_provider`.
    pub name: &'static str,
    /// Referrer hosts: the host itself or any subdomain of it, matched on whole DNS labels.
    pub hosts: &'static [&'static str],
    /// When set, the referrer path must start with it, on a segment boundary.
    pub path_prefix: Option<&'static str>,
    /// `utm_source` values (ASCII case-insensitive) that identify it when there is no referrer.
    pub utm_sources: &'static [&'static str],
}

/// The built-in providers. A name may have several rows (Grok: its own site, and X's `/i/grok`).
pub static PROVIDERS: &[Provider] = &[
    Provider {
        name: "chatgpt",
        hosts: &["chatgpt.com", "chat.openai.com"],
        path_prefix: None,
        utm_sources: &["chatgpt.com", "chatgpt", "openai"],
    },
    Provider {
        name: "perplexity",
        hosts: &["perplexity.ai"],
        path_prefix: None,
        utm_sources: &["perplexity", "perplexity.ai"],
    },
    Provider {
        name: "claude",
        hosts: &["claude.ai"],
        path_prefix: None,
        utm_sources: &["claude.ai", "claude"],
    },
    Provider {
        name: "gemini",
        hosts: &["gemini.google.com", "bard.google.com"],
        path_prefix: None,
        utm_sources: &["gemini", "gemini.google.com", "bard"],
    },
    Provider {
        name: "grok",
        hosts: &["grok.com"],
        path_prefix: None,
        utm_sources: &["grok", "grok.com"],
    },
    Provider {
        name: "grok",
        hosts: &["x.com"],
        path_prefix: Some("/i/grok"),
        utm_sources: &[],
    },
    Provider {
        name: "copilot",
        hosts: &["copilot.microsoft.com"],
        path_prefix: None,
        utm_sources: &["copilot.com", "copilot", "copilot.microsoft.com"],
    },
    Provider {
        name: "deepseek",
        hosts: &["chat.deepseek.com"],
        path_prefix: None,
        utm_sources: &["deepseek", "chat.deepseek.com"],
    },
    Provider {
        name: "meta_ai",
        hosts: &["meta.ai"],
        path_prefix: None,
        utm_sources: &["meta.ai", "metaai"],
    },
    Provider {
        name: "mistral",
        hosts: &["chat.mistral.ai"],
        path_prefix: None,
        utm_sources: &["mistral", "chat.mistral.ai", "lechat"],
    },
    Provider {
        name: "you",
        hosts: &["you.com"],
        path_prefix: None,
        utm_sources: &["you.com"],
    },
    Provider {
        name: "poe",
        hosts: &["poe.com"],
        path_prefix: None,
        utm_sources: &["poe", "poe.com"],
    },
    Provider {
        name: "phind",
        hosts: &["phind.com"],
        path_prefix: None,
        utm_sources: &["phind", "phind.com"],
    },
];

/// A provider added by the app through config (same matching rules as [`Provider`]).
///
/// Check it once with [`check_custom`]. [`classify`] never fails on an unchecked one: a
/// provider with a blank name is skipped, and a host that is not a host name matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomProvider {
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    pub utm_sources: Vec<String>,
}

/// A page load that came from an AI assistant: the `ai_referral_session` event's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiReferral {
    /// The matching provider's name (`source_provider`).
    pub provider: String,
    /// The search text the referrer or landing URL carried, if any (trimmed, at most
    /// [`MAX_QUERY_HINT_CHARS`] characters).
    pub query_hint: Option<String>,
    /// The page URL as given.
    pub landing_url: String,
    /// The referrer as given, or `""` when the provider came from `utm_source`.
    pub referrer_url: String,
}

/// Decides whether `page` was reached from an AI assistant. Custom providers are tried before
/// the built-in table, so an app can override a built-in one.
#[must_use]
pub fn classify(page: &PageSnapshot<'_>, custom: &[CustomProvider]) -> Option<AiReferral> {
    let landing_query = query_of(page.url);
    let referrer = parse_http(page.referrer);

    let (provider, referrer_url) = match &referrer {
        Some(r) => {
            if parse_http(page.url).is_some_and(|landing| landing.host == r.host) {
                return None;
            }
            let name = custom
                .iter()
                .filter(|c| usable(c))
                .find(|c| {
                    url_matches(
                        r,
                        c.hosts.iter().map(String::as_str),
                        c.path_prefix.as_deref(),
                    )
                })
                .map(|c| c.name.as_str())
                .or_else(|| {
                    PROVIDERS
                        .iter()
                        .find(|p| url_matches(r, p.hosts.iter().copied(), p.path_prefix))
                        .map(|p| p.name)
                })?;
            (name, page.referrer)
        }
        None => {
            let source = param(landing_query, "utm_source")?;
            let name = custom
                .iter()
                .filter(|c| usable(c))
                .find(|c| utm_matches(c.utm_sources.iter().map(String::as_str), &source))
                .map(|c| c.name.as_str())
                .or_else(|| {
                    PROVIDERS
                        .iter()
                        .find(|p| utm_matches(p.utm_sources.iter().copied(), &source))
                        .map(|p| p.name)
                })?;
            (name, "")
        }
    };

    let referrer_query = referrer.as_ref().map_or("", |r| r.query);
    let query_hint = [
        (referrer_query, "q"),
        (referrer_query, "query"),
        (landing_query, "q"),
        (landing_query, "query"),
        (landing_query, "utm_term"),
    ]
    .iter()
    .find_map(|&(query, key)| param(query, key))
    .map(cap_hint);

    Some(AiReferral {
        provider: String::from(provider),
        query_hint,
        landing_url: String::from(page.url),
        referrer_url: String::from(referrer_url),
    })
}

/// The UTM parameters of `url` (see [`UTM_KEYS`]), in that order, only those present and
/// non-empty. Values are percent-decoded, with `+` as a space, and trimmed; when a key repeats,
/// its first non-empty value wins.
#[must_use]
pub fn utm_params(url: &str) -> Vec<(&'static str, String)> {
    let query = query_of(url);
    UTM_KEYS
        .iter()
        .filter_map(|&key| param(query, key).map(|value| (key, value)))
        .collect()
}

/// Checks a custom provider from config.
///
/// # Errors
///
/// A message for a person that starts with the field and says what was expected, like
/// `hosts[1]: expected a host name like chat.example.com, without a port`. The first problem
/// found is reported: `name`, then the lists being both empty, `hosts[i]`, `pathPrefix`,
/// `utmSources[i]` (named as the app writes them in its config).
pub fn check_custom(p: &CustomProvider) -> Result<(), String> {
    if p.name.trim().is_empty() {
        return Err(String::from(
            "name: expected a non-empty provider id like acme_ai",
        ));
    }
    if p.name.trim() != p.name {
        return Err(String::from(
            "name: expected a provider id without leading or trailing spaces",
        ));
    }
    if p.name.chars().any(char::is_control) {
        return Err(String::from(
            "name: expected a provider id without control characters",
        ));
    }
    if p.hosts.is_empty() && p.utm_sources.is_empty() {
        return Err(String::from(
            "hosts: expected at least one host or utmSources value (both lists are empty)",
        ));
    }
    for (i, host) in p.hosts.iter().enumerate() {
        if let Some(why) = host_problem(host) {
            let mut m = indexed("hosts", i);
            m.push_str("expected a host name like chat.example.com");
            m.push_str(why);
            return Err(m);
        }
    }
    if let Some(prefix) = &p.path_prefix {
        if p.hosts.is_empty() {
            return Err(String::from(
                "pathPrefix: expected at least one host for the path prefix to apply to",
            ));
        }
        if !prefix.starts_with('/')
            || prefix
                .chars()
                .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
        {
            return Err(String::from(
                "pathPrefix: expected a path starting with / like /i/grok, without query or spaces",
            ));
        }
    }
    for (i, source) in p.utm_sources.iter().enumerate() {
        if source.trim().is_empty() {
            let mut m = indexed("utmSources", i);
            m.push_str("expected a non-empty utm_source value");
            return Err(m);
        }
    }
    Ok(())
}

// ---- matching ----

/// Whether `classify` considers a custom provider at all (a blank name would be sent as-is).
fn usable(c: &CustomProvider) -> bool {
    !c.name.trim().is_empty()
}

fn url_matches<'h>(
    url: &Url<'_>,
    mut hosts: impl Iterator<Item = &'h str>,
    path_prefix: Option<&str>,
) -> bool {
    hosts.any(|h| host_matches(&url.host, h))
        && path_prefix.is_none_or(|p| path_matches(url.path, p))
}

/// `host` (lowercase, no trailing dot) is `pattern` or a subdomain of it, on whole labels.
fn host_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim();
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern).as_bytes();
    let host = host.as_bytes();
    if pattern.is_empty() {
        return false;
    }
    if host.len() == pattern.len() {
        return host.eq_ignore_ascii_case(pattern);
    }
    let Some(dot) = host.len().checked_sub(pattern.len() + 1) else {
        return false;
    };
    host.get(dot) == Some(&b'.')
        && host
            .get(dot + 1..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(pattern))
}

/// `path` starts with `prefix` on a segment boundary: `/i/grok` matches `/i/grok` and
/// `/i/grok/share/1`, not `/i/grokky`.
fn path_matches(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

fn utm_matches<'s>(mut sources: impl Iterator<Item = &'s str>, value: &str) -> bool {
    sources.any(|s| {
        let s = s.trim();
        !s.is_empty() && s.eq_ignore_ascii_case(value)
    })
}

/// Trims the hint to [`MAX_QUERY_HINT_CHARS`] characters, cutting on a char boundary.
fn cap_hint(mut hint: String) -> String {
    if let Some((cut, _)) = hint.char_indices().nth(MAX_QUERY_HINT_CHARS) {
        hint.truncate(cut);
        let kept = hint.trim_end().len();
        hint.truncate(kept);
    }
    hint
}

// ---- check_custom helpers ----

/// `"hosts[3]: "`, without `format!`.
fn indexed(field: &str, i: usize) -> String {
    let mut m = String::from(field);
    m.push('[');
    let start = m.len();
    let mut n = i;
    loop {
        // `start` is the end of `m` when taken: always a char boundary.
        m.insert(start, char::from(b'0' + (n % 10) as u8));
        n /= 10;
        if n == 0 {
            break;
        }
    }
    m.push_str("]: ");
    m
}

/// Why `host` is not a host name (a suffix for the message), or `None` when it is one.
fn host_problem(host: &str) -> Option<&'static str> {
    if host.trim().is_empty() {
        return Some(", not an empty string");
    }
    if host.as_bytes().windows(3).any(|w| w == b"://") {
        return Some(", without a scheme like https://");
    }
    if host.contains(['/', '?', '#', '\\']) {
        return Some(", without a path or query");
    }
    if host.contains('*') {
        return Some(", without wildcards (subdomains always match)");
    }
    if host.contains('@') {
        return Some(", without user info");
    }
    if host.contains(':') {
        return Some(", without a port");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(", without spaces");
    }
    if !host.is_ascii() {
        return Some(", in ASCII (the punycode xn--... form)");
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Some(", at most 253 characters long");
    }
    if !name.contains('.') {
        return Some(
            ", with at least two labels (a bare top-level domain would match every site under it)",
        );
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        return Some(", made of letters, digits and inner hyphens between dots");
    }
    None
}

// ---- URLs ----

/// The parts of an `http(s)` URL this module needs.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    /// Lowercase, without userinfo, port or trailing dot; never empty.
    host: String,
    /// `/` when the URL has none.
    path: &'a str,
    /// After `?`, before `#`; `""` when there is none.
    query: &'a str,
}

/// Parses an absolute `http:`/`https:` URL the way browsers find its host (WHATWG URL, special
/// schemes): any run of `/` or `\` after the scheme, the authority up to the first `/`, `\`,
/// `?` or `#`, userinfo up to the last `@`, a port of digits only. `None` for anything else.
fn parse_http(input: &str) -> Option<Url<'_>> {
    let s = input.trim_matches(|c: char| c <= ' ');
    let (scheme, rest) = s.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let tail = rest.get(end..)?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);

    let (host, port) = if host_port.starts_with('[') {
        // IPv6 literal: `[::1]:8080`.
        let close = host_port.find(']')?;
        (host_port.get(..=close)?, host_port.get(close + 1..)?)
    } else {
        let colon = host_port.find(':').unwrap_or(host_port.len());
        (host_port.get(..colon)?, host_port.get(colon..)?)
    };
    let port = match port.strip_prefix(':') {
        Some(p) => p,
        None if port.is_empty() => "",
        None => return None,
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }

    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    Some(Url {
        host: host.to_ascii_lowercase(),
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// The lowercase host of an absolute `http(s)` URL (see [`parse_http`]), if it is one.
#[must_use]
pub fn host_of(url: &str) -> Option<String> {
    parse_http(url).map(|u| u.host)
}

/// The query of any URL-ish string: after the first `?`, before the first `#`.
fn query_of(url: &str) -> &str {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    url.split_once('?').map_or("", |(_, query)| query)
}

/// The first value of `key` in `query` that is non-empty once decoded and trimmed.
fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key_matches = if k.contains(['%', '+']) {
            decode(k) == key
        } else {
            k == key
        };
        if !key_matches {
            return None;
        }
        let value = decode(v);
        let trimmed = value.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == value.len() {
            Some(value)
        } else {
            Some(String::from(trimmed))
        }
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; an invalid
/// escape (`%zz`, a truncated `%4`) stays as written, and invalid UTF-8 becomes U+FFFD.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(b: &u8) -> Option<u8> {
    match *b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(url: &'a str, referrer: &'a str) -> PageSnapshot<'a> {
        PageSnapshot { url, referrer }
    }

    const LANDING: &str = "https://shop.example.com/products/1";

    /// The provider named for a visit from `referrer` to [`LANDING`].
    fn from(referrer: &str) -> Option<String> {
        classify(&page(LANDING, referrer), &[]).map(|r| r.provider)
    }

    /// The provider named by `utm_source=<source>` with no referrer.
    fn from_utm(source: &str) -> Option<AiReferral> {
        let mut url = String::from("https://shop.example.com/?utm_source=");
        url.push_str(source);
        classify(&page(&url, ""), &[])
    }

    /// One table row: every referrer names `name` (also from a subdomain, when the row has no
    /// path), and so does every utm source, in any case, with `referrer_url` "".
    fn row(name: &str, referrers: &[&str], utm_sources: &[&str]) {
        for r in referrers {
            let hit = classify(&page(LANDING, r), &[]).expect(r);
            assert_eq!(hit.provider, name, "{r}");
            assert_eq!(hit.referrer_url, *r);
            assert_eq!(hit.landing_url, LANDING);
        }
        for s in utm_sources {
            for variant in [s.to_string(), s.to_uppercase()] {
                let hit = from_utm(&variant).expect(s);
                assert_eq!(hit.provider, name, "utm_source={variant}");
                assert_eq!(hit.referrer_url, "");
            }
        }
        // The table has exactly these utm sources for this name.
        let mut table: Vec<&str> = PROVIDERS
            .iter()
            .filter(|p| p.name == name)
            .flat_map(|p| p.utm_sources.iter().copied())
            .collect();
        let mut expected = utm_sources.to_vec();
        table.sort_unstable();
        expected.sort_unstable();
        assert_eq!(table, expected, "utm sources of {name}");
    }

    #[test]
    fn chatgpt() {
        row(
            "chatgpt",
            &[
                "https://chatgpt.com/",
                "https://www.chatgpt.com/c/123",
                "https://chat.openai.com/",
                "https://chat.openai.com/share/abc",
            ],
            &["chatgpt.com", "chatgpt", "openai"],
        );
    }

    #[test]
    fn perplexity() {
        row(
            "perplexity",
            &[
                "https://perplexity.ai/",
                "https://www.perplexity.ai/search/x",
            ],
            &["perplexity", "perplexity.ai"],
        );
    }

    #[test]
    fn claude() {
        row(
            "claude",
            &["https://claude.ai/", "https://claude.ai/chat/1"],
            &["claude.ai", "claude"],
        );
    }

    #[test]
    fn gemini() {
        row(
            "gemini",
            &[
                "https://gemini.google.com/",
                "https://gemini.google.com/app/1",
                "https://bard.google.com/",
            ],
            &["gemini", "gemini.google.com", "bard"],
        );
        // Other Google hosts are not Gemini.
        assert_eq!(from("https://www.google.com/"), None);
        assert_eq!(from("https://google.com/"), None);
    }

    #[test]
    fn grok() {
        row(
            "grok",
            &["https://grok.com/", "https://www.grok.com/chat/1"],
            &["grok", "grok.com"],
        );
    }

    #[test]
    fn grok_on_x() {
        for r in [
            "https://x.com/i/grok",
            "https://x.com/i/grok?conversation=123",
            "https://x.com/i/grok/share/abc",
            "https://x.com/i/grok#top",
            "https://mobile.x.com/i/grok",
            "https://X.COM/i/grok",
        ] {
            assert_eq!(from(r).as_deref(), Some("grok"), "{r}");
        }
        for r in [
            "https://x.com/i/grokky",
            "https://x.com/home",
            "https://x.com/",
            "https://x.com",
            "https://x.com/i/",
            "https://x.com/someone/status/1?q=/i/grok",
            "https://x.com/x/i/grok",
            "https://notx.com/i/grok",
            "https://x.com.evil.net/i/grok",
        ] {
            assert_eq!(from(r), None, "{r}");
        }
    }

    #[test]
    fn copilot() {
        row(
            "copilot",
            &[
                "https://copilot.microsoft.com/",
                "https://copilot.microsoft.com/chats/1",
            ],
            &["copilot.com", "copilot", "copilot.microsoft.com"],
        );
        assert_eq!(from("https://www.microsoft.com/"), None);
    }

    #[test]
    fn deepseek() {
        row(
            "deepseek",
            &[
                "https://chat.deepseek.com/",
                "https://chat.deepseek.com/a/chat/s/1",
            ],
            &["deepseek", "chat.deepseek.com"],
        );
        assert_eq!(from("https://deepseek.com/"), None);
    }

    #[test]
    fn meta_ai() {
        row(
            "meta_ai",
            &["https://meta.ai/", "https://www.meta.ai/c/1"],
            &["meta.ai", "metaai"],
        );
    }

    #[test]
    fn mistral() {
        row(
            "mistral",
            &["https://chat.mistral.ai/", "https://chat.mistral.ai/chat/1"],
            &["mistral", "chat.mistral.ai", "lechat"],
        );
        assert_eq!(from("https://mistral.ai/"), None);
    }

    #[test]
    fn you() {
        row(
            "you",
            &["https://you.com/", "https://you.com/search?q=x"],
            &["you.com"],
        );
        assert_eq!(from_utm("you"), None);
    }

    #[test]
    fn poe() {
        row(
            "poe",
            &["https://poe.com/", "https://poe.com/chat/1"],
            &["poe", "poe.com"],
        );
    }

    #[test]
    fn phind() {
        row(
            "phind",
            &["https://phind.com/", "https://www.phind.com/search?q=x"],
            &["phind", "phind.com"],
        );
    }

    #[test]
    fn table_is_consistent() {
        let names = [
            "chatgpt",
            "perplexity",
            "claude",
            "gemini",
            "grok",
            "copilot",
            "deepseek",
            "meta_ai",
            "mistral",
            "you",
            "poe",
            "phind",
        ];
        for p in PROVIDERS {
            assert!(names.contains(&p.name), "{}", p.name);
            let as_custom = CustomProvider {
                name: p.name.to_string(),
                hosts: p.hosts.iter().map(|h| h.to_string()).collect(),
                path_prefix: p.path_prefix.map(String::from),
                utm_sources: p.utm_sources.iter().map(|s| s.to_string()).collect(),
            };
            assert_eq!(check_custom(&as_custom), Ok(()), "{}", p.name);
            for h in p.hosts {
                assert_eq!(*h, h.to_ascii_lowercase());
            }
        }
        for name in names {
            assert!(PROVIDERS.iter().any(|p| p.name == name), "{name}");
        }
    }

    #[test]
    fn lookalike_hosts_do_not_match() {
        for r in [
            "https://evilchatgpt.com/",
            "https://chatgpt.com.evil.net/",
            "https://chatgpt.co/",
            "https://chat.openai.com.attacker.io/",
            "https://openai.com/",
            "https://notclaude.ai/",
            "https://claude.ai.evil/",
            "https://claude.aix/",
            "https://laude.ai/",
            "https://xperplexity.ai/",
            "https://perplexity.ai-search.com/",
            "https://chatgpt-com.evil.net/",
            "https://chatgpt%2ecom/",
            "https://evil.net/chatgpt.com",
            "https://evil.net/?r=https://chatgpt.com/",
        ] {
            assert_eq!(from(r), None, "{r}");
        }
    }

    #[test]
    fn hosts_are_case_insensitive() {
        assert_eq!(from("HTTPS://ChatGPT.COM/").as_deref(), Some("chatgpt"));
        assert_eq!(
            from("https://Chat.OpenAI.Com/x").as_deref(),
            Some("chatgpt")
        );
        assert_eq!(
            from("Https://WWW.Perplexity.AI").as_deref(),
            Some("perplexity")
        );
    }

    #[test]
    fn ports_are_ignored() {
        assert_eq!(from("https://claude.ai:443/").as_deref(), Some("claude"));
        assert_eq!(
            from("http://perplexity.ai:8080/x").as_deref(),
            Some("perplexity")
        );
        assert_eq!(from("https://claude.ai:/").as_deref(), Some("claude"));
        // A port that is not a number is not a URL: no referral (and no utm here).
        assert_eq!(from("https://claude.ai:abc/"), None);
        assert_eq!(from("https://claude.ai:44x3/"), None);
    }

    #[test]
    fn userinfo_is_not_the_host() {
        assert_eq!(from("https://chatgpt.com@evil.com/"), None);
        assert_eq!(from("https://chatgpt.com:pw@evil.com/"), None);
        assert_eq!(from("https://a@chatgpt.com@evil.com/"), None);
        assert_eq!(
            from("https://evil.com@chatgpt.com/").as_deref(),
            Some("chatgpt")
        );
        assert_eq!(
            from("https://user:pw@claude.ai/").as_deref(),
            Some("claude")
        );
        // The authority ends at the first / \ ? #, so an @ after it is not userinfo.
        assert_eq!(from("https://evil.com/@chatgpt.com"), None);
        assert_eq!(from("https://evil.com\\@chatgpt.com"), None);
        assert_eq!(from("https://evil.com?@chatgpt.com"), None);
        assert_eq!(from("https://evil.com#@chatgpt.com"), None);
        // Nothing after the @.
        assert_eq!(from("https://chatgpt.com@/"), None);
    }

    #[test]
    fn trailing_dots() {
        assert_eq!(from("https://chatgpt.com./").as_deref(), Some("chatgpt"));
        assert_eq!(
            from("https://www.perplexity.ai./x").as_deref(),
            Some("perplexity")
        );
        assert_eq!(from("https://x.com./i/grok").as_deref(), Some("grok"));
        assert_eq!(from("https://chatgpt.com:443./"), None);
        assert_eq!(from("https://chatgpt.com../"), None);
        assert_eq!(from("https://./"), None);
    }

    #[test]
    fn url_shapes() {
        assert_eq!(from("https://claude.ai").as_deref(), Some("claude"));
        assert_eq!(from("https://claude.ai?x=1").as_deref(), Some("claude"));
        assert_eq!(from("https://claude.ai#x").as_deref(), Some("claude"));
        assert_eq!(from("  https://claude.ai/  ").as_deref(), Some("claude"));
        assert_eq!(from("https:\\\\claude.ai\\x").as_deref(), Some("claude"));
        assert_eq!(from("http://[::1]:8080/"), None);
        assert_eq!(from("http://[::1/"), None);
        assert_eq!(from("https://"), None);
        assert_eq!(from("https:"), None);
        let u = parse_http("https://u@Claude.AI.:8443/a/b?q=1&x#frag?y").unwrap();
        assert_eq!(
            u,
            Url {
                host: "claude.ai".into(),
                path: "/a/b",
                query: "q=1&x"
            }
        );
        let u = parse_http("http://[2001:DB8::1]:80").unwrap();
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.path, "/");
    }

    #[test]
    fn same_site_referrer_never_counts() {
        let hit = |url, referrer| classify(&page(url, referrer), &[]);
        assert_eq!(
            hit("https://chatgpt.com/pricing", "https://chatgpt.com/"),
            None
        );
        assert_eq!(
            hit("https://chatgpt.com/pricing", "https://CHATGPT.com.:443/"),
            None
        );
        // Even with a utm_source on the landing URL: an internal navigation is not a referral.
        assert_eq!(
            hit(
                "https://claude.ai/x?utm_source=chatgpt",
                "https://claude.ai/"
            ),
            None
        );
        // Another host of the same provider is another site.
        assert_eq!(
            hit("https://www.chatgpt.com/", "https://chatgpt.com/")
                .map(|r| r.provider)
                .as_deref(),
            Some("chatgpt")
        );
        // The site's own host is not special for other referrers.
        assert!(hit("https://shop.example.com/", "https://claude.ai/").is_some());
    }

    #[test]
    fn non_http_referrers_do_not_count() {
        for r in [
            "android-app://com.openai.chatgpt/",
            "android-app://com.openai.chatgpt/https/chatgpt.com/",
            "javascript:alert('https://chatgpt.com/')",
            "ftp://chatgpt.com/",
            "file:///chatgpt.com/",
            "data:text/html,https://chatgpt.com",
            "chatgpt.com",
            "//chatgpt.com/",
            "about:blank",
        ] {
            assert_eq!(from(r), None, "{r}");
        }
        // Like an empty referrer, they leave it to utm_source.
        let hit = classify(
            &page(
                "https://shop.example.com/?utm_source=chatgpt.com",
                "android-app://com.openai.chatgpt/",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(hit.provider, "chatgpt");
        assert_eq!(hit.referrer_url, "");
    }

    #[test]
    fn utm_fallback() {
        let hit = |url, referrer| classify(&page(url, referrer), &[]).map(|r| r.provider);
        let url = "https://shop.example.com/a?x=1&utm_source=ChatGPT.com&utm_medium=referral";
        assert_eq!(hit(url, "").as_deref(), Some("chatgpt"));
        assert_eq!(hit(url, "   ").as_deref(), Some("chatgpt"));
        assert_eq!(hit(url, "not a url").as_deref(), Some("chatgpt"));
        // Percent-encoded, '+' and surrounding spaces.
        assert_eq!(
            hit("https://s.example/?utm_source=chat%67pt%2Ecom", "").as_deref(),
            Some("chatgpt")
        );
        assert_eq!(
            hit("https://s.example/?utm_source=+claude+", "").as_deref(),
            Some("claude")
        );
        assert_eq!(
            hit("https://s.example/?utm%5Fsource=perplexity", "").as_deref(),
            Some("perplexity")
        );
        // The first non-empty utm_source decides.
        assert_eq!(
            hit(
                "https://s.example/?utm_source=&utm_source=poe&utm_source=phind",
                ""
            )
            .as_deref(),
            Some("poe")
        );
        // An http(s) referrer of another site wins over utm_source: no referral.
        assert_eq!(hit(url, "https://www.google.com/"), None);
        // Unknown, empty, in the fragment, or not utm_source.
        for url in [
            "https://s.example/?utm_source=newsletter",
            "https://s.example/?utm_source=",
            "https://s.example/?utm_source",
            "https://s.example/#?utm_source=chatgpt",
            "https://s.example/?utm_medium=chatgpt",
            "https://s.example/?UTM_SOURCE=chatgpt",
            "https://s.example/?utm_source=chatgpt.comx",
            "https://s.example/",
            "",
        ] {
            assert_eq!(hit(url, ""), None, "{url}");
        }
    }

    #[test]
    fn referral_fields() {
        let url = "https://shop.example.com/p?utm_source=chatgpt.com";
        let referrer = "https://chatgpt.com/";
        assert_eq!(
            classify(&page(url, referrer), &[]),
            Some(AiReferral {
                provider: "chatgpt".into(),
                query_hint: None,
                landing_url: url.into(),
                referrer_url: referrer.into(),
            })
        );
        assert_eq!(
            classify(&page(url, "  "), &[]).unwrap().referrer_url,
            "",
            "the utm fallback never reports a referrer"
        );
    }

    fn hint(url: &str, referrer: &str) -> Option<String> {
        classify(&page(url, referrer), &[]).unwrap().query_hint
    }

    #[test]
    fn query_hint_sources() {
        let land = "https://s.example/";
        assert_eq!(
            hint(land, "https://perplexity.ai/search?q=best+running+shoes").as_deref(),
            Some("best running shoes")
        );
        assert_eq!(
            hint(land, "https://perplexity.ai/search?query=trail%20shoes").as_deref(),
            Some("trail shoes")
        );
        let r = "https://claude.ai/";
        assert_eq!(
            hint("https://s.example/?q=red+socks", r).as_deref(),
            Some("red socks")
        );
        assert_eq!(
            hint("https://s.example/?query=blue%2Bsocks", r).as_deref(),
            Some("blue+socks")
        );
        assert_eq!(
            hint("https://s.example/?utm_term=green+socks", r).as_deref(),
            Some("green socks")
        );
        // With the utm fallback, from the landing URL.
        assert_eq!(
            hint(
                "https://s.example/?utm_source=chatgpt.com&q=%C3%A9t%C3%A9",
                ""
            )
            .as_deref(),
            Some("été")
        );
        assert_eq!(hint(land, r), None);
        assert_eq!(hint("https://s.example/?q=&query=+++", r), None);
        assert_eq!(hint("https://s.example/#q=x", r), None);
    }

    #[test]
    fn query_hint_precedence() {
        let all = "?q=lq&query=lquery&utm_term=lterm";
        let mut land = String::from("https://s.example/");
        land.push_str(all);
        let cases = [
            ("https://perplexity.ai/s?query=rquery&q=rq", "rq"),
            ("https://perplexity.ai/s?q=&query=rquery", "rquery"),
            ("https://perplexity.ai/s?q=+&query=", "lq"),
            ("https://perplexity.ai/s", "lq"),
        ];
        for (referrer, expected) in cases {
            assert_eq!(
                hint(&land, referrer).as_deref(),
                Some(expected),
                "{referrer}"
            );
        }
        let r = "https://perplexity.ai/";
        assert_eq!(
            hint("https://s.example/?query=lquery&utm_term=t", r).as_deref(),
            Some("lquery")
        );
        assert_eq!(
            hint("https://s.example/?q=%20&utm_term=t", r).as_deref(),
            Some("t")
        );
        // The first non-empty value of a repeated key.
        assert_eq!(
            hint("https://s.example/?q=&q=two&q=three", r).as_deref(),
            Some("two")
        );
    }

    #[test]
    fn query_hint_is_trimmed_and_capped() {
        let r = "https://chatgpt.com/";
        assert_eq!(
            hint("https://s.example/?q=%20%09+hello+world+%0A", r).as_deref(),
            Some("hello world")
        );
        // 300 two-byte characters: cut to 200 characters on a char boundary.
        let mut url = String::from("https://s.example/?q=");
        for _ in 0..300 {
            url.push_str("%C3%A9");
        }
        let h = hint(&url, r).unwrap();
        assert_eq!(h.chars().count(), MAX_QUERY_HINT_CHARS);
        assert!(h.chars().all(|c| c == 'é'));
        // A cut that lands after a space drops the space.
        let mut url = String::from("https://s.example/?q=");
        url.push_str(&"a".repeat(199));
        url.push_str("+bbbb");
        let h = hint(&url, r).unwrap();
        assert_eq!(h, "a".repeat(199));
        // Exactly 200 is kept whole.
        let mut url = String::from("https://s.example/?q=");
        url.push_str(&"🦀".repeat(200));
        assert_eq!(hint(&url, r).unwrap().chars().count(), 200);
    }

    #[test]
    fn utm_params_extracts_in_order() {
        let url = "https://s.example/p?utm_content=hero&utm_term=running+shoes&x=1\
                   &utm_campaign=spring%20sale&utm_medium=&utm_source=ChatGPT.com#utm_medium=frag";
        assert_eq!(
            utm_params(url),
            vec![
                ("utm_source", "ChatGPT.com".to_string()),
                ("utm_campaign", "spring sale".to_string()),
                ("utm_term", "running shoes".to_string()),
                ("utm_content", "hero".to_string()),
            ]
        );
        assert_eq!(utm_params("https://s.example/"), vec![]);
        assert_eq!(utm_params("https://s.example/?"), vec![]);
        assert_eq!(utm_params(""), vec![]);
        assert_eq!(utm_params("https://s.example/#?utm_source=x"), vec![]);
        assert_eq!(
            utm_params("?utm_medium=+&utm_medium=cpc&utm_medium=email"),
            vec![("utm_medium", "cpc".to_string())]
        );
        assert_eq!(
            utm_params("https://s.example/?utm%5Fsource=a%2Bb&utm_term"),
            vec![("utm_source", "a+b".to_string())]
        );
        // Not only http URLs: whatever the page's URL is.
        assert_eq!(
            utm_params("file:///index.html?utm_campaign=local"),
            vec![("utm_campaign", "local".to_string())]
        );
    }

    #[test]
    fn decoding_keeps_invalid_escapes() {
        assert_eq!(decode("a%zzb"), "a%zzb");
        assert_eq!(decode("a%4"), "a%4");
        assert_eq!(decode("a%"), "a%");
        assert_eq!(decode("%%41"), "%A");
        assert_eq!(decode("%4g%41"), "%4gA");
        assert_eq!(decode("a+b%2B%20c"), "a b+ c");
        assert_eq!(decode("%e2%82%ac"), "€");
        assert_eq!(decode("%C3%28"), "\u{FFFD}(");
        assert_eq!(decode("%FF%FE"), "\u{FFFD}\u{FFFD}");
        assert_eq!(decode("%E2%82"), "\u{FFFD}");
        assert_eq!(decode("日本"), "日本");
        assert_eq!(
            utm_params("?utm_source=%zz&utm_medium=%4&utm_term=%C3%28"),
            vec![
                ("utm_source", "%zz".to_string()),
                ("utm_medium", "%4".to_string()),
                ("utm_term", "\u{FFFD}(".to_string()),
            ]
        );
    }

    fn custom(name: &str, hosts: &[&str], prefix: Option<&str>, utm: &[&str]) -> CustomProvider {
        CustomProvider {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            path_prefix: prefix.map(String::from),
            utm_sources: utm.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn custom_providers_override_builtins() {
        let team = [custom("chatgpt_team", &["chatgpt.com"], None, &["openai"])];
        let hit = |url, referrer| classify(&page(url, referrer), &team).map(|r| r.provider);
        assert_eq!(
            hit(LANDING, "https://chatgpt.com/").as_deref(),
            Some("chatgpt_team")
        );
        assert_eq!(
            hit(LANDING, "https://www.chatgpt.com/").as_deref(),
            Some("chatgpt_team")
        );
        // The rest of the built-in row still applies.
        assert_eq!(
            hit(LANDING, "https://chat.openai.com/").as_deref(),
            Some("chatgpt")
        );
        assert_eq!(
            hit("https://s.example/?utm_source=OpenAI", "").as_deref(),
            Some("chatgpt_team")
        );
        assert_eq!(
            hit("https://s.example/?utm_source=chatgpt", "").as_deref(),
            Some("chatgpt")
        );
        // Among custom providers, the first match wins.
        let two = [
            custom("first", &["example.ai"], None, &[]),
            custom("second", &["chat.example.ai"], None, &[]),
        ];
        assert_eq!(
            classify(&page(LANDING, "https://chat.example.ai/"), &two).map(|r| r.provider),
            Some("first".into())
        );
    }

    #[test]
    fn custom_providers_extend() {
        let list = [
            custom("acme_ai", &["Chat.Acme.Example."], None, &["AcmeAI"]),
            custom("x_notes", &["x.com"], Some("/i/notes"), &[]),
            custom("", &["blank.example"], None, &["blank"]),
        ];
        let hit = |url, referrer| classify(&page(url, referrer), &list).map(|r| r.provider);
        assert_eq!(
            hit(LANDING, "https://chat.acme.example/c/1").as_deref(),
            Some("acme_ai")
        );
        assert_eq!(
            hit(LANDING, "https://eu.chat.acme.example./").as_deref(),
            Some("acme_ai")
        );
        assert_eq!(hit(LANDING, "https://acme.example/"), None);
        assert_eq!(hit(LANDING, "https://evilchat.acme.example/"), None);
        assert_eq!(
            hit("https://s.example/?utm_source=acmeai", "").as_deref(),
            Some("acme_ai")
        );
        assert_eq!(
            hit(LANDING, "https://x.com/i/notes/7").as_deref(),
            Some("x_notes")
        );
        assert_eq!(
            hit(LANDING, "https://x.com/i/grok").as_deref(),
            Some("grok")
        );
        assert_eq!(hit(LANDING, "https://x.com/i/notesy"), None);
        // A blank name is never reported.
        assert_eq!(hit(LANDING, "https://blank.example/"), None);
        assert_eq!(hit("https://s.example/?utm_source=blank", ""), None);
        // Built-ins still work alongside.
        assert_eq!(
            hit(LANDING, "https://claude.ai/").as_deref(),
            Some("claude")
        );
        // Unchecked junk matches nothing and does not panic.
        let junk = [custom(
            "junk",
            &["", ".", "*.example.com", "https://claude.ai"],
            Some(""),
            &["", " "],
        )];
        assert_eq!(
            classify(&page(LANDING, "https://a.example.com/"), &junk),
            None
        );
        assert_eq!(
            classify(&page(LANDING, "https://claude.ai/"), &junk).map(|r| r.provider),
            Some("claude".into())
        );
        assert_eq!(
            classify(&page("https://s.example/?utm_source=+", ""), &junk),
            None
        );
    }

    #[test]
    fn check_custom_accepts_good_providers() {
        for p in [
            custom("acme_ai", &["chat.acme.example"], None, &[]),
            custom("acme", &[], None, &["acme"]),
            custom(
                "Acme AI",
                &["Chat.Acme.Example.", "acme-ai.example"],
                Some("/chat"),
                &["acme", "acme.ai"],
            ),
            custom("ip", &["10.0.0.1"], Some("/"), &[]),
            custom("puny", &["xn--bcher-kva.example"], None, &[]),
        ] {
            assert_eq!(check_custom(&p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn check_custom_rejects_bad_names_and_lists() {
        let err = |p: CustomProvider| check_custom(&p).unwrap_err();
        assert_eq!(
            err(custom("", &["a.example"], None, &[])),
            "name: expected a non-empty provider id like acme_ai"
        );
        assert!(err(custom("   ", &["a.example"], None, &[])).starts_with("name: "));
        assert!(err(custom(" acme", &["a.example"], None, &[])).starts_with("name: "));
        assert!(err(custom("ac\nme", &["a.example"], None, &[])).starts_with("name: "));
        assert_eq!(
            err(custom("acme", &[], None, &[])),
            "hosts: expected at least one host or utmSources value (both lists are empty)"
        );
        assert!(err(custom("acme", &[], Some("/chat"), &["acme"])).starts_with("pathPrefix: "));
        for prefix in ["", "chat", "/chat?x", "/chat#x", "/a b"] {
            assert!(
                err(custom("acme", &["a.example"], Some(prefix), &[])).starts_with("pathPrefix: "),
                "{prefix:?}"
            );
        }
        assert_eq!(
            err(custom("acme", &[], None, &["acme", " "])),
            "utmSources[1]: expected a non-empty utm_source value"
        );
    }

    #[test]
    fn check_custom_rejects_bad_hosts() {
        let host_err = |h: &str| check_custom(&custom("acme", &["ok.example", h], None, &[]));
        assert_eq!(
            host_err("https://chat.example.com"),
            Err("hosts[1]: expected a host name like chat.example.com, without a scheme like https://".into())
        );
        let cases = [
            ("", "not an empty string"),
            ("  ", "not an empty string"),
            ("chat.example.com/path", "path"),
            ("chat.example.com?x", "path"),
            ("*.example.com", "wildcards"),
            ("chat.*.com", "wildcards"),
            ("user@chat.example.com", "user info"),
            ("chat.example.com:443", "port"),
            ("chat example.com", "spaces"),
            (" chat.example.com", "spaces"),
            ("chat.example.com\t", "spaces"),
            ("bücher.example", "punycode"),
            ("com", "two labels"),
            ("localhost", "two labels"),
            ("chat..example.com", "letters"),
            (".example.com", "letters"),
            ("-chat.example.com", "letters"),
            ("chat-.example.com", "letters"),
            ("chat_1.example.com", "letters"),
            ("chat.example.com..", "letters"),
        ];
        for (host, why) in cases {
            let e = host_err(host).unwrap_err();
            assert!(
                e.starts_with("hosts[1]: expected a host name like chat.example.com"),
                "{host:?}: {e}"
            );
            assert!(e.contains(why), "{host:?}: {e}");
        }
        let long_label = ["a".repeat(64).as_str(), "example"].join(".");
        assert!(host_err(&long_label).is_err());
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert!(host_err(&long_name).unwrap_err().contains("253"));
    }

    #[test]
    fn indexes_render_without_format() {
        assert_eq!(indexed("hosts", 0), "hosts[0]: ");
        assert_eq!(indexed("hosts", 10), "hosts[10]: ");
        assert_eq!(indexed("x", usize::MAX), format!("x[{}]: ", usize::MAX));
    }

    /// xorshift64: deterministic pseudo-random input without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// Mostly URL-shaped pieces, sometimes raw bytes, read as lossy UTF-8.
        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "https://",
                "http://",
                "HTTPS:",
                "android-app://",
                "javascript:",
                "//",
                "\\",
                "chatgpt.com",
                "x.com",
                "/i/grok",
                "claude.ai",
                "evil.com",
                "acme.example",
                "@",
                ":",
                ":443",
                "[",
                "]",
                "::1",
                ".",
                "..",
                "/",
                "?",
                "#",
                "&",
                "=",
                "q=",
                "query=",
                "utm_source=",
                "utm_term=",
                "utm_source=chatgpt",
                "%",
                "%4",
                "%zz",
                "%C3",
                "%A9",
                "%FF",
                "+",
                " ",
                "\t",
                "é",
                "🦀",
                "\u{0}",
                "a",
                "1",
            ];
            let mut bytes = Vec::new();
            for _ in 0..self.below(24) {
                if self.below(4) == 0 {
                    for _ in 0..self.below(8) {
                        bytes.push(self.next() as u8);
                    }
                } else {
                    bytes.extend_from_slice(PIECES[self.below(PIECES.len())].as_bytes());
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let custom_list = [
            custom("acme_ai", &["acme.example"], Some("/i/"), &["acme"]),
            custom("odd", &["", "*", "é.example", "."], Some(""), &[""]),
        ];
        let mut hits = 0;
        for _ in 0..5_000 {
            let url = rng.string();
            let referrer = rng.string();
            let snapshot = page(&url, &referrer);
            if let Some(r) = classify(&snapshot, &custom_list) {
                hits += 1;
                assert_eq!(r.landing_url, url);
                assert!(r.referrer_url.is_empty() || r.referrer_url == referrer);
                if let Some(h) = &r.query_hint {
                    assert!(!h.is_empty() && h.trim() == h);
                    assert!(h.chars().count() <= MAX_QUERY_HINT_CHARS);
                }
            }
            for (_, value) in utm_params(&url) {
                assert!(!value.is_empty());
            }
            let _ = check_custom(&CustomProvider {
                name: rng.string(),
                hosts: vec![rng.string(), rng.string()],
                path_prefix: Some(rng.string()),
                utm_sources: vec![rng.string()],
            });
            let _ = parse_http(&referrer);
            let _ = decode(&url);
        }
        assert!(hits > 0, "the generator should reach the matching paths");
    }
}
