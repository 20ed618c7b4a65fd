//! Country of an IP address from a GeoIP range file (`POSTBACK_GEOIP_CSV`): lines of
//! `first address,last address,country code`, IPv4 and IPv6 mixed, as in DB-IP's free
//! "IP to Country Lite" CSV. Loaded once into a sorted table; a look-up is a binary search.

use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct GeoIp {
    /// (first, last, ISO alpha-2), IPv4 as IPv4-mapped IPv6, sorted by first, not overlapping.
    ranges: Vec<(u128, u128, [u8; 2])>,
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl GeoIp {
    /// Parses the file's text; an error names the line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line
                .split(',')
                .map(|c| c.trim().trim_matches('"'))
                .collect();
            let bad = |what: &str| format!("line {}: {what}: {line}", i + 1);
            let [first, last, country, ..] = cols[..] else {
                return Err(bad("expected first,last,country"));
            };
            let first: IpAddr = first.parse().map_err(|_| bad("bad first address"))?;
            let last: IpAddr = last.parse().map_err(|_| bad("bad last address"))?;
            let cc = country.as_bytes();
            if cc.len() != 2 || !cc.iter().all(u8::is_ascii_alphabetic) {
                return Err(bad("country must be a two-letter code"));
            }
            let (first, last) = (key(first), key(last));
            if first > last {
                return Err(bad("first address is after last"));
            }
            ranges.push((
                first,
                last,
                [cc[0].to_ascii_uppercase(), cc[1].to_ascii_uppercase()],
            ));
        }
        ranges.sort_unstable_by_key(|r| r.0);
        Ok(Self { ranges })
    }

    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read GeoIP file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("GeoIP file {}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The country code of the range holding `ip`, if any.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let k = key(ip);
        let i = self.ranges.partition_point(|r| r.0 <= k).checked_sub(1)?;
        let (_, last, cc) = self.ranges[i];
        (k <= last).then(|| String::from_utf8_lossy(&cc).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::GeoIp;

    #[test]
    fn looks_up_v4_v6_and_edges() {
        let g = GeoIp::parse(
            "1.0.0.0,1.0.0.255,AU\n\"203.0.113.0\",\"203.0.113.255\",\"nl\"\n2001:db8::,2001:db8::ffff,DE\n",
        )
        .expect("parses");
        assert_eq!(g.len(), 3);
        let c = |ip: &str| g.country(ip.parse().expect("ip"));
        assert_eq!(c("1.0.0.0").as_deref(), Some("AU"));
        assert_eq!(c("1.0.0.255").as_deref(), Some("AU"));
        assert_eq!(c("1.0.1.0"), None);
        assert_eq!(c("203.0.113.9").as_deref(), Some("NL"));
        assert_eq!(c("::ffff:203.0.113.9").as_deref(), Some("NL"));
        assert_eq!(c("2001:db8::1").as_deref(), Some("DE"));
        assert_eq!(c("0.0.0.1"), None);
        assert!(GeoIp::parse("1.0.0.0,1.0.0.255,AUS")
            .unwrap_err()
            .contains("line 1"));
        assert!(GeoIp::parse("1.0.0.9,1.0.0.1,AU").is_err());
    }
}
