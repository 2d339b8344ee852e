//! Reading and writing cookies without a cookie crate: names and values here are ours (base64url tokens).
use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// The first value of cookie `name` in the request.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the login flow comes back by top-level navigation), Secure when the
/// public URL is https. `max_age_secs = 0` deletes it.
pub fn set(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    c
}

pub fn clear(name: &str, path: &str, secure: bool) -> String {
    set(name, "", path, 0, secure)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_the_named_cookie_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; cs_login=abc"));
        h.append(COOKIE, HeaderValue::from_static("cs_dash=xyz"));
        assert_eq!(get(&h, "cs_login").as_deref(), Some("abc"));
        assert_eq!(get(&h, "cs_dash").as_deref(), Some("xyz"));
        assert_eq!(get(&h, "cs"), None);
    }

    #[test]
    fn secure_flag_follows_the_public_url() {
        assert!(set("n", "v", "/", 60, true).ends_with("; Secure"));
        assert!(!set("n", "v", "/", 60, false).contains("Secure"));
        assert!(clear("n", "/", false).contains("Max-Age=0"));
    }
}
