//! The `X-Simulate-*` request headers: what the caller asks the simulator to play. Every header of the
//! family is checked, so that a typo or a value out of range is a 400 naming the header instead of a
//! success that silently ignores it.

use std::str::FromStr;
use std::time::Duration;

use hyper::HeaderMap;

use crate::rejection::Rejection;

const CODE: &str = "X-Simulate-Code";
const TYPE: &str = "X-Simulate-Type";
const REASON: &str = "X-Simulate-Reason";
const FAULT: &str = "X-Simulate-Fault";
const RETRY_AFTER: &str = "X-Simulate-Retry-After";
const THEN: &str = "X-Simulate-Then";
const THEN_AFTER: &str = "X-Simulate-Then-After";

/// Every header of the family, as documented.
const HEADERS: &[&str] = &[CODE, TYPE, REASON, FAULT, RETRY_AFTER, THEN, THEN_AFTER];

const PREFIX: &str = "x-simulate-";

/// Longest code, type or reason accepted: provider codes and names are short.
const MAX_TEXT: usize = 128;

/// Longest `slow:MS` delay: ten minutes is longer than any client waits.
pub(crate) const MAX_SLOW_MS: u64 = 600_000;

/// A failure injected instead of, or before, the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Read the request, never answer.
    Timeout,
    /// Read the request, close the connection with a TCP RST.
    Reset,
    /// 503 with `Retry-After`; the request is not processed.
    Http503,
    /// 500 with the dialect's internal error; the request may have been processed.
    Http500,
    /// Answer normally after this long.
    Slow(Duration),
}

impl Fault {
    /// The name used in logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Reset => "reset",
            Fault::Http503 => "http-503",
            Fault::Http500 => "http-500",
            Fault::Slow(_) => "slow",
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "timeout" => Ok(Fault::Timeout),
            "reset" => Ok(Fault::Reset),
            "http-503" => Ok(Fault::Http503),
            "http-500" => Ok(Fault::Http500),
            _ => {
                let ms = lower
                    .strip_prefix("slow:")
                    .ok_or_else(|| {
                        format!(
                            "unknown fault {s:?}; expected timeout, reset, http-503, http-500 or slow:MS"
                        )
                    })?
                    .trim();
                match ms.parse::<u64>() {
                    Ok(ms) if ms <= MAX_SLOW_MS => Ok(Fault::Slow(Duration::from_millis(ms))),
                    _ => Err(format!(
                        "slow:MS needs a whole number of milliseconds from 0 to {MAX_SLOW_MS}, not {ms:?}"
                    )),
                }
            }
        }
    }
}

/// What the request's `X-Simulate-*` headers ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directive {
    /// `X-Simulate-Code`: answer this documented code.
    pub code: Option<String>,
    /// `X-Simulate-Type`: the code's scope.
    pub scope: Option<String>,
    /// `X-Simulate-Reason`: the code's reason.
    pub reason: Option<String>,
    /// `X-Simulate-Fault`.
    pub fault: Option<Fault>,
    /// `X-Simulate-Retry-After`: seconds in the 503's `Retry-After`.
    pub retry_after_s: Option<u64>,
    /// `X-Simulate-Then`: answer pending now and this code when the operation is queried.
    pub then: Option<String>,
    /// `X-Simulate-Then-After`: queries answered pending before the code.
    pub then_after: u32,
}

