//! Server-side request forgery (SSRF) guard.
//!
//! Webhook URLs are supplied by users, so an SDK that delivers to them must not become a way to
//! reach the deployment's own network. [`SsrfPolicy`] refuses every private and special-purpose
//! address range (the list Svix applies, see the table in [`SPECIAL_RANGES`]) unless an
//! allow-list of [`Cidr`] subnets re-opens it.
//!
//! The policy is applied to the **addresses actually connected to**: both transports resolve
//! host names through a resolver that filters the resolved addresses with the policy (so a DNS
//! answer that changes between a check and the connection, "DNS rebinding", does not help), and
//! IP-literal URLs are checked before any connection is attempted. Addresses that the policy
//! refuses are dropped from the answer; when none remain the request fails with
//! [`SsrfViolation`] and no connection is made.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP subnet in CIDR notation, such as `127.0.0.0/8` or `fd00::/8`.
///
/// ```
/// use webhook_sender::ssrf::Cidr;
/// let net: Cidr = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.1.2.3".parse()?));
/// assert!(!net.contains("11.0.0.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a valid [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrParseError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("invalid address in CIDR {0:?}")]
    InvalidAddress(String),
    /// The prefix length is not a number or is longer than the address (32 or 128 bits).
    #[error("invalid prefix length in CIDR {0:?}")]
    InvalidPrefix(String),
}

impl Cidr {
    /// Builds a subnet from a base address and a prefix length; the host bits are cleared.
    ///
    /// Returns `None` when `prefix` exceeds the address length (32 for IPv4, 128 for IPv6).
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use webhook_sender::ssrf::Cidr;
    /// let net = Cidr::new(Ipv4Addr::new(127, 9, 9, 9).into(), 8).ok_or("bad prefix")?;
    /// assert_eq!(net.to_string(), "127.0.0.0/8");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(v4) if prefix <= 32 => Some(Self {
                addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
                prefix,
            }),
            IpAddr::V6(v6) if prefix <= 128 => Some(Self {
                addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
                prefix,
            }),
            _ => None,
        }
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(bits: u128, prefix: u8) -> Self {
        Self {
            addr: IpAddr::V6(Ipv6Addr::from_bits(bits)),
            prefix,
        }
    }

    /// The network address (host bits cleared).
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this subnet. An IPv4 subnet never contains an IPv6 address and vice
    /// versa (callers canonicalize IPv4-mapped addresses first, as [`SsrfPolicy`] does).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| CidrParseError::InvalidAddress(s.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|_| CidrParseError::InvalidPrefix(s.to_owned()))?,
            None => max,
        };
        Self::new(addr, prefix).ok_or_else(|| CidrParseError::InvalidPrefix(s.to_owned()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A named private or special-purpose address range refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// The subnet.
    pub cidr: Cidr,
    /// What it is for (for error messages and logs).
    pub name: &'static str,
}

const fn range(cidr: Cidr, name: &'static str) -> SpecialRange {
    SpecialRange { cidr, name }
}

/// Every range refused by default (the private and special ranges of the delivery reference).
pub const SPECIAL_RANGES: &[SpecialRange] = &[
    // IPv4
    range(Cidr::v4(0, 0, 0, 0, 8), "\"this network\" 0.0.0.0/8"),
    range(Cidr::v4(10, 0, 0, 0, 8), "private 10.0.0.0/8"),
    range(
        Cidr::v4(100, 64, 0, 0, 10),
        "carrier-grade NAT 100.64.0.0/10",
    ),
    range(Cidr::v4(127, 0, 0, 0, 8), "loopback 127.0.0.0/8"),
    range(Cidr::v4(169, 254, 0, 0, 16), "link-local 169.254.0.0/16"),
    range(Cidr::v4(172, 16, 0, 0, 12), "private 172.16.0.0/12"),
    range(
        Cidr::v4(192, 0, 0, 0, 24),
        "IETF protocol assignments 192.0.0.0/24",
    ),
    range(Cidr::v4(192, 0, 2, 0, 24), "documentation 192.0.2.0/24"),
    range(
        Cidr::v4(192, 88, 99, 0, 24),
        "6to4 relay anycast 192.88.99.0/24",
    ),
    range(Cidr::v4(192, 168, 0, 0, 16), "private 192.168.0.0/16"),
    range(Cidr::v4(198, 18, 0, 0, 15), "benchmarking 198.18.0.0/15"),
    range(
        Cidr::v4(198, 51, 100, 0, 24),
        "documentation 198.51.100.0/24",
    ),
    range(Cidr::v4(203, 0, 113, 0, 24), "documentation 203.0.113.0/24"),
    range(Cidr::v4(224, 0, 0, 0, 4), "multicast 224.0.0.0/4"),
    range(
        Cidr::v4(255, 255, 255, 255, 32),
        "broadcast 255.255.255.255/32",
    ),
    range(Cidr::v4(240, 0, 0, 0, 4), "reserved 240.0.0.0/4"),
    // IPv6
    range(Cidr::v6(0, 128), "unspecified ::/128"),
    range(Cidr::v6(1, 128), "loopback ::1/128"),
    range(Cidr::v6(0xff00 << 112, 8), "multicast ff00::/8"),
    range(Cidr::v6(0xfe80 << 112, 10), "link-local fe80::/10"),
    range(Cidr::v6(0xfc00 << 112, 7), "unique local fc00::/7"),
    range(
        Cidr::v6(0x2001_0db8 << 96, 32),
        "documentation 2001:db8::/32",
    ),
    range(Cidr::v6(0x3fff << 112, 20), "documentation 3fff::/20"),
    range(Cidr::v6(0x0100 << 112, 64), "discard-only 100::/64"),
    range(Cidr::v6(0x2002 << 112, 16), "6to4 2002::/16"),
    range(Cidr::v6(0x0064_ff9b << 96, 96), "NAT64 64:ff9b::/96"),
    range(
        Cidr::v6(0x0064_ff9b_0001 << 80, 48),
        "local-use NAT64 64:ff9b:1::/48",
    ),
    range(Cidr::v6(0x5f00 << 112, 16), "SRv6 SIDs 5f00::/16"),
];

/// Returns the special range that `ip` falls in, if any (IPv4-mapped IPv6 addresses are
/// judged as IPv4).
///
/// ```
/// use webhook_sender::ssrf::special_range;
/// assert!(special_range("192.168.1.1".parse()?).is_some());
/// assert!(special_range("::ffff:10.0.0.1".parse()?).is_some());
/// assert!(special_range("93.184.215.14".parse()?).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn special_range(ip: IpAddr) -> Option<&'static SpecialRange> {
    let ip = canonical(ip);
    SPECIAL_RANGES.iter().find(|r| r.cidr.contains(ip))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// A destination refused by the SSRF guard. Carries the host and the refused address, never the
/// URL (whose path or query may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {host} refused by the SSRF guard: {addr} is in the {range} range")]
#[non_exhaustive]
pub struct SsrfViolation {
    /// The host name or IP literal of the request.
    pub host: String,
    /// A refused address the host resolved to (or the literal itself).
    pub addr: IpAddr,
    /// The name of the special range it falls in.
    pub range: &'static str,
}

/// Which destinations outgoing requests may reach.
///
/// The default refuses every range in [`SPECIAL_RANGES`]; [`SsrfPolicy::allow`] re-opens
/// subnets, and [`SsrfPolicy::disabled`] turns the guard off for local development.
///
/// ```
/// use webhook_sender::ssrf::SsrfPolicy;
/// let policy = SsrfPolicy::default().allow("127.0.0.0/8".parse()?);
/// assert!(policy.check("example.test", "127.0.0.1".parse()?).is_ok());
/// assert!(policy.check("example.test", "10.0.0.1".parse()?).is_err());
/// assert!(SsrfPolicy::disabled().check("example.test", "10.0.0.1".parse()?).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrfPolicy {
    enabled: bool,
    allow: Vec<Cidr>,
}

