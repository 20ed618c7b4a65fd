//! Which addresses a webhook may reach. Every block of the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries whose "Globally Reachable" is false is refused, as are multicast, the
//! deprecated IPv6 site-local range and the address forms that carry an IPv4 address (mapped,
//! compatible, NAT64, 6to4), whose embedded IPv4 address decides; all unless the operator
//! allows private targets. The blocks marked globally reachable (anycast services such as AS112
//! or the PCP and TURN anycast addresses) are public and pass.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DeliveryConfig;

/// Why an address is refused, or None when it is a public address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

/// What a block of the tables below means for a target inside it.
#[derive(Clone, Copy)]
enum Rule {
    /// Refused, with this reason.
    Refuse(&'static str),
    /// A globally reachable block inside a larger refused one: public.
    Public,
    /// The IPv4 address in the last 32 bits decides (NAT64 well-known prefix, RFC 6052).
    Nat64,
    /// The IPv4 address in bits 16..48 decides (6to4, RFC 3056).
    SixToFour,
}

const PRIVATE: Rule = Rule::Refuse("a private address");
const SPECIAL: Rule = Rule::Refuse("a special-purpose address");
const DOCS: Rule = Rule::Refuse("a documentation address");

/// IPv4 blocks (base, prefix length, rule). The most specific block that holds an address
/// decides. Source: the IANA IPv4 Special-Purpose Address Registry, plus multicast
/// (224.0.0.0/4, the IPv4 Address Space Registry).
const V4_BLOCKS: &[(u32, u8, Rule)] = &[
    (0x0000_0000, 8, Rule::Refuse("an unspecified address")),
    (0x0a00_0000, 8, PRIVATE),
    (0x6440_0000, 10, Rule::Refuse("a carrier-grade NAT address")),
    (0x7f00_0000, 8, Rule::Refuse("a loopback address")),
    (0xa9fe_0000, 16, Rule::Refuse("a link-local address")),
    (0xac10_0000, 12, PRIVATE),
    (0xc000_0000, 24, SPECIAL),
    (0xc000_0009, 32, Rule::Public),
    (0xc000_000a, 32, Rule::Public),
    (0xc000_0200, 24, DOCS),
    (0xc058_6300, 24, SPECIAL),
    (0xc0a8_0000, 16, PRIVATE),
    (0xc612_0000, 15, SPECIAL),
    (0xc633_6400, 24, DOCS),
    (0xcb00_7100, 24, DOCS),
    (0xe000_0000, 4, Rule::Refuse("a multicast address")),
    (0xf000_0000, 4, Rule::Refuse("a reserved address")),
];

/// IPv6 blocks, as [`V4_BLOCKS`]. Source: the IANA IPv6 Special-Purpose Address Registry, plus
/// multicast (ff00::/8) and the deprecated site-local fec0::/10 (RFC 3879) of the IPv6 Address
/// Space Registry. IPv4-mapped and IPv4-compatible addresses are handled before the table.
const V6_BLOCKS: &[(u128, u8, Rule)] = &[
    (0, 128, Rule::Refuse("an unspecified address")),
    (1, 128, Rule::Refuse("a loopback address")),
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96, Rule::Nat64),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        Rule::Refuse("a local-use IPv4/IPv6 translation address"),
    ),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, SPECIAL),
    (0x0100_0000_0000_0001_0000_0000_0000_0000, 64, SPECIAL),
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23, SPECIAL),
    (0x2001_0001_0000_0000_0000_0000_0000_0001, 128, Rule::Public),
    (0x2001_0001_0000_0000_0000_0000_0000_0002, 128, Rule::Public),
    (0x2001_0001_0000_0000_0000_0000_0000_0003, 128, Rule::Public),
    (0x2001_0003_0000_0000_0000_0000_0000_0000, 32, Rule::Public),
    (0x2001_0004_0112_0000_0000_0000_0000_0000, 48, Rule::Public),
    (0x2001_0020_0000_0000_0000_0000_0000_0000, 28, Rule::Public),
    (0x2001_0030_0000_0000_0000_0000_0000_0000, 28, Rule::Public),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32, DOCS),
    (
        0x2002_0000_0000_0000_0000_0000_0000_0000,
        16,
        Rule::SixToFour,
    ),
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20, DOCS),
    (0x5f00_0000_0000_0000_0000_0000_0000_0000, 16, SPECIAL),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        Rule::Refuse("a unique-local (private) address"),
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        Rule::Refuse("a link-local address"),
    ),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        Rule::Refuse("a site-local address"),
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        Rule::Refuse("a multicast address"),
    ),
];

