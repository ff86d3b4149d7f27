//! Parsing of origins and of allowlist entries, and matching between them.
//!
//! An origin is `scheme://host[:port]` with scheme `http` or `https`, no path, query or
//! fragment. Hosts compare case-insensitively; an absent port is the scheme's default. An
//! allowlist entry may have a host `*.` + at least two labels, which matches exactly one
//! non-empty DNS label in front of the rest.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(Origin),
    /// `scheme://*.base[:port]`.
    Wildcard {
        scheme: String,
        base: String,
        port: u16,
    },
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn valid_dns_host(h: &str) -> bool {
    h.len() <= 253 && h.split('.').all(valid_label)
}

fn valid_ipv6_literal(h: &str) -> bool {
    // `[` ... `]`, with hex digits, colons and dots (an embedded IPv4) inside.
    let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    inner.contains(':')
        && inner
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
}

/// Splits `scheme://host[:port]` into a lowercase scheme, a lowercase host and a port.
fn split(s: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.is_empty()
        || rest.chars().any(|c| {
            matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace() || c.is_control()
        })
    {
        return None;
    }
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']')?;
        let (h, after) = rest.split_at(end + 1);
        (h, after)
    } else {
        match rest.find(':') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        }
    };
    let port = if port.is_empty() {
        default_port
    } else {
        let digits = port.strip_prefix(':')?;
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let p: u32 = digits.parse().ok()?;
        if p == 0 || p > 65535 {
            return None;
        }
        p as u16
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// Parses a request's `Origin` header value (never a wildcard; `null` is not an origin).
pub fn parse_origin(s: &str) -> Option<Origin> {
    let (scheme, host, port) = split(s)?;
    if !(valid_dns_host(&host) || valid_ipv6_literal(&host)) {
        return None;
    }
    Some(Origin { scheme, host, port })
}

/// Parses an allowlist entry.
pub fn parse_pattern(s: &str) -> Option<Pattern> {
    let (scheme, host, port) = split(s)?;
    if let Some(base) = host.strip_prefix("*.") {
        if base.split('.').count() < 2 || !valid_dns_host(base) {
            return None;
        }
        return Some(Pattern::Wildcard {
            scheme,
            base: base.to_string(),
            port,
        });
    }
    if !(valid_dns_host(&host) || valid_ipv6_literal(&host)) {
        return None;
    }
    Some(Pattern::Exact(Origin { scheme, host, port }))
}

impl Pattern {
    pub fn matches(&self, o: &Origin) -> bool {
        match self {
            Pattern::Exact(p) => p == o,
            Pattern::Wildcard { scheme, base, port } => {
                if *scheme != o.scheme || *port != o.port {
                    return false;
                }
                let Some(label) = o
                    .host
                    .strip_suffix(base.as_str())
                    .and_then(|l| l.strip_suffix('.'))
                else {
                    return false;
                };
                !label.is_empty() && !label.contains('.')
            }
        }
    }
}

/// Whether the `Origin` header value (if any) matches one of the allowlist entries.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    let Some(o) = origin.and_then(parse_origin) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|e| parse_pattern(e))
        .any(|p| p.matches(&o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origin: &str, entry: &str) -> bool {
        origin_allowed(Some(origin), &[entry.to_string()])
    }

    #[test]
    fn entries() {
        for ok in [
            "https://shop.acme.com",
            "https://*.acme.com",
            "http://localhost:5173",
            "http://127.0.0.1:8787",
            "HTTPS://Shop.Acme.COM:443",
            "http://[::1]:3000",
        ] {
            assert!(parse_pattern(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "null",
            "*",
            "shop.acme.com",
            "ftp://acme.com",
            "https://acme.com/",
            "https://acme.com/path",
            "https://acme.com?q",
            "https://acme.com#f",
            "https://*.com",
            "https://*acme.com",
            "https://shop.*.acme.com",
            "https://*.*.acme.com",
            "https://acme.com:",
            "https://acme.com:0",
            "https://acme.com:65536",
            "https://user@acme.com",
            "https://acme..com",
            "https://acme.com.",
            "https:// acme.com",
        ] {
            assert!(parse_pattern(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        assert!(allowed("https://shop.acme.com", "https://shop.acme.com"));
        assert!(allowed("https://SHOP.acme.com", "https://shop.ACME.com"));
        assert!(allowed("https://a.com:443", "https://a.com"));
        assert!(allowed("https://a.com", "https://a.com:443"));
        assert!(allowed("http://a.com:80", "http://a.com"));
        assert!(!allowed("https://a.com:8443", "https://a.com"));
        assert!(!allowed("http://a.com", "https://a.com"));
        assert!(allowed("https://shop.acme.com", "https://*.acme.com"));
        assert!(!allowed("https://acme.com", "https://*.acme.com"));
        assert!(!allowed("https://a.b.acme.com", "https://*.acme.com"));
        assert!(!allowed("https://evilacme.com", "https://*.acme.com"));
        assert!(!allowed("https://acme.com.evil.com", "https://*.acme.com"));
        assert!(!allowed("http://shop.acme.com", "https://*.acme.com"));
        assert!(!allowed("https://.acme.com", "https://*.acme.com"));
        assert!(!allowed("null", "https://*.acme.com"));
        assert!(!origin_allowed(None, &["https://a.com".to_string()]));
        assert!(!allowed("https://*.acme.com", "https://*.acme.com"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn originish() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "(https?|HTTP|ftp)://(\\*\\.)?[a-zA-Z0-9.\\[\\]:-]{0,20}(:[0-9]{0,6})?[/?#@ ]?",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(o in originish(), allowed in proptest::collection::vec(originish(), 0..4)) {
            let _ = parse_origin(&o);
            let _ = parse_pattern(&o);
            let _ = origin_allowed(Some(&o), &allowed);
        }

        #[test]
        fn an_origin_matches_itself(host in "[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){0,3}", https in any::<bool>(), port in proptest::option::of(1u16..)) {
            let scheme = if https { "https" } else { "http" };
            let o = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            prop_assert!(origin_allowed(Some(&o), std::slice::from_ref(&o)));
            prop_assert!(origin_allowed(Some(&o.to_ascii_uppercase()), &[o]));
        }

        #[test]
        fn a_wildcard_matches_exactly_one_label(
            labels in proptest::collection::vec("[a-z0-9]{1,6}", 0..4),
            base in "[a-z0-9]{1,6}\\.[a-z]{2,4}",
        ) {
            let pattern = format!("https://*.{base}");
            let origin = if labels.is_empty() {
                format!("https://{base}")
            } else {
                format!("https://{}.{base}", labels.join("."))
            };
            prop_assert_eq!(origin_allowed(Some(&origin), &[pattern]), labels.len() == 1);
        }
    }
}
