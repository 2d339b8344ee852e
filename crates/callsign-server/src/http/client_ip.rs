//! The client's address. Without `trusted_proxies` it is the connection's peer, whatever headers say. When the
//! peer is one of the trusted proxies, `X-Forwarded-For` (every such header, in order) or else `Forwarded`
//! (`for=` of each element) is read **right to left**: each proxy appends the address it got the request from, so
//! the first address from the right that is not a trusted proxy is the client. An address a client wrote itself
//! sits to the left of that and is never reached. A hop that cannot be read stops the walk at the last good one.
//! The result is put in every request's extensions as [`ClientIp`] (see [`resolve_layer`]); `RequestMeta` reads it.
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use callsign_domain::net::{Cidr, any_contains};

use super::PeerAddr;

/// The client's address as resolved for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The addresses the forwarding headers list, left to right (`None` for one that cannot be read).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    if !xff.is_empty() {
        return xff.iter().flat_map(|v| v.split(',')).map(|h| parse_hop(h.trim())).collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').map(str::trim).find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical());
    }
    let (ip, port) = h.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client of a request that came from `peer` with `headers`, behind `trusted` proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !any_contains(trusted, peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_hops(headers).into_iter().rev() {
        let Some(ip) = hop else { break };
        client = ip;
        if !any_contains(trusted, ip) {
            break;
        }
    }
    client
}

/// Middleware: resolve the client's address once per request and keep it as [`ClientIp`].
pub async fn resolve_layer(State(trusted): State<Arc<Vec<Cidr>>>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(PeerAddr(peer))) = req.extensions().get::<ConnectInfo<PeerAddr>>().copied() {
        let ip = resolve(peer.ip(), req.headers(), &trusted);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(resolve(ip("203.0.113.9"), &h, &[]), ip("203.0.113.9"));
        assert_eq!(resolve(ip("203.0.113.9"), &h, &nets(&["10.0.0.0/8"])), ip("203.0.113.9"), "not a proxy");
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.7"]);
        // A client that wrote its own X-Forwarded-For: the proxy appended the real address; the spoof is skipped.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.20")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.20"));
        // Two proxies: the second one's address is skipped too.
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.20, 192.0.2.7")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.20"));
        // Only proxies: the leftmost is as far as it goes.
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(resolve(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        // Garbage stops the walk at the last address that could be read.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, not-an-ip, 10.3.3.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("10.3.3.3"));
        // Forwarded (RFC 7239), with ports, quotes and IPv6.
        let h = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https, for=192.0.2.7:80"#)]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("2001:db8::1"));
        // X-Forwarded-For wins over Forwarded.
        let h = headers(&[("forwarded", "for=5.5.5.5"), ("x-forwarded-for", "198.51.100.3")]);
        assert_eq!(resolve(ip("10.0.0.2"), &h, &trusted), ip("198.51.100.3"));
        // An IPv4-mapped peer counts as its IPv4 address.
        let h = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(resolve(ip("::ffff:10.0.0.2"), &h, &trusted), ip("198.51.100.4"));
    }
}
