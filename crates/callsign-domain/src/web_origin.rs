//! Web origins (RFC 6454) as the browser sends them in `Origin`: `scheme://host[:port]`, lowercase, no default port,
//! no path. A client's `web_origins` and `allowed_origins` are matched against them, with Auth0's subdomain
//! wildcard (`https://*.example.com` matches `https://app.example.com`, not `https://example.com`).

/// The origin of an absolute http(s) URL (`https://App.example:443/cb?x` → `https://app.example`); None for
/// anything else (custom schemes, `null`, relative URLs, user info).
pub fn of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    // An IPv6 literal keeps its brackets; the port is what follows the last `:` after them.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority.as_str(), None),
    };
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    let host_ok = if ipv6 {
        host.len() > 2 && host[1..host.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if host.is_empty() || !host_ok {
        return None;
    }
    match port {
        None => Some(format!("{scheme}://{host}")),
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => None,
        Some(p) if p == default_port => Some(format!("{scheme}://{host}")),
        Some(p) => Some(format!("{scheme}://{host}:{p}")),
    }
}

/// Whether the `Origin` header value `origin` is the one `pattern` names (an origin, or a URL whose origin counts,
/// with an optional `*.` wildcard for subdomains as the first label of the host).
pub fn matches(pattern: &str, origin: &str) -> bool {
    let Some(origin) = of(origin) else { return false };
    if let Some(pattern) = of(pattern) {
        return pattern == origin;
    }
    // `scheme://*.rest`: the origin of `scheme://rest`, with a subdomain in front.
    let Some((scheme, rest)) = pattern.split_once("://") else { return false };
    let Some(base) = rest.strip_prefix("*.").and_then(|r| of(&format!("{scheme}://{r}"))) else { return false };
    let Some((scheme, suffix)) = base.split_once("://") else { return false };
    let Some(rest) = origin.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")) else { return false };
    // `*.example.com` (port included in `suffix`) matches `<label(s)>.example.com`, never `example.com` itself.
    rest.strip_suffix(suffix)
        .and_then(|sub| sub.strip_suffix('.'))
        .is_some_and(|sub| !sub.is_empty() && sub.split('.').all(|l| !l.is_empty() && !l.contains('*')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(of("https://App.Example/cb?x=1").as_deref(), Some("https://app.example"));
        assert_eq!(of("https://app.example:443").as_deref(), Some("https://app.example"));
        assert_eq!(of("http://localhost:3000/").as_deref(), Some("http://localhost:3000"));
        assert_eq!(of("http://[::1]:8080/x").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(of("http://[::1]").as_deref(), Some("http://[::1]"));
        for bad in [
            "null",
            "app.example",
            "com.example.app://cb",
            "https://",
            "https://u@app.example",
            "https://a:b",
            "https://a.example;script-src",
            "https://*.example",
            "https://a,b",
        ] {
            assert_eq!(of(bad), None, "{bad}");
        }
    }

    #[test]
    fn patterns_match_exact_origins_and_subdomain_wildcards() {
        assert!(matches("https://app.example", "https://app.example"));
        assert!(matches("https://app.example/", "https://app.example"));
        assert!(matches("https://app.example:443", "https://app.example"));
        assert!(!matches("https://app.example", "http://app.example"));
        assert!(!matches("https://app.example", "https://app.example:8443"));
        assert!(!matches("https://app.example", "https://evil.example"));
        assert!(matches("https://*.example.com", "https://a.example.com"));
        assert!(matches("https://*.example.com", "https://a.b.example.com"));
        assert!(!matches("https://*.example.com", "https://example.com"));
        assert!(!matches("https://*.example.com", "https://aexample.com"));
        assert!(!matches("https://*.example.com", "http://a.example.com"));
        assert!(!matches("https://*.example.com:8443", "https://a.example.com"));
        assert!(!matches("https://app.example", "null"));
    }
}
