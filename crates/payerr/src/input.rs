//! A provider response described in JSON, `{dialect?, http_status, headers?, body, lang?}`: the shape
//! of the CLI's NDJSON lines and of the HTTP service's normalize requests, decoded in one place so
//! that both accept and reject exactly the same input with the same errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::engine::Response;

/// A decoded response description, ready to hand to [`crate::Engine::normalize`].
#[derive(Debug)]
pub struct ResponseInput<'a> {
    /// The dialect asked for, if any (`auto` or a catalog id).
    pub dialect: Option<String>,
    /// The provider's HTTP status, 100–599.
    pub http_status: u16,
    /// The provider's response headers.
    pub headers: Vec<(String, String)>,
    /// The body bytes: the text of a JSON string, or the JSON value itself as sent.
    pub body: Cow<'a, [u8]>,
    /// The language asked for on this item, if any.
    pub lang: Option<String>,
}

/// Why a description was refused, in the terms of seed 000's `invalid_request_error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// `missing_parameter` or `invalid_parameter`.
    pub code: &'static str,
    /// The offending field, when one is to blame.
    pub param: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// The common case in one pass: every field of its type and the body a JSON string. Whatever this
/// refuses is decoded again through [`Fields`], which accepts the other bodies and names the field
/// at fault; what this accepts, `Fields` accepts with the same values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Typed<'a> {
    #[serde(default)]
    dialect: Option<String>,
    http_status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(borrow)]
    body: Cow<'a, str>,
    #[serde(default)]
    lang: Option<String>,
}

/// The fields as raw JSON: serde checks names, duplicates and presence; each value is then decoded on
/// its own so an error can name its field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(borrow, default)]
    dialect: Option<&'a RawValue>,
    #[serde(borrow)]
    http_status: &'a RawValue,
    #[serde(borrow, default)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(borrow, default)]
    lang: Option<&'a RawValue>,
}

impl<'a> ResponseInput<'a> {
    /// Decodes one JSON object. The body is borrowed from `raw` unless it is a JSON string with escapes.
    pub fn parse(raw: &'a [u8]) -> Result<ResponseInput<'a>, InputError> {
        match serde_json::from_slice::<Typed<'a>>(raw) {
            Ok(typed) if (100..=599).contains(&typed.http_status) => Ok(ResponseInput {
                dialect: typed.dialect,
                http_status: typed.http_status,
                headers: typed.headers.into_iter().collect(),
                body: match typed.body {
                    Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
                    Cow::Owned(text) => Cow::Owned(text.into_bytes()),
                },
                lang: typed.lang,
            }),
            _ => Self::parse_field_by_field(raw),
        }
    }

    /// Decodes any accepted object, or names the field at fault.
    fn parse_field_by_field(raw: &'a [u8]) -> Result<ResponseInput<'a>, InputError> {
        let fields: Fields<'a> = serde_json::from_slice(raw).map_err(|e| object_error(&e))?;
        let http_status = match serde_json::from_str::<u16>(fields.http_status.get()) {
            Ok(status) if (100..=599).contains(&status) => status,
            _ => {
                return Err(invalid(
                    "http_status",
                    format!(
                        "http_status must be an integer from 100 to 599, not {}",
                        clip(fields.http_status.get())
                    ),
                ))
            }
        };
        let headers = match fields.headers {
            None => Vec::new(),
            Some(raw) => decode_headers(raw)?,
        };
        // A JSON string is the body's text; any other JSON value is the body itself.
        let body = match serde_json::from_str::<String>(fields.body.get()) {
            Ok(text) => Cow::Owned(text.into_bytes()),
            Err(_) => Cow::Borrowed(fields.body.get().as_bytes()),
        };
        Ok(ResponseInput {
            dialect: optional_string(fields.dialect, "dialect")?,
            http_status,
            headers,
            body,
            lang: optional_string(fields.lang, "lang")?,
        })
    }

    /// The response to normalize, borrowing from this description.
    pub fn response(&self) -> Response<'_> {
        Response {
            http_status: self.http_status,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            body: &self.body,
        }
    }
}

fn invalid(param: &str, message: String) -> InputError {
    InputError {
        code: "invalid_parameter",
        param: Some(param.to_owned()),
        message,
    }
}

/// At most 60 characters of a value, for messages that quote what was sent.
fn clip(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(60) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

fn optional_string(raw: Option<&RawValue>, param: &str) -> Result<Option<String>, InputError> {
    match raw.map(|r| serde_json::from_str::<Option<String>>(r.get())) {
        None => Ok(None),
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) => Err(invalid(param, format!("{param} must be a string"))),
    }
}

fn decode_headers(raw: &RawValue) -> Result<Vec<(String, String)>, InputError> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        invalid(
            "headers",
            "headers must be an object of header names to string values".to_owned(),
        )
    })?;
    map.into_iter()
        .map(
            |(name, value)| match serde_json::from_str::<String>(value.get()) {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(invalid(
                    &format!("headers.{name}"),
                    format!("header {name} must be a string"),
                )),
            },
        )
        .collect()
}