/// The rule of the most specific block holding `addr`, if any.
fn lookup<T>(blocks: &[(T, u8, Rule)], addr: T, bits: u32) -> Option<Rule>
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    blocks
        .iter()
        .filter(|(base, len, _)| {
            // Every block is at least a /1, so the shift is below the width.
            let shift = bits - u32::from(*len);
            (addr >> shift) == (*base >> shift)
        })
        .max_by_key(|(_, len, _)| *len)
        .map(|(_, _, rule)| *rule)
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    match lookup(V4_BLOCKS, u32::from(ip), 32)? {
        Rule::Refuse(why) => Some(why),
        _ => None,
    }
}

fn embedded_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        // Refused whatever it maps to: stacks differ in how they route these.
        return v4_refusal(v4).or(Some("an IPv4-mapped IPv6 address"));
    }
    let bits = u128::from(ip);
    if bits >> 32 == 0 && bits > 1 {
        // IPv4-compatible (deprecated): ::a.b.c.d
        return Some("an IPv4-compatible address");
    }
    match lookup(V6_BLOCKS, bits, 128)? {
        Rule::Refuse(why) => Some(why),
        Rule::Public => None,
        Rule::Nat64 => v4_refusal(embedded_v4(bits)),
        Rule::SixToFour => v4_refusal(embedded_v4(bits >> 80)),
    }
}

/// Checks a target before it is saved: an address literal must be public; a name must not
/// resolve (through the delivery lookup) to a refused address. A name that does not resolve now
/// is accepted (DNS may change; the check at send time decides).
pub async fn check_target(url: &str, config: &DeliveryConfig) -> Result<(), String> {
    if config.allow_private_targets {
        return Ok(());
    }
    let sample = postback_domain::delivery::webhooks::expand_tokens(
        url,
        &postback_domain::delivery::webhooks::TokenValues::sample(),
    );
    let parsed = url::Url::parse(&sample).map_err(|e| format!("url is not a valid URL ({e})"))?;
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => refuse(IpAddr::V4(ip), &ip.to_string()),
        Some(url::Host::Ipv6(ip)) => refuse(IpAddr::V6(ip), &ip.to_string()),
        Some(url::Host::Domain(name)) => {
            if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
                return Err(format!(
                    "url: {name} is a loopback address; webhooks must target a public address"
                ));
            }
            if let Ok(addrs) = config.lookup.resolve(name).await {
                for ip in addrs {
                    refuse(ip, name)?;
                }
            }
            Ok(())
        }
        None => Err("url must name a host".into()),
    }
}

