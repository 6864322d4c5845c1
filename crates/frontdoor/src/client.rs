//! The gateway's clients (`[[clients]]` in its configuration): an API key, a secret read from the
//! environment, the addresses allowed, a rate limit, an expiry and a switch.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::store::Bucket;

/// One `[[clients]]` table as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Name in logs, events and idempotency records.
    pub id: String,
    /// The key the client sends in `Api-Key`.
    pub api_key: String,
    /// Environment variable holding the HMAC secret; the secret itself never sits in the file.
    pub secret_env: String,
    /// Addresses and networks (`10.0.0.0/8`, `::1`) the client may call from; empty: any.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Requests per second on average; absent: no limit.
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    /// Requests allowed at once above the average; defaults to `rate_per_s` (at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
    /// RFC 3339 time after which the key is refused: `"2027-01-01T00:00:00Z"`, quoted or written as
    /// a bare TOML date-time.
    #[serde(default, deserialize_with = "time_text")]
    pub expires_at: Option<String>,
    /// A disabled key is refused with `api_key_disabled`.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// A time as its text, from a string or from a TOML date-time (which the TOML deserializer hands
/// over as a one-entry map holding the text).
fn time_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 time like 2027-01-01T00:00:00Z")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<String, M::Error> {
            match map.next_entry::<String, String>()? {
                Some((_, text)) => Ok(text),
                None => Err(serde::de::Error::custom(
                    "expected an RFC 3339 time like 2027-01-01T00:00:00Z",
                )),
            }
        }
    }
    d.deserialize_any(Text).map(Some)
}

/// A client ready for checks: secret loaded, networks and expiry parsed.
pub struct Client {
    /// Its id.
    pub id: String,
    secret: Vec<u8>,
    allowed: Vec<Network>,
    /// Its rate limit, if any.
    pub bucket: Option<Bucket>,
    /// Unix seconds from which the key is expired.
    pub expires_at: Option<i64>,
    /// Whether the key may be used.
    pub enabled: bool,
}

impl fmt::Debug for Client {
    // The secret stays out of any debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("allowed", &self.allowed)
            .field("bucket", &self.bucket)
            .field("expires_at", &self.expires_at)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The HMAC secret.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// Whether `ip` may call as this client.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed.is_empty() || self.allowed.iter().any(|n| n.contains(ip))
    }
}

/// The clients, found by API key.
#[derive(Debug, Default)]
pub struct Clients {
    by_key: HashMap<String, Arc<Client>>,
}

impl Clients {
    /// Checks the tables and loads each secret through `env` (the process environment in the
    /// gateway). Errors name the client and the variable, never a key or a secret.
    pub fn load(
        configs: &[ClientConfig],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Clients, String> {
        let mut by_key = HashMap::new();
        let mut ids = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let at = |e: String| format!("clients[{i}] {:?}: {e}", c.id);
            let id_ok = !c.id.is_empty()
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !id_ok {
                return Err(at("id must be letters, digits, -, _ or .".to_owned()));
            }
            if ids.contains(&c.id) {
                return Err(at("id is used twice".to_owned()));
            }
            ids.push(c.id.clone());
            if c.api_key.len() < 8 || !c.api_key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(at(
                    "api_key must be at least 8 printable characters without spaces".to_owned(),
                ));
            }
            let secret = env(&c.secret_env).unwrap_or_default();
            if secret.is_empty() {
                return Err(at(format!(
                    "secret_env: the environment variable {} is not set or empty",
                    c.secret_env
                )));
            }
            let allowed = c
                .allowed_ips
                .iter()
                .map(|n| Network::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            let bucket = match (c.rate_per_s, c.burst) {
                (None, None) => None,
                (None, Some(_)) => return Err(at("burst needs rate_per_s".to_owned())),
                (Some(rate), burst) => {
                    if !(rate.is_finite() && rate > 0.0) {
                        return Err(at("rate_per_s must be greater than 0".to_owned()));
                    }
                    let burst = burst.unwrap_or(rate.ceil().max(1.0) as u32);
                    if burst == 0 {
                        return Err(at("burst must be at least 1".to_owned()));
                    }
                    Some(Bucket {
                        per_second: rate,
                        burst,
                    })
                }
            };
            let expires_at = c
                .expires_at
                .as_deref()
                .map(|t| parse_rfc3339(t).map_err(|e| at(format!("expires_at: {e}"))))
                .transpose()?;
            let client = Client {
                id: c.id.clone(),
                secret: secret.into_bytes(),
                allowed,
                bucket,
                expires_at,
                enabled: c.enabled,
            };
            if by_key.insert(c.api_key.clone(), Arc::new(client)).is_some() {
                return Err(at("api_key is the same as another client's".to_owned()));
            }
        }
        Ok(Clients { by_key })
    }

    /// The client with this API key.
    pub fn get(&self, api_key: &[u8]) -> Option<&Arc<Client>> {
        std::str::from_utf8(api_key)
            .ok()
            .and_then(|k| self.by_key.get(k))
    }

