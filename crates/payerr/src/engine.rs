//! The engine: a set of dialects over one taxonomy, and `normalize`.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::SystemTime;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::catalog::{CodeFormat, Dialect, Selector};
use crate::envelope::{capture, Captures, PathId, Trie};
use crate::error::Error;
use crate::lang::Lang;
use crate::matcher::{decide, first_delay, Resolution, Signal};
use crate::pan::mask_pans;
use crate::param::param_from_message;
use crate::retry::{parse_retry_after, PollPolicy, RetryPolicy};
use crate::taxonomy::Taxonomy;
use crate::verdict::{Candidate, MatchedBy, Source, Verdict};

/// The built-in catalogs, in auto-detection order (ties go to the earlier one).
pub const BUILTIN_CATALOGS: &[(&str, &str)] = &[
    (
        "typed-error.toml",
        include_str!("../catalogs/typed-error.toml"),
    ),
    (
        "card-issuing.toml",
        include_str!("../catalogs/card-issuing.toml"),
    ),
    (
        "result-status.toml",
        include_str!("../catalogs/result-status.toml"),
    ),
    ("pts.toml", include_str!("../catalogs/pts.toml")),
    ("portone.toml", include_str!("../catalogs/portone.toml")),
    ("http.toml", include_str!("../catalogs/http.toml")),
];

/// The dialect `auto` falls back to when no catalog recognises a response.
pub const GENERIC_DIALECT: &str = "http";

/// A provider response to normalize.
#[derive(Clone, Debug, Default)]
pub struct Response<'a> {
    /// HTTP status the provider answered with.
    pub http_status: u16,
    /// Response headers (names case-insensitive). `Retry-After` and `Date` are read.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The raw body: JSON, HTML, text, empty, or bytes that are not UTF-8.
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    /// A response with no headers.
    pub fn new(http_status: u16, body: &'a [u8]) -> Self {
        Response {
            http_status,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The language the exchange with the provider asked for: a seed-001 `Language` header, else
    /// `Accept-Language`, else English.
    pub fn language(&self) -> Lang {
        Lang::negotiate(
            None,
            self.header_value("language"),
            self.header_value("accept-language"),
        )
    }

    fn header_value(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// How an attempt ended without a provider response, as a gateway or an HTTP client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoResponse {
    /// The connection failed before any byte of the request was written, so the provider cannot have
    /// processed it: `provider_unavailable` (failed, retry, failover-safe).
    NotSent,
    /// A timeout, or a connection lost after the request was (or may have been) written: the provider
    /// may have executed it: `timeout` (unknown, poll; never re-sent under a new key, never failed
    /// over).
    MaybeSent,
}

/// How to normalize: which dialect, which language.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Dialect id; `None` or `"auto"` detects it from the response.
    pub dialect: Option<&'a str>,
    /// Language of `message`, `how_to_fix` and `detail`.
    pub lang: Lang,
}

/// Policies that shape verdicts (SPEC §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Backoff for retryable verdicts.
    pub retry: RetryPolicy,
    /// Polling for unknown outcomes.
    pub poll: PollPolicy,
}

/// Field paths of one dialect, per kind, container-major.
#[derive(Clone, Debug, Default)]
struct Fields {
    code: Vec<(usize, PathId)>,
    message: Vec<(usize, PathId)>,
    scope: Vec<(usize, PathId)>,
    status: Vec<(usize, PathId)>,
    reason: Vec<(usize, PathId)>,
    param: Vec<(usize, PathId)>,
}

#[derive(Clone, Debug)]
struct Loaded {
    dialect: Dialect,
    fields: Fields,
    trie: Trie,
    auto_detect: bool,
}

/// Normalizes provider responses against a set of dialect catalogs. Cheap to share across threads.
#[derive(Clone, Debug)]
pub struct Engine {
    taxonomy: Taxonomy,
    dialects: Vec<Loaded>,
    detect_trie: Trie,
    settings: Settings,
}

impl Engine {
    /// The built-in dialects with default settings.
    pub fn builtin() -> Result<Engine, Error> {
        Engine::new(Settings::default(), &[])
    }