impl Default for SsrfPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            allow: Vec::new(),
        }
    }
}

impl SsrfPolicy {
    /// The guard switched off: every address is allowed. Only for local use and tests.
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            allow: Vec::new(),
        }
    }

    /// Re-opens `subnet` (for example `127.0.0.0/8` for tests, or a deployment's internal
    /// receiver subnet).
    #[must_use]
    pub fn allow(mut self, subnet: Cidr) -> Self {
        self.allow.push(subnet);
        self
    }

    /// Whether the guard is on.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The allow-listed subnets.
    #[must_use]
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Checks one address that `host` resolved to (or that `host` is, for an IP literal).
    ///
    /// # Errors
    /// [`SsrfViolation`] when the address is in a special range that no allow-listed subnet
    /// admits.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), SsrfViolation> {
        if !self.enabled {
            return Ok(());
        }
        let canon = canonical(addr);
        let Some(range) = SPECIAL_RANGES.iter().find(|r| r.cidr.contains(canon)) else {
            return Ok(());
        };
        if self
            .allow
            .iter()
            .any(|net| net.contains(canon) || net.contains(addr))
        {
            return Ok(());
        }
        Err(SsrfViolation {
            host: host.to_owned(),
            addr,
            range: range.name,
        })
    }

    /// Keeps the permitted addresses of a DNS answer for `host`.
    ///
    /// # Errors
    /// The first [`SsrfViolation`] when no address is permitted (an empty answer is returned
    /// as is, for the caller's "no addresses" error).
    pub fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, SsrfViolation> {
        let mut kept = Vec::new();
        let mut first_refusal = None;
        for addr in addrs {
            match self.check(host, addr.ip()) {
                Ok(()) => kept.push(addr),
                Err(refusal) => {
                    tracing::debug!(host, addr = %addr.ip(), range = refusal.range, "SSRF guard dropped a resolved address");
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match first_refusal {
            Some(refusal) if kept.is_empty() => Err(refusal),
            _ => Ok(kept),
        }
    }

    /// Resolves `host:port` with the system resolver (`tokio::net::lookup_host`) and keeps the
    /// permitted addresses. An IP literal is checked without a lookup.
    ///
    /// # Errors
    /// [`ResolveError::Ssrf`] when every address is refused, [`ResolveError::Lookup`] when the
    /// lookup fails or finds nothing.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_owned(),
                source,
            })?;
        let kept = self.filter(host, found)?;
        if kept.is_empty() {
            return Err(ResolveError::Lookup {
                host: host.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses found"),
            });
        }
        Ok(kept)
    }
}

