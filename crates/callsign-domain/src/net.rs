//! IP addresses and networks: the CIDR blocks of `trusted_proxies` and of the attack-protection allowlists.
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`), or one address (`192.0.2.7`, a /32 or /128). Host bits
/// after the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`). IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`) are
/// taken as the IPv4 address they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a text is not a [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IPv4 or IPv6 address or CIDR block")]
pub struct NotACidr(pub String);

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(value: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u32::from(width - prefix);
    (value >> keep) << keep
}

impl Cidr {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.net.is_ipv4() {
            return false;
        }
        let (value, width) = bits(ip);
        let (net, _) = bits(self.net);
        mask(value, width, self.prefix) == net
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl FromStr for Cidr {
    type Err = NotACidr;
    fn from_str(s: &str) -> Result<Self, NotACidr> {
        let bad = || NotACidr(s.to_owned());
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let ip: IpAddr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let (value, width) = bits(ip);
        let prefix = match prefix {
            None => width,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().ok().filter(|n| *n <= width).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        let net = match ip {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(mask(value, width, prefix) as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(mask(value, width, prefix))),
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Whether any of `nets` contains `ip`.
pub fn any_contains(nets: &[Cidr], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.200.0.1")) && !n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.9.9.9")), "an IPv4-mapped address is its IPv4 address");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.prefix(), 32);
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")) && !v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("::1")));
        assert!(any_contains(&[one, v6], ip("2001:db8::5")));
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "::1/129", "10.0.0.0/", "10.0.0.0/-1", "example.com", "1.2.3.4/ 8"] {
            assert_eq!(bad.parse::<Cidr>(), Err(NotACidr(bad.to_owned())), "{bad}");
        }
    }
}
