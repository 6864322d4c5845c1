//! Reads the envelope fields out of a response body in one pass.
//!
//! Catalogs name the fields they need (`code` under `""`, `error`, `data`, ...). Those paths are compiled
//! into a small trie; the body is parsed with a serde seed that descends only into objects on a path and
//! skips everything else without building it. Strings are borrowed from the body when they need no
//! unescaping, so a typical error body is read with no allocation beyond the captures.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Index of a field path in the engine's path table.
pub(crate) type PathId = u16;

/// A captured leaf value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    Int(i128),
    Float(f64),
    Bool(bool),
}

impl Scalar<'_> {
    /// Whether the value carries nothing (an empty or blank string), without formatting numbers.
    pub(crate) fn is_blank(&self) -> bool {
        matches!(self, Scalar::Str(s) if s.trim().is_empty())
    }

    /// The value as text: numbers in plain decimal (`1004`, never `1004.0`), so that `1004` and
    /// `"1004"` are the same code.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            Scalar::Str(s) => Cow::Borrowed(s.trim()),
            Scalar::Int(n) => Cow::Owned(n.to_string()),
            // Only floats that are exact, non-zero integers read as codes (`1004.0`); anything else,
            // including an underflow to zero, is shown in exponent form so it never equals a
            // documented code such as card-issuing's success code 0.
            Scalar::Float(f) if f.fract() == 0.0 && *f != 0.0 && f.abs() < 1e15 => {
                Cow::Owned((*f as i64).to_string())
            }
            Scalar::Float(f) => Cow::Owned(format!("{f:e}")),
            Scalar::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }
}

/// A node of the path trie: object keys below it, and the path id when a value here is captured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trie {
    children: Vec<(Box<str>, Trie)>,
    capture: Option<PathId>,
}

impl Trie {
    /// Adds a path (its object keys, outermost first).
    pub(crate) fn insert(&mut self, keys: &[&str], id: PathId) {
        let mut node = self;
        for key in keys {
            let pos = match node.children.iter().position(|(k, _)| &**k == *key) {
                Some(pos) => pos,
                None => {
                    node.children.push(((*key).into(), Trie::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos].1;
        }
        node.capture = Some(id);
    }

    fn child(&self, key: &str) -> Option<&Trie> {
        self.children
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, t)| t)
    }
}

/// The fields captured from one body.
#[derive(Debug, Default)]
pub(crate) struct Captures<'de> {
    items: Vec<(PathId, Scalar<'de>)>,
}

impl<'de> Captures<'de> {
    /// The value at `path`, if the body had a scalar there.
    pub(crate) fn get(&self, path: PathId) -> Option<&Scalar<'de>> {
        self.items.iter().find(|(p, _)| *p == path).map(|(_, v)| v)
    }

    /// Whether nothing was captured.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push(&mut self, path: PathId, value: Scalar<'de>) {
        // The first occurrence of a duplicated key wins, so captures are bounded by the number of
        // catalog paths whatever the body holds.
        if self.get(path).is_none() {
            self.items.push((path, value));
        }
    }
}

/// What kind of body a response had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Empty or only white space.
    Empty,
    /// A JSON document.
    Json,
    /// Anything else: HTML error pages, plain text, truncated or invalid JSON, invalid UTF-8.
    NotJson,
}