    /// The built-in dialects plus `user` catalogs, given as `(file name, TOML text)`. A user catalog
    /// whose id is a built-in one replaces it; others are added after the built-ins, in the order given.
    pub fn new(settings: Settings, user: &[(String, String)]) -> Result<Engine, Error> {
        let taxonomy = Taxonomy::builtin()?;
        let mut dialects: Vec<Dialect> = Vec::new();
        let builtins = BUILTIN_CATALOGS.iter().map(|(file, text)| (*file, *text));
        let users = user.iter().map(|(f, t)| (f.as_str(), t.as_str()));
        for (file, text) in builtins.chain(users) {
            let dialect = Dialect::parse(file, text, &taxonomy)
                .map_err(|diagnostics| Error::catalog(file, diagnostics))?;
            match dialects.iter_mut().find(|d| d.id == dialect.id) {
                Some(slot) => *slot = dialect,
                None => dialects.push(dialect),
            }
        }
        let mut paths: FxHashMap<String, PathId> = FxHashMap::default();
        let mut detect_trie = Trie::default();
        let loaded = dialects
            .into_iter()
            .map(|dialect| {
                let mut trie = Trie::default();
                // The generic dialect's paths are read under auto too (it is the fallback), but it
                // never competes in detection.
                let fields =
                    compile_fields(&dialect, &mut paths, &mut [&mut trie, &mut detect_trie]);
                let auto_detect = &*dialect.id != GENERIC_DIALECT;
                Loaded {
                    dialect,
                    fields,
                    trie,
                    auto_detect,
                }
            })
            .collect();
        Ok(Engine {
            taxonomy,
            dialects: loaded,
            detect_trie,
            settings,
        })
    }

    /// The taxonomy the engine decides with.
    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// The policies the engine decides with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Every dialect, built-ins first.
    pub fn dialects(&self) -> impl Iterator<Item = &Dialect> {
        self.dialects.iter().map(|l| &l.dialect)
    }

    /// A dialect by id.
    pub fn dialect(&self, id: &str) -> Option<&Dialect> {
        self.loaded(id).map(|l| &l.dialect)
    }

    fn loaded(&self, id: &str) -> Option<&Loaded> {
        self.dialects.iter().find(|l| &*l.dialect.id == id)
    }

    /// A dialect by id, or an [`ErrorKind::UnknownDialect`](crate::ErrorKind::UnknownDialect) error that lists the known ids.
    pub fn require_dialect(&self, id: &str) -> Result<&Dialect, Error> {
        self.require(id).map(|l| &l.dialect)
    }

    fn require(&self, id: &str) -> Result<&Loaded, Error> {
        self.loaded(id).ok_or_else(|| {
            let known: Vec<&str> = self.dialects.iter().map(|l| &*l.dialect.id).collect();
            Error::unknown_dialect(id, &known)
        })
    }

    /// Normalizes one response. Fails only for an unknown dialect id: every response, however broken,
    /// gets a verdict.
    pub fn normalize(
        &self,
        response: &Response<'_>,
        options: &Options<'_>,
    ) -> Result<Verdict, Error> {
        let (loaded, captures, kind) = match options.dialect {
            Some(id) if id != "auto" => {
                let loaded = self.require(id)?;
                let (kind, captures) = capture(response.body, &loaded.trie);
                (loaded, captures, kind)
            }
            _ => {
                let (kind, captures) = capture(response.body, &self.detect_trie);
                (self.detect(&captures), captures, kind)
            }
        };
        let mut signal = read_signal(&loaded.fields, &captures);
        signal.http_status = Some(response.http_status);
        signal.body = Some(kind);
        let resolution = decide(&loaded.dialect, &self.taxonomy, &signal);
        let retry_after = response
            .header_value("retry-after")
            .and_then(|v| parse_retry_after(v, response.header_value("date"), SystemTime::now()));
        Ok(self.verdict(
            &loaded.dialect,
            resolution,
            &signal,
            retry_after,
            options.lang,
        ))
    }

    /// The verdict for an attempt that got no response at all, in `dialect`'s name (`matched_by`
    /// `transport`). Whether the provider can have run the request is all that is known, so that alone
    /// decides: see [`NoResponse`].
    pub fn no_response(
        &self,
        dialect: &str,
        what: NoResponse,
        lang: Lang,
    ) -> Result<Verdict, Error> {
        let loaded = self.require(dialect)?;
        let code = match what {
            NoResponse::NotSent => "provider_unavailable",
            NoResponse::MaybeSent => "timeout",
        };
        // Both codes are in the built-in taxonomy; were one missing, unknown is the safe answer.
        let canonical = self
            .taxonomy
            .code(code)
            .unwrap_or_else(|| self.taxonomy.unknown_outcome());
        let resolution = Resolution::rule(canonical, canonical.decision, MatchedBy::Transport);
        Ok(self.verdict(&loaded.dialect, resolution, &Signal::default(), None, lang))
    }