    /// Whether no client is configured (the gateway is open).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// An address with a prefix length: `10.0.0.0/8`, `::1/128`; a bare address is the whole length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Reads `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<Network, String> {
        let bad =
            || format!("allowed_ips: {text:?} is not an address or a network like 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// Unix seconds of an RFC 3339 time: `2027-01-01T00:00:00Z`, with optional fractional seconds and a
/// `Z` or `±HH:MM` offset.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time like 2027-01-01T00:00:00Z");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let s = text.get(range).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return Err(bad()),
    };
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Vec<ClientConfig> {
        #[derive(Deserialize)]
        struct File {
            clients: Vec<ClientConfig>,
        }
        toml::from_str::<File>(text).unwrap().clients
    }

    const SHOP: &str = r#"
        [[clients]]
        id = "shop-1"
        api_key = "ak_test_shop1"
        secret_env = "SHOP1_SECRET"
        allowed_ips = ["127.0.0.0/8"]
        rate_per_s = 50
        burst = 100
        expires_at = "2027-01-01T00:00:00Z"
        enabled = true
    "#;

    fn env(name: &str) -> Option<String> {
        (name == "SHOP1_SECRET").then(|| "s3cret".to_owned())
    }

    #[test]
    fn the_issue_example_loads() {
        let clients = Clients::load(&config(SHOP), env).unwrap();
        let c = clients.get(b"ak_test_shop1").unwrap();
        assert_eq!(c.id, "shop-1");
        assert_eq!(c.secret(), b"s3cret");
        assert_eq!(
            c.bucket,
            Some(Bucket {
                per_second: 50.0,
                burst: 100
            })
        );
        assert_eq!(c.expires_at, Some(1_798_761_600));
        assert!(c.allows("127.0.0.1".parse().unwrap()));
        assert!(c.allows("::ffff:127.0.0.9".parse().unwrap()));
        assert!(!c.allows("10.0.0.1".parse().unwrap()));
        assert!(clients.get(b"ak_test_other").is_none());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn expiry_may_be_a_bare_toml_date_time() {
        let bare = SHOP.replace("\"2027-01-01T00:00:00Z\"", "2027-01-01T00:00:00Z");
        let clients = Clients::load(&config(&bare), env).unwrap();
        let c = clients.get(b"ak_test_shop1").unwrap();
        assert_eq!(c.expires_at, Some(1_798_761_600));
        let local = SHOP.replace("\"2027-01-01T00:00:00Z\"", "2027-01-01");
        let e = Clients::load(&config(&local), env).unwrap_err();
        assert!(e.contains("expires_at"), "{e}");
    }

    #[test]
    fn mistakes_are_named_without_the_secret() {
        let cases = [
            (
                SHOP.replace("SHOP1_SECRET", "NOT_SET"),
                "NOT_SET is not set",
            ),
            (SHOP.replace("127.0.0.0/8", "127.0.0.0/33"), "allowed_ips"),
            (
                SHOP.replace("rate_per_s = 50", "rate_per_s = 0"),
                "rate_per_s",
            ),
            (
                SHOP.replace("rate_per_s = 50", ""),
                "burst needs rate_per_s",
            ),
            (
                SHOP.replace("2027-01-01T00:00:00Z", "next year"),
                "expires_at",
            ),
            (SHOP.replace("ak_test_shop1", "short"), "api_key"),
            (SHOP.replace("shop-1", "shop 1"), "id must be"),
            (
                format!("{SHOP}\n{}", SHOP.replace("ak_test_shop1", "ak_test_shop2")),
                "used twice",
            ),
            (
                format!("{SHOP}\n{}", SHOP.replace("shop-1", "shop-2")),
                "same as another",
            ),
        ];
        for (text, expected) in cases {
            let e = Clients::load(&config(&text), env).unwrap_err();
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains("s3cret") && !e.contains("ak_test_shop"), "{e}");
        }
    }

    #[test]
    fn networks_match_their_prefix() {
        let net = |s: &str| Network::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("192.168.1.0/23").contains(ip("192.168.0.7")));
        assert!(!net("192.168.1.0/24").contains(ip("192.168.0.7")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("203.0.113.5").contains(ip("203.0.113.5")));
        assert!(!net("203.0.113.5").contains(ip("203.0.113.6")));
        assert!(net("::1").contains(ip("::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:1::9")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(net("::ffff:10.0.0.0/8").contains(ip("10.1.1.1")));
        for bad in ["", "10.0.0.0/", "10.0.0.0/x", "300.0.0.1", "::1/129"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2027-01-01T00:00:00Z"), Ok(1_798_761_600));
        assert_eq!(
            parse_rfc3339("2027-01-01T08:00:00+08:00"),
            Ok(1_798_761_600)
        );
        assert_eq!(
            parse_rfc3339("2026-12-31T23:00:00.250-01:00"),
            Ok(1_798_761_600)
        );
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00Z"), Ok(1_709_208_000));
        for bad in [
            "2027-01-01",
            "2027-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2027-01-01T00:00:00",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:00:00.Z",
            "2027-01-01T00:00:00+8:00",
            "２０２７-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