fn refuse(ip: IpAddr, host: &str) -> Result<(), String> {
    match refusal(ip) {
        Some(why) if host == ip.to_string() => Err(format!(
            "url: {host} is {why}; webhooks must target a public address"
        )),
        Some(why) => Err(format!(
            "url: {host} resolves to {ip}, {why}; webhooks must target a public address"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        refusal(s.parse().expect("ip")).is_some()
    }

    #[test]
    fn private_ranges_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    /// The IANA IPv4 Special-Purpose Address Registry
    /// (https://www.iana.org/assignments/iana-ipv4-special-registry/), one row per block:
    /// block, name, "Globally Reachable" (N/A written as `-`).
    const IANA_V4: &str = "
        0.0.0.0/8          | This network                              | false
        0.0.0.0/32         | This host on this network                 | false
        10.0.0.0/8         | Private-Use                               | false
        100.64.0.0/10      | Shared Address Space                      | false
        127.0.0.0/8        | Loopback                                  | false
        169.254.0.0/16     | Link Local                                | false
        172.16.0.0/12      | Private-Use                               | false
        192.0.0.0/24       | IETF Protocol Assignments                 | false
        192.0.0.0/29       | IPv4 Service Continuity Prefix            | false
        192.0.0.8/32       | IPv4 dummy address                        | false
        192.0.0.9/32       | Port Control Protocol Anycast             | true
        192.0.0.10/32      | Traversal Using Relays around NAT Anycast | true
        192.0.0.170/32     | NAT64/DNS64 Discovery                     | false
        192.0.0.171/32     | NAT64/DNS64 Discovery                     | false
        192.0.2.0/24       | Documentation (TEST-NET-1)                | false
        192.31.196.0/24    | AS112-v4                                  | true
        192.52.193.0/24    | AMT                                       | true
        192.88.99.0/24     | Deprecated (6to4 Relay Anycast)           | -
        192.88.99.2/32     | 6a44-relay anycast address                | false
        192.168.0.0/16     | Private-Use                               | false
        192.175.48.0/24    | Direct Delegation AS112 Service           | true
        198.18.0.0/15      | Benchmarking                              | false
        198.51.100.0/24    | Documentation (TEST-NET-2)                | false
        203.0.113.0/24     | Documentation (TEST-NET-3)                | false
        240.0.0.0/4        | Reserved                                  | false
        255.255.255.255/32 | Limited Broadcast                         | false
    ";

    /// The IANA IPv6 Special-Purpose Address Registry
    /// (https://www.iana.org/assignments/iana-ipv6-special-registry/), as [`IANA_V4`].
    const IANA_V6: &str = "
        ::1/128            | Loopback Address                          | false
        ::/128             | Unspecified Address                       | false
        ::ffff:0:0/96      | IPv4-mapped Address                       | false
        64:ff9b::/96       | IPv4-IPv6 Translat.                       | true
        64:ff9b:1::/48     | IPv4-IPv6 Translat.                       | false
        100::/64           | Discard-Only Address Block                | false
        100:0:0:1::/64     | Dummy IPv6 Prefix                         | false
        2001::/23          | IETF Protocol Assignments                 | false
        2001::/32          | TEREDO                                    | -
        2001:1::1/128      | Port Control Protocol Anycast             | true
        2001:1::2/128      | Traversal Using Relays around NAT Anycast | true
        2001:1::3/128      | DNS-SD Service Registration Protocol Anycast | true
        2001:2::/48        | Benchmarking                              | false
        2001:3::/32        | AMT                                       | true
        2001:4:112::/48    | AS112-v6                                  | true
        2001:10::/28       | Deprecated (previously ORCHID)            | -
        2001:20::/28       | ORCHIDv2                                  | true
        2001:30::/28       | Drone Remote ID Protocol Entity Tags      | true
        2001:db8::/32      | Documentation                             | false
        2002::/16          | 6to4                                      | -
        2620:4f:8000::/48  | Direct Delegation AS112 Service           | true
        3fff::/20          | Documentation                             | false
        5f00::/16          | Segment Routing (SRv6) SIDs               | false
        fc00::/7           | Unique-Local                              | false
        fe80::/10          | Link-Local Unicast                        | false
    ";

    /// What the guard must do with a registry row's addresses: globally reachable blocks pass,
    /// the others are refused, and the N/A rows are decided here: the deprecated 6to4 relay
    /// anycast block and Teredo (whose IPv4 address is obfuscated) are refused, 6to4 and the
    /// well-known NAT64 prefix are decided by the IPv4 address they carry (checked apart).
    fn expect_refused(block: &str, reachable: &str) -> Option<bool> {
        match (block, reachable) {
            ("64:ff9b::/96" | "2002::/16" | "::ffff:0:0/96", _) => None,
            (_, "true") => Some(false),
            (_, "false" | "-") => Some(true),
            other => panic!("unexpected row {other:?}"),
        }
    }

    /// The first and the last address of `cidr`.
    fn ends(cidr: &str) -> (IpAddr, IpAddr) {
        let (base, len) = cidr.split_once('/').expect("cidr");
        let len: u32 = len.parse().expect("length");
        match base.parse::<IpAddr>().expect("address") {
            IpAddr::V4(v4) => {
                let host = u32::MAX.checked_shr(len).unwrap_or(0);
                let first = u32::from(v4) & !host;
                (
                    Ipv4Addr::from(first).into(),
                    Ipv4Addr::from(first | host).into(),
                )
            }
            IpAddr::V6(v6) => {
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                let first = u128::from(v6) & !host;
                (
                    Ipv6Addr::from(first).into(),
                    Ipv6Addr::from(first | host).into(),
                )
            }
        }
    }

    #[test]
    fn every_iana_special_purpose_block_is_decided_by_its_global_reachability() {
        let mut checked = 0;
        for row in IANA_V4.lines().chain(IANA_V6.lines()) {
            let cols: Vec<&str> = row.split('|').map(str::trim).collect();
            let [block, name, reachable] = cols[..] else {
                assert!(row.trim().is_empty(), "malformed row {row:?}");
                continue;
            };
            let Some(refuse) = expect_refused(block, reachable) else {
                continue;
            };
            let (first, last) = ends(block);
            for ip in [first, last] {
                assert_eq!(
                    refusal(ip).is_some(),
                    refuse,
                    "{ip} in {block} ({name}, globally reachable: {reachable}): {:?}",
                    refusal(ip)
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 2 * (26 + 25 - 3), "every row was checked");
    }

    #[test]
    fn addresses_carrying_ipv4_are_decided_by_the_ipv4_address() {
        for (ip, refused_) in [
            // Well-known NAT64 prefix (globally reachable): the embedded address decides.
            ("64:ff9b::808:808", false),
            ("64:ff9b::a00:1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::c0a8:101", true),
            // Local-use NAT64 (RFC 8215): refused whatever it carries.
            ("64:ff9b:1::808:808", true),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true),
            // 6to4: the address after 2002:
            ("2002:808:808::1", false),
            ("2002:a00:1::1", true),
            ("2002:c0a8:101::", true),
            // IPv4-mapped: refused whatever it maps to.
            ("::ffff:8.8.8.8", true),
            ("::ffff:127.0.0.1", true),
            // Teredo: refused.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", true),
        ] {
            assert_eq!(
                refused(ip),
                refused_,
                "{ip}: {:?}",
                refusal(ip.parse().expect("ip"))
            );
        }
    }

    #[test]
    fn site_local_and_the_neighbours_of_refused_blocks() {
        for ip in ["fec0::1", "feff:ffff::1", "fec0:1:2:3::4"] {
            assert_eq!(
                refusal(ip.parse().expect("ip")),
                Some("a site-local address"),
                "{ip}"
            );
        }
        // Just outside refused blocks: public.
        for ip in [
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2001:200::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "3fff:1000::1",
            "5f01::1",
            "fbff:ffff::1",
        ] {
            assert!(
                !refused(ip),
                "{ip} is public: {:?}",
                refusal(ip.parse().expect("ip"))
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!refused(ip), "{ip} should pass");
        }
    }

    fn strict() -> DeliveryConfig {
        DeliveryConfig {
            allow_private_targets: false,
            ..DeliveryConfig::default()
        }
    }

    #[tokio::test]
    async fn literal_and_localhost_targets_are_refused_at_save() {
        let strict = strict();
        assert!(check_target("http://127.0.0.1:9/x", &strict).await.is_err());
        assert!(check_target("http://[::ffff:192.168.0.1]/", &strict)
            .await
            .is_err());
        assert!(check_target("http://localhost:8080/", &strict)
            .await
            .is_err());
        let lenient = DeliveryConfig {
            allow_private_targets: true,
            ..strict.clone()
        };
        assert!(check_target("http://127.0.0.1:9/x", &lenient).await.is_ok());
        // Does not resolve here: accepted now, checked again at send time.
        assert!(
            check_target("https://your-app.com.invalid/webhook", &strict)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn names_are_checked_with_the_configured_lookup() {
        let config = DeliveryConfig {
            lookup: crate::delivery::lookup::Lookup::new(|host| {
                let ip: IpAddr = if host == "inside.example" {
                    "10.1.2.3".parse().expect("ip")
                } else {
                    "93.184.216.34".parse().expect("ip")
                };
                Box::pin(async move { Ok(vec![ip]) })
            }),
            ..strict()
        };
        let refused = check_target("https://inside.example/hook", &config)
            .await
            .expect_err("a private answer is refused");
        assert!(
            refused.contains("inside.example resolves to 10.1.2.3"),
            "{refused}"
        );
        assert!(check_target("https://outside.example/hook", &config)
            .await
            .is_ok());
    }
}
