//! Which addresses a webhook may reach. Loopback, private, link-local, CGNAT, multicast and
//! other special-purpose ranges are refused, for IPv4 and IPv6 alike (IPv4 inside IPv6 is
//! unwrapped first), unless the operator allows private targets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DeliveryConfig;

/// Why an address is refused, or None when it is a public address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a carrier-grade NAT address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("a reserved address")
    } else if (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
    {
        Some("a special-purpose address")
    } else {
        None
    }
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        // Refused whatever it maps to: stacks differ in how they route these.
        return v4_refusal(v4).or(Some("an IPv4-mapped IPv6 address"));
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a unique-local (private) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64: the IPv4 address is in the last 32 bits.
        v4_refusal(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
    } else if s[0] == 0x2002 {
        // 6to4: the IPv4 address follows the prefix.
        v4_refusal(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
        // IPv4-compatible (deprecated): ::a.b.c.d
        Some("an IPv4-compatible address")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// Checks a target before it is saved: an address literal must be public; a name must not
/// resolve (through the delivery lookup) to a refused address. A name that does not resolve now
/// is accepted (DNS may change; the check at send time decides).
pub async fn check_target(url: &str, config: &DeliveryConfig) -> Result<(), String> {
    if config.allow_private_targets {
        return Ok(());
    }
    let sample = postback_domain::webhooks::expand_tokens(
        url,
        &postback_domain::webhooks::TokenValues::sample(),
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