/// Parses `body` and captures the values at the trie's paths.
pub(crate) fn capture<'de>(body: &'de [u8], trie: &Trie) -> (BodyKind, Captures<'de>) {
    if body.iter().all(u8::is_ascii_whitespace) {
        return (BodyKind::Empty, Captures::default());
    }
    // JSON is UTF-8 throughout. Checked here once, whole: serde_json would check only the strings
    // it reads, not those it skips, and reading a `str` it checks no string a second time.
    let Ok(text) = std::str::from_utf8(body) else {
        return (BodyKind::NotJson, Captures::default());
    };
    let mut captures = Captures {
        items: Vec::with_capacity(6),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = NodeSeed {
        node: trie,
        out: &mut captures,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match parsed {
        Ok(()) => (BodyKind::Json, captures),
        // A body that is not entirely valid JSON is not trusted in part.
        Err(_) => (BodyKind::NotJson, Captures::default()),
    }
}

/// Deserializes one value at a trie node: captures scalars, descends into objects on a path.
struct NodeSeed<'t, 'c, 'de> {
    node: &'t Trie,
    out: &'c mut Captures<'de>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! capture_scalar {
    ($self:ident, $value:expr) => {{
        if let Some(id) = $self.node.capture {
            $self.out.push(id, $value);
        }
        Ok(())
    }};
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        capture_scalar!(self, Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        capture_scalar!(self, Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        capture_scalar!(self, Scalar::Int(i128::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        capture_scalar!(self, Scalar::Int(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        capture_scalar!(self, Scalar::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        capture_scalar!(self, Scalar::Bool(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.node.child(&key) {
                Some(child) => map.next_value_seed(NodeSeed {
                    node: child,
                    out: &mut *self.out,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads an object key, borrowing it from the body when it needs no unescaping (plain
/// `Cow<str>` deserialization always copies).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(paths: &[&str]) -> Trie {
        let mut t = Trie::default();
        for (i, p) in paths.iter().enumerate() {
            let keys: Vec<&str> = p.split('.').collect();
            t.insert(&keys, i as PathId);
        }
        t
    }

    #[test]
    fn captures_top_level_and_nested_scalars_and_skips_the_rest() {
        let t = trie(&["code", "error.code", "error.message", "result.resultStatus"]);
        let body = br#"{"id":[1,{"code":9}],"error":{"code":"expired_card","message":"Expired \"card\"","x":{"code":1}},"result":{"resultStatus":"F"}}"#;
        let (kind, c) = capture(body, &t);
        assert_eq!(kind, BodyKind::Json);
        assert_eq!(c.get(0), None);
        assert_eq!(c.get(1).unwrap().text(), "expired_card");
        assert_eq!(c.get(2).unwrap().text(), "Expired \"card\"");
        assert_eq!(c.get(3).unwrap().text(), "F");
    }

    #[test]
    fn numbers_read_as_plain_decimal_codes() {
        let t = trie(&["code"]);
        for (body, want) in [
            (&b"{\"code\":1004}"[..], "1004"),
            (b"{\"code\":-1}", "-1"),
            (b"{\"code\":1004.0}", "1004"),
            (b"{\"code\":\" 1004 \"}", "1004"),
            (b"{\"code\":1e-400}", "0e0"),
            (b"{\"code\":99999999999999999999999999}", "1e26"),
        ] {
            let (_, c) = capture(body, &t);
            assert_eq!(
                c.get(0).map(|s| s.text().into_owned()).as_deref(),
                Some(want)
            );
        }
    }

    #[test]
    fn classifies_bodies_that_are_not_json() {
        let t = trie(&["code"]);
        assert_eq!(capture(b"", &t).0, BodyKind::Empty);
        assert_eq!(capture(b" \n ", &t).0, BodyKind::Empty);
        assert_eq!(
            capture(b"<html>502 Bad Gateway</html>", &t).0,
            BodyKind::NotJson
        );
        assert_eq!(capture(b"{\"code\":1004", &t).0, BodyKind::NotJson);
        assert_eq!(capture(b"{\"code\":\"\xff\"}", &t).0, BodyKind::NotJson);
        assert_eq!(capture(b"{\"code\":1} trailing", &t).0, BodyKind::NotJson);
        let deep = "[".repeat(10_000);
        assert_eq!(capture(deep.as_bytes(), &t).0, BodyKind::NotJson);
    }

    #[test]
    fn first_duplicate_key_wins() {
        let t = trie(&["code"]);
        let (_, c) = capture(br#"{"code":"a","code":"b"}"#, &t);
        assert_eq!(c.get(0).unwrap().text(), "a");
    }
}