/// Maps serde's error for the object itself to a field where it names one.
fn object_error(e: &serde_json::Error) -> InputError {
    let text = e.to_string();
    let named = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('`'))
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = named("missing field ") {
        return InputError {
            code: "missing_parameter",
            message: format!("{field} is required"),
            param: Some(field),
        };
    }
    if let Some(field) = named("unknown field ") {
        return InputError {
            code: "invalid_parameter",
            message: format!(
                "unknown field {field}; expected dialect, http_status, headers, body or lang"
            ),
            param: Some(field),
        };
    }
    if let Some(field) = named("duplicate field ") {
        return invalid(&field, format!("{field} is given twice"));
    }
    InputError {
        code: "invalid_parameter",
        param: None,
        message: if e.is_data() && text.starts_with("invalid type") {
            "expected a JSON object {dialect?, http_status, headers?, body, lang?}".to_owned()
        } else {
            format!("malformed JSON: {text}")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(raw: &str) -> InputError {
        ResponseInput::parse(raw.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_json_body_is_passed_as_sent_and_a_string_body_as_its_text() {
        let input = ResponseInput::parse(
            br#"{"http_status":400,"headers":{"Retry-After":"5"},"body":{"code": "x"}}"#,
        )
        .unwrap();
        assert_eq!(&*input.body, br#"{"code": "x"}"#);
        assert!(matches!(input.body, Cow::Borrowed(_)));
        assert_eq!(input.response().headers, vec![("Retry-After", "5")]);
        let input =
            ResponseInput::parse(br#"{"http_status":502,"body":"<html>\u00e9</html>"}"#).unwrap();
        assert_eq!(&*input.body, "<html>é</html>".as_bytes());
        assert_eq!(input.dialect, None);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let cases = [
            (r#"{"body":""}"#, "missing_parameter", Some("http_status")),
            (r#"{"http_status":400}"#, "missing_parameter", Some("body")),
            (
                r#"{"http_status":"400","body":""}"#,
                "invalid_parameter",
                Some("http_status"),
            ),
            (
                r#"{"http_status":700,"body":""}"#,
                "invalid_parameter",
                Some("http_status"),
            ),
            (
                r#"{"http_status":400,"body":"","dialect":7}"#,
                "invalid_parameter",
                Some("dialect"),
            ),
            (
                r#"{"http_status":400,"body":"","headers":[]}"#,
                "invalid_parameter",
                Some("headers"),
            ),
            (
                r#"{"http_status":400,"body":"","headers":{"Retry-After":5}}"#,
                "invalid_parameter",
                Some("headers.Retry-After"),
            ),
            (
                r#"{"http_status":400,"body":"","extra":1}"#,
                "invalid_parameter",
                Some("extra"),
            ),
            (
                r#"{"http_status":400,"http_status":401,"body":""}"#,
                "invalid_parameter",
                Some("http_status"),
            ),
            (r#"[1,2]"#, "invalid_parameter", None),
            (r#"{"http_status":"#, "invalid_parameter", None),
        ];
        for (raw, code, param) in cases {
            let e = error(raw);
            assert_eq!((e.code, e.param.as_deref()), (code, param), "{raw}: {e}");
        }
    }

    #[test]
    fn long_values_are_clipped_in_messages() {
        let raw = format!(r#"{{"http_status":"{}","body":""}}"#, "9".repeat(500));
        assert!(error(&raw).message.len() < 150);
    }
}

#[cfg(test)]
mod one_pass {
    use proptest::prelude::*;

    use super::*;

    /// One field: absent, well typed (most of the time), or of the wrong type.
    fn field(
        name: &'static str,
        good: &'static [&'static str],
    ) -> impl Strategy<Value = Option<String>> {
        const BAD: &[&str] = &[
            "null",
            "7",
            "99",
            "600",
            "200.0",
            "true",
            "[1]",
            "{\"a\":1}",
            "\"x\"",
        ];
        let member = move |v: &str| Some(format!("\"{name}\":{v}"));
        prop_oneof![
            1 => Just(None),
            6 => proptest::sample::select(good).prop_map(member),
            2 => proptest::sample::select(BAD).prop_map(member),
        ]
    }

    const TEXTS: &[&str] = &[
        "\"\"",
        "\"auto\"",
        "\"plain\"",
        "\"\\u00e9t\\u00e9\"",
        "null",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// The one-pass decoder is only a shortcut: same values, same errors as field by field.
        #[test]
        fn one_pass_and_field_by_field_agree(
            fields in (
                field("dialect", TEXTS),
                field("http_status", &["200", "402", "503", "100", "599"]),
                field("headers", &["{}", "{\"Retry-After\":\"5\",\"a\":\"b\"}", "{\"a\":\"1\",\"a\":\"2\"}"]),
                field("body", &["\"{\\\"code\\\":1}\"", "\"plain\"", "{\"code\":1}", "\"\"", "[1,2]"]),
                field("lang", TEXTS),
            ),
            extra in prop_oneof![4 => Just(None), 1 => Just(Some("\"extra\":1")), 1 => Just(Some("\"lang\":\"zh\""))],
            reversed in any::<bool>(),
        ) {
            let (a, b, c, d, e) = fields;
            let mut all: Vec<String> = [a, b, c, d, e].into_iter().flatten().collect();
            all.extend(extra.map(str::to_owned));
            if reversed {
                all.reverse();
            }
            let raw = format!("{{{}}}", all.join(","));
            let fast = format!("{:?}", ResponseInput::parse(raw.as_bytes()));
            let slow = format!("{:?}", ResponseInput::parse_field_by_field(raw.as_bytes()));
            prop_assert_eq!(fast, slow, "{}", raw);
        }
    }
}