impl Directive {
    /// Reads the family from request headers; anything unusable is a 400 naming the header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Directive, Rejection> {
        let mut directive = Directive::default();
        let mut then_after = None;
        for name in headers.keys() {
            let name = name.as_str();
            if !name.starts_with(PREFIX) {
                continue;
            }
            let Some(header) = HEADERS
                .iter()
                .copied()
                .find(|h| h.eq_ignore_ascii_case(name))
            else {
                return Err(Rejection::unknown_header(format!(
                    "unknown simulator header {name}; known: {}",
                    HEADERS.join(", ")
                )));
            };
            let mut values = headers.get_all(name).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Err(Rejection::header(
                    header,
                    format!("{header} is sent more than once"),
                ));
            };
            let value = value
                .to_str()
                .map_err(|_| Rejection::header(header, format!("{header} must be visible ASCII")))?
                .trim();
            if value.is_empty() {
                return Err(Rejection::header(header, format!("{header} is empty")));
            }
            let text = || {
                if value.chars().count() > MAX_TEXT {
                    Err(Rejection::header(
                        header,
                        format!("{header} is longer than {MAX_TEXT} characters"),
                    ))
                } else {
                    Ok(Some(value.to_owned()))
                }
            };
            let number = |max: u64| match value.parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(Rejection::header(
                    header,
                    format!("{header} needs a whole number from 0 to {max}, not {value:?}"),
                )),
            };
            match header {
                CODE => directive.code = text()?,
                TYPE => directive.scope = text()?,
                REASON => directive.reason = text()?,
                THEN => directive.then = text()?,
                FAULT => {
                    let fault = value
                        .parse()
                        .map_err(|e| Rejection::header(FAULT, format!("{FAULT}: {e}")))?;
                    directive.fault = Some(fault);
                }
                RETRY_AFTER => directive.retry_after_s = Some(number(86_400)?),
                THEN_AFTER => then_after = Some(number(u64::from(u32::MAX))?),
                _ => {}
            }
        }
        directive.then_after = then_after.map_or(0, |n| n as u32);
        directive.check(then_after.is_some())?;
        Ok(directive)
    }

    /// Headers that only make sense together.
    fn check(&self, then_after_given: bool) -> Result<(), Rejection> {
        let needs = |header, other: &str| {
            Err(Rejection::header(
                header,
                format!("{header} is only read with {other}"),
            ))
        };
        if self.code.is_some() && self.then.is_some() {
            return Err(Rejection::header(
                THEN,
                format!("{CODE} and {THEN} exclude each other: {THEN} answers pending first, then its code"),
            ));
        }
        let coded = self.code.is_some() || self.then.is_some();
        if self.scope.is_some() && !coded {
            return needs(TYPE, &format!("{CODE} or {THEN}"));
        }
        if self.reason.is_some() && !coded {
            return needs(REASON, &format!("{CODE} or {THEN}"));
        }
        if then_after_given && self.then.is_none() {
            return needs(THEN_AFTER, THEN);
        }
        if self.retry_after_s.is_some() && self.fault != Some(Fault::Http503) {
            return needs(RETRY_AFTER, &format!("{FAULT}: http-503"));
        }
        Ok(())
    }

    /// The code to answer now or later, with the header it came from.
    pub fn code_header(&self) -> &'static str {
        if self.then.is_some() {
            THEN
        } else {
            CODE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderName, HeaderValue};

    fn parse(pairs: &[(&str, &str)]) -> Result<Directive, Rejection> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Directive::from_headers(&headers)
    }

    fn refused(pairs: &[(&str, &str)]) -> Rejection {
        let r = parse(pairs).unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (400, "invalid_simulate_header"),
            "{r:?}"
        );
        r
    }

    #[test]
    fn faults_parse_in_any_case_with_bounded_delays() {
        assert_eq!("timeout".parse(), Ok(Fault::Timeout));
        assert_eq!(" RESET ".parse(), Ok(Fault::Reset));
        assert_eq!("http-503".parse(), Ok(Fault::Http503));
        assert_eq!("HTTP-500".parse(), Ok(Fault::Http500));
        assert_eq!(
            "slow:250".parse(),
            Ok(Fault::Slow(Duration::from_millis(250)))
        );
        assert_eq!("slow: 0".parse(), Ok(Fault::Slow(Duration::ZERO)));
        for bad in [
            "slow",
            "slow:",
            "slow:-1",
            "slow:1.5",
            "slow:600001",
            "http-502",
            "503",
        ] {
            let e = bad.parse::<Fault>().unwrap_err();
            assert!(e.contains("slow") || e.contains("fault"), "{bad}: {e}");
        }
    }

    #[test]
    fn no_header_means_the_default_answer() {
        assert_eq!(
            parse(&[("Idempotency-Key", "k")]).unwrap(),
            Directive::default()
        );
    }

    #[test]
    fn every_header_is_read() {
        let d = parse(&[
            ("x-simulate-then", " 6001 "),
            ("X-Simulate-Reason", "BANK_REFUSED_TRANSACTION"),
            ("X-Simulate-Then-After", "2"),
            ("X-Simulate-Fault", "http-503"),
            ("X-Simulate-Retry-After", "7"),
        ])
        .unwrap();
        assert_eq!(d.then.as_deref(), Some("6001"));
        assert_eq!(d.reason.as_deref(), Some("BANK_REFUSED_TRANSACTION"));
        assert_eq!((d.then_after, d.retry_after_s), (2, Some(7)));
        assert_eq!(d.fault, Some(Fault::Http503));
        assert_eq!(d.code_header(), THEN);
        let d = parse(&[
            ("X-Simulate-Code", "expired_card"),
            ("X-Simulate-Type", "payment_error"),
        ])
        .unwrap();
        assert_eq!(
            (d.code.as_deref(), d.scope.as_deref(), d.code_header()),
            (Some("expired_card"), Some("payment_error"), CODE)
        );
    }

    #[test]
    fn bad_values_name_their_header() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("X-Simulate-Fault", "explode")], FAULT),
            (&[("X-Simulate-Code", " ")], CODE),
            (&[("X-Simulate-Code", "a"), ("X-Simulate-Code", "b")], CODE),
            (&[("X-Simulate-Type", "payment_error")], TYPE),
            (&[("X-Simulate-Reason", "R")], REASON),
            (&[("X-Simulate-Code", "1"), ("X-Simulate-Then", "2")], THEN),
            (&[("X-Simulate-Then-After", "1")], THEN_AFTER),
            (
                &[("X-Simulate-Then", "1"), ("X-Simulate-Then-After", "-1")],
                THEN_AFTER,
            ),
            (&[("X-Simulate-Retry-After", "5")], RETRY_AFTER),
            (
                &[
                    ("X-Simulate-Fault", "http-503"),
                    ("X-Simulate-Retry-After", "soon"),
                ],
                RETRY_AFTER,
            ),
        ];
        for (pairs, header) in cases {
            let r = refused(pairs);
            assert_eq!(r.param, Some(*header), "{pairs:?}: {r:?}");
            assert!(r.message.contains(header), "{pairs:?}: {}", r.message);
        }
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(refused(&[("X-Simulate-Code", &long)]).param, Some(CODE));
    }

    #[test]
    fn an_unknown_header_of_the_family_is_refused_by_name() {
        let r = refused(&[("X-Simulate-Cod", "1001")]);
        assert!(r.message.contains("x-simulate-cod"), "{}", r.message);
        assert!(r.message.contains(CODE), "{}", r.message);
    }
}