    /// The verdict a dialect gives a code without a response: what `payerr explain` shows. `scope`
    /// and `reason` narrow codes documented more than once.
    pub fn explain(
        &self,
        dialect: &str,
        code: &str,
        scope: Option<&str>,
        reason: Option<&str>,
        lang: Lang,
    ) -> Result<Verdict, Error> {
        let loaded = self.require(dialect)?;
        let signal = Signal {
            code: Some(Cow::Borrowed(code.trim())),
            scope: scope.map(Cow::Borrowed),
            reason: reason.map(Cow::Borrowed),
            ..Signal::default()
        };
        let resolution = decide(&loaded.dialect, &self.taxonomy, &signal);
        // With no response, what the provider "said" is what its document says for the code.
        let signal = Signal {
            message: resolution.entry.map(|e| Cow::Borrowed(&*e.message)),
            ..signal
        };
        Ok(self.verdict(&loaded.dialect, resolution, &signal, None, lang))
    }

    /// Picks the dialect whose catalog best explains the captured fields; the generic dialect when none
    /// does. Scores: a distinctive field present (status, scope or reason with a documented value) 3
    /// each; a code 1, documented 4 more, or in a documented range 2 more; the documented message for
    /// that code 4.
    fn detect(&self, captures: &Captures<'_>) -> &Loaded {
        let mut best: Option<(u32, &Loaded)> = None;
        if !captures.is_empty() {
            for loaded in self.dialects.iter().filter(|l| l.auto_detect) {
                let score = score(loaded, captures);
                if score > 0 && best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, loaded));
                }
            }
        }
        match best {
            Some((_, loaded)) => loaded,
            None => self
                .loaded(GENERIC_DIALECT)
                .unwrap_or(&self.dialects[self.dialects.len() - 1]),
        }
    }

    fn verdict(
        &self,
        dialect: &Dialect,
        r: Resolution<'_>,
        signal: &Signal<'_>,
        retry_after: Option<u64>,
        lang: Lang,
    ) -> Verdict {
        let d = r.decision;
        let how_to_fix = r
            .remedy
            .unwrap_or(&r.canonical.how_to_fix)
            .get(lang)
            .clone();
        let param = signal.param.as_deref().map(str::to_owned).or_else(|| {
            let entry = r.entry.filter(|e| e.param_in_message)?;
            param_from_message(signal.message.as_deref()?, &entry.message)
        });
        Verdict {
            dialect: dialect.id.clone(),
            outcome: d.outcome,
            category: r.canonical.category,
            code: r.canonical.code.clone(),
            message: r.canonical.message.get(lang).clone(),
            next_action: d.next_action,
            retryable: d.retryable,
            retry_after_ms: first_delay(
                &d,
                retry_after,
                self.settings.retry.base_ms,
                self.settings.poll.interval_ms,
            ),
            failover_safe: d.failover_safe,
            actor: d.actor,
            http_status: d.http_status,
            param: param.map(|p| mask_pans(&p).into_owned()),
            how_to_fix: Some(how_to_fix),
            matched_by: r.matched_by,
            ambiguous: r.candidates.iter().map(|e| candidate(e)).collect(),
            source: Source {
                code: masked(&signal.code),
                message: masked(&signal.message),
                scope: masked(&signal.scope),
                status: masked(&signal.status),
                reason: masked(&signal.reason),
                http_status: signal.http_status,
            },
            detail: r.entry.map(|e| e.text.get(lang).clone()),
        }
    }
}

/// What the provider said, with card numbers masked: nothing a provider echoes reaches a verdict whole.
fn masked(value: &Option<Cow<'_, str>>) -> Option<String> {
    value.as_deref().map(|v| mask_pans(v).into_owned())
}

fn candidate(e: &crate::catalog::Entry) -> Candidate {
    Candidate {
        provider_code: e.code.clone(),
        scope: e.scope.clone(),
        reason: e.reason.clone(),
        provider_message: e.message.clone(),
        code: e.canonical.code.clone(),
        category: e.canonical.category,
        outcome: e.decision.outcome,
        next_action: e.decision.next_action,
    }
}

/// Registers a dialect's field paths and adds them to the given tries.
fn compile_fields(
    dialect: &Dialect,
    paths: &mut FxHashMap<String, PathId>,
    tries: &mut [&mut Trie],
) -> Fields {
    let env = &dialect.envelope;
    let mut kind = |names: &[String]| {
        let mut out = Vec::new();
        for (c, container) in env.containers.iter().enumerate() {
            for name in names {
                let path = if container.is_empty() {
                    name.clone()
                } else {
                    format!("{container}.{name}")
                };
                let next = paths.len() as PathId;
                let id = *paths.entry(path.clone()).or_insert(next);
                let keys: Vec<&str> = path.split('.').collect();
                for trie in tries.iter_mut() {
                    trie.insert(&keys, id);
                }
                out.push((c, id));
            }
        }
        out
    };
    Fields {
        code: kind(&env.code),
        message: kind(&env.message),
        scope: kind(&env.scope),
        status: kind(&env.status),
        reason: kind(&env.reason),
        param: kind(&env.param),
    }
}