/// Why resolving a destination failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Every resolved address was refused by the SSRF guard.
    #[error(transparent)]
    Ssrf(#[from] SsrfViolation),
    /// The DNS lookup failed or returned no address.
    #[error("DNS lookup of {host} failed")]
    Lookup {
        /// The host name looked up.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// One address inside every special range, and the expected range name.
    const REFUSED: &[(&str, &str)] = &[
        ("0.0.0.0", "0.0.0.0/8"),
        ("0.255.1.2", "0.0.0.0/8"),
        ("10.0.0.1", "10.0.0.0/8"),
        ("10.255.255.255", "10.0.0.0/8"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("100.127.255.254", "100.64.0.0/10"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.255.0.9", "127.0.0.0/8"),
        ("169.254.169.254", "169.254.0.0/16"),
        ("172.16.0.1", "172.16.0.0/12"),
        ("172.31.255.255", "172.16.0.0/12"),
        ("192.0.0.8", "192.0.0.0/24"),
        ("192.0.2.55", "192.0.2.0/24"),
        ("192.88.99.1", "192.88.99.0/24"),
        ("192.168.1.1", "192.168.0.0/16"),
        ("198.18.0.1", "198.18.0.0/15"),
        ("198.19.255.255", "198.18.0.0/15"),
        ("198.51.100.7", "198.51.100.0/24"),
        ("203.0.113.9", "203.0.113.0/24"),
        ("224.0.0.1", "224.0.0.0/4"),
        ("239.255.255.250", "224.0.0.0/4"),
        ("255.255.255.255", "255.255.255.255/32"),
        ("240.0.0.1", "240.0.0.0/4"),
        ("::", "::/128"),
        ("::1", "::1/128"),
        ("ff02::1", "ff00::/8"),
        ("fe80::1", "fe80::/10"),
        ("febf::1", "fe80::/10"),
        ("fc00::1", "fc00::/7"),
        ("fd12:3456::1", "fc00::/7"),
        ("2001:db8::1", "2001:db8::/32"),
        ("3fff::1", "3fff::/20"),
        ("3fff:0fff::1", "3fff::/20"),
        ("100::1", "100::/64"),
        ("2002:c000:0204::1", "2002::/16"),
        ("64:ff9b::7f00:1", "64:ff9b::/96"),
        ("64:ff9b:1::1", "64:ff9b:1::/48"),
        ("5f00::1", "5f00::/16"),
        // IPv4-mapped IPv6 is judged as IPv4.
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("::ffff:10.1.1.1", "10.0.0.0/8"),
        ("::ffff:169.254.169.254", "169.254.0.0/16"),
    ];

    /// Neighbours just outside the ranges, and ordinary public addresses.
    const PERMITTED: &[&str] = &[
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.0.3.0",
        "192.88.98.255",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.101.0",
        "203.0.114.0",
        "223.255.255.255",
        "93.184.215.14",
        "2001:4860:4860::8888",
        "2606:4700::1111",
        "2001:db9::1",
        "3fff:1000::1",
        "100:0:0:1::1",
        "fec0::1",
        "::ffff:8.8.8.8",
        "64:ff9b:2::1",
    ];

    #[test]
    fn every_special_range_is_refused() {
        let policy = SsrfPolicy::default();
        for (addr, range) in REFUSED {
            let err = policy
                .check("h", ip(addr))
                .expect_err(&format!("{addr} must be refused"));
            assert!(
                err.range.ends_with(range),
                "{addr}: got {}, want {range}",
                err.range
            );
            assert_eq!(err.addr, ip(addr));
            assert!(special_range(ip(addr)).is_some());
        }
    }

    #[test]
    fn every_listed_range_has_a_refused_sample() {
        for r in SPECIAL_RANGES {
            let tail = r.cidr.to_string();
            let wanted = if tail == "::/128" {
                "::/128".to_owned()
            } else {
                tail.clone()
            };
            assert!(
                REFUSED.iter().any(|(_, name)| *name == wanted),
                "no test sample for {tail}"
            );
            assert!(r.name.ends_with(&wanted), "name of {tail} is {}", r.name);
        }
    }

    #[test]
    fn public_addresses_are_permitted() {
        let policy = SsrfPolicy::default();
        for addr in PERMITTED {
            assert_eq!(
                policy.check("h", ip(addr)),
                Ok(()),
                "{addr} must be permitted"
            );
            assert!(special_range(ip(addr)).is_none(), "{addr}");
        }
    }

    #[test]
    fn allow_list_reopens_only_its_subnet() -> Result<(), CidrParseError> {
        let policy = SsrfPolicy::default().allow("127.0.0.0/8".parse()?);
        assert!(policy.check("h", ip("127.0.0.1")).is_ok());
        assert!(policy.check("h", ip("127.3.4.5")).is_ok());
        assert!(policy.check("h", ip("::ffff:127.0.0.1")).is_ok());
        assert!(policy.check("h", ip("::1")).is_err());
        assert!(policy.check("h", ip("10.0.0.1")).is_err());
        let v6 = SsrfPolicy::default().allow("fd00::/8".parse()?);
        assert!(v6.check("h", ip("fd00::5")).is_ok());
        assert!(v6.check("h", ip("fc00::5")).is_err());
        Ok(())
    }

    #[test]
    fn disabled_policy_allows_everything() {
        let policy = SsrfPolicy::disabled();
        assert!(!policy.is_enabled());
        for (addr, _) in REFUSED {
            assert!(policy.check("h", ip(addr)).is_ok());
        }
    }

    #[test]
    fn filter_keeps_permitted_and_fails_when_none_left() {
        let policy = SsrfPolicy::default();
        let mixed = [
            SocketAddr::new(ip("10.0.0.1"), 443),
            SocketAddr::new(ip("1.1.1.1"), 443),
        ];
        assert_eq!(
            policy.filter("h", mixed),
            Ok(vec![SocketAddr::new(ip("1.1.1.1"), 443)])
        );
        let private = [
            SocketAddr::new(ip("10.0.0.1"), 443),
            SocketAddr::new(ip("::1"), 443),
        ];
        let err = policy.filter("h", private).expect_err("all private");
        assert_eq!(err.addr, ip("10.0.0.1"));
        assert_eq!(policy.filter("h", []), Ok(vec![]));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!("10.0.0.0/8".parse::<Cidr>().map(|c| c.prefix()), Ok(8));
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().map(|c| c.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!("::1".parse::<Cidr>().map(|c| c.prefix()), Ok(128));
        assert_eq!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .map(|c| c.contains(ip("8.8.8.8"))),
            Ok(true)
        );
        assert_eq!(
            "::/0".parse::<Cidr>().map(|c| c.contains(ip("::1"))),
            Ok(true)
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrParseError::InvalidPrefix(_))
        ));
        assert!(matches!(
            "::/129".parse::<Cidr>(),
            Err(CidrParseError::InvalidPrefix(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrParseError::InvalidPrefix(_))
        ));
        assert!(matches!(
            "nope/8".parse::<Cidr>(),
            Err(CidrParseError::InvalidAddress(_))
        ));
        assert!(
            !"10.0.0.0/8"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains(ip("::ffff:10.0.0.1")))
        );
    }

    #[tokio::test]
    async fn resolve_checks_literals_without_lookup() {
        let policy = SsrfPolicy::default();
        assert!(matches!(
            policy.resolve("10.0.0.1", 80).await,
            Err(ResolveError::Ssrf(_))
        ));
        assert!(matches!(
            policy.resolve("[::1]", 80).await,
            Err(ResolveError::Ssrf(_))
        ));
        let open = SsrfPolicy::default().allow(Cidr::v4(127, 0, 0, 0, 8));
        assert_eq!(
            open.resolve("127.0.0.1", 80).await.ok(),
            Some(vec![SocketAddr::new(ip("127.0.0.1"), 80)])
        );
    }

    #[tokio::test]
    async fn resolve_filters_localhost() {
        let refused = SsrfPolicy::default().resolve("localhost", 80).await;
        assert!(matches!(refused, Err(ResolveError::Ssrf(_))), "{refused:?}");
        let open = SsrfPolicy::default().allow(Cidr::v4(127, 0, 0, 0, 8));
        let addrs = open.resolve("localhost", 80).await.unwrap_or_default();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.is_ipv4()),
            "{addrs:?}"
        );
    }
}
