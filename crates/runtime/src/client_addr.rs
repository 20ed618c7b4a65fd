//! Who is asking: the client's address, believed from `X-Forwarded-For` only when the request
//! comes through a proxy the operator trusts (`POSTBACK_TRUSTED_PROXIES`), and the bucket rate
//! limits count it in (an IPv4 address, or an IPv6 /64: one subscriber's whole network).

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed (empty: none; the peer is the client).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDRs (`10.0.0.0/8, fd00::/8`) or single addresses.
    fn from_str(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => part.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("{part:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8")
                })?,
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }
}

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
/// address in `X-Forwarded-For` (read from the right) that is not itself a trusted proxy.
/// Addresses a client wrote further left are never believed.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage from the client's side: the last address believed is the client.
            break;
        };
        client = canonical(ip);
        if !trusted.contains(client) {
            break;
        }
    }
    Some(client)
}

/// `203.0.113.7`, `203.0.113.7:5123`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The bucket an address is counted in: IPv4 addresses one by one, IPv6 by /64 (a single
/// subscriber usually holds a whole /64, so counting addresses one by one counts nothing).
pub fn bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// [`bucket`] of [`client_ip`], or `"unknown"` when the peer is not known (a Unix socket).
pub fn client_bucket(req: &HttpRequest, trusted: &TrustedProxies) -> String {
    client_ip(req, trusted).map_or_else(|| "unknown".to_owned(), bucket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: &[&str]) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        for v in xff {
            r = r.append_header(("X-Forwarded-For", *v));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        // A direct client cannot choose its address.
        let direct = req("198.51.100.9:4000", &["203.0.113.7"]);
        assert_eq!(
            client_ip(&direct, &trusted),
            Some("198.51.100.9".parse().unwrap())
        );
        // Through the proxy: the proxy's view of the client, not what the client wrote.
        let proxied = req("10.1.2.3:4000", &["6.6.6.6, 203.0.113.7"]);
        assert_eq!(
            client_ip(&proxied, &trusted),
            Some("203.0.113.7".parse().unwrap())
        );
        // Two trusted hops in a row are skipped.
        let chained = req("10.1.2.3:4000", &["203.0.113.7", "10.9.9.9"]);
        assert_eq!(
            client_ip(&chained, &trusted),
            Some("203.0.113.7".parse().unwrap())
        );
        // Without trusted proxies the header means nothing.
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(&proxied, &none),
            Some("10.1.2.3".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn ipv6_clients_are_counted_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            bucket("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            bucket("2001:db8:1:2:ffff:1:2:3".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            bucket("2001:db8:1:3::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(bucket("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