/// Reads a dialect's fields from the captures: the code first, then every other field preferably from
/// the container the code came from. Empty strings count as absent.
fn read_signal<'a>(fields: &Fields, captures: &'a Captures<'_>) -> Signal<'a> {
    let find = |paths: &[(usize, PathId)], container: Option<usize>| {
        let present = |&&(c, id): &&(usize, PathId)| {
            container.is_none_or(|want| c == want)
                && captures.get(id).is_some_and(|v| !v.is_blank())
        };
        paths
            .iter()
            .find(present)
            .map(|&(c, id)| (c, captures.get(id).map(|v| v.text())))
    };
    let code = find(&fields.code, None);
    let container = code.as_ref().map(|(c, _)| *c);
    let near = |paths: &[(usize, PathId)]| {
        container
            .and_then(|c| find(paths, Some(c)))
            .or_else(|| find(paths, None))
            .and_then(|(_, v)| v)
    };
    Signal {
        code: code.and_then(|(_, v)| v),
        message: near(&fields.message),
        scope: near(&fields.scope),
        status: near(&fields.status),
        reason: near(&fields.reason),
        param: near(&fields.param),
        http_status: None,
        body: None,
    }
}

fn score(loaded: &Loaded, captures: &Captures<'_>) -> u32 {
    let dialect = &loaded.dialect;
    let signal = read_signal(&loaded.fields, captures);
    let mut score = 0;
    if let Some(code) = signal.code.as_deref() {
        let numeric = code.strip_prefix('-').unwrap_or(code);
        let numeric = !numeric.is_empty() && numeric.bytes().all(|b| b.is_ascii_digit());
        if numeric != (dialect.envelope.code_format == CodeFormat::Numeric) {
            return 0;
        }
        score += 1;
        if dialect.knows(code) {
            score += 4;
            let said = signal.message.as_deref().unwrap_or_default();
            if dialect
                .entries_for(code)
                .any(|e| contains_ignore_ascii_case(said, &e.message))
            {
                score += 4;
            }
        } else if dialect.range_for(code).is_some() {
            score += 2;
        }
    }
    let statuses = dialect
        .status_rules
        .iter()
        .filter_map(|r| match &r.selector {
            Selector::Status(v) => Some(v.as_str()),
            _ => None,
        });
    if documented(signal.status.as_deref(), statuses) {
        score += 3;
    }
    let scopes = dialect
        .status_rules
        .iter()
        .filter_map(|r| match &r.selector {
            Selector::Scope(v) => Some(v.as_str()),
            _ => None,
        })
        .chain(dialect.entries.iter().filter_map(|e| e.scope.as_deref()));
    if documented(signal.scope.as_deref(), scopes) {
        score += 3;
    }
    if signal.reason.is_some() {
        score += 3;
    }
    score
}

/// Whether `value` is one of the documented `values`, compared without ASCII case.
fn documented<'a>(value: Option<&str>, mut values: impl Iterator<Item = &'a str>) -> bool {
    value.is_some_and(|v| values.any(|s| s.eq_ignore_ascii_case(v.trim())))
}

/// Whether `needle` occurs in `haystack`, ASCII letters compared without case; an empty needle or
/// haystack never matches. Allocation-free, for auto-detection on the normalize path.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    !h.is_empty() && !n.is_empty() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The built-in engine, built once.
fn builtin_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // The built-in catalogs are part of this crate and checked by its tests.
        Engine::builtin().expect("built-in catalogs are valid")
    })
}

/// Normalizes a response with the built-in dialects, detecting the dialect, in English.
pub fn normalize(response: &Response<'_>) -> Verdict {
    builtin_engine()
        .normalize(response, &Options::default())
        .unwrap_or_else(|e| unreachable!("auto-detection needs no dialect id: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_can_be_shared_across_threads() {
        fn is<T: Send + Sync>() {}
        is::<Engine>();
    }

    #[test]
    fn substring_match_ignores_ascii_case_only() {
        assert!(contains_ignore_ascii_case(
            "card_number INVALID request parameter",
            "Invalid request parameter"
        ));
        assert!(!contains_ignore_ascii_case("", "x"));
        assert!(!contains_ignore_ascii_case("x", ""));
        assert!(!contains_ignore_ascii_case("short", "longer needle"));
        assert!(contains_ignore_ascii_case("余额不足", "余额"));
    }
}
