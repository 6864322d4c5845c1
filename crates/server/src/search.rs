//! Ranked search over every catalog entry: its code, the provider's message and remedy, its text and
//! its canonical code's customer message and remedy, in English and Chinese. Built once per catalog
//! load, so a query never touches the catalogs themselves.

use std::sync::Arc;

use payerr::catalog::Entry;
use payerr::taxonomy::{CanonicalCode, Text};
use payerr::{Engine, Lang};
use serde::Serialize;

/// How much a match in each field counts. Codes weigh most: a person pasting a code wants that code.
mod weight {
    pub const CODE_EXACT: u32 = 100;
    pub const CODE: u32 = 30;
    pub const CANONICAL: u32 = 20;
    pub const MESSAGE: u32 = 12;
    pub const TEXT: u32 = 8;
    pub const CUSTOMER_MESSAGE: u32 = 6;
    pub const REMEDY: u32 = 4;
}

/// One searchable entry.
#[derive(Debug)]
struct Doc {
    dialect: Arc<str>,
    entry: Entry,
    /// Lowercased texts with their weights.
    fields: Vec<(String, u32)>,
}

/// The index over all dialects of one engine.
#[derive(Debug, Default)]
pub struct SearchIndex {
    docs: Vec<Doc>,
}

/// One result, in the language asked for.
#[derive(Debug, Serialize)]
pub struct Hit<'a> {
    /// Dialect id.
    pub dialect: &'a str,
    /// The provider's code.
    pub code: &'a str,
    /// Scope of the code (typed-error's `type`), if documented with one.
    #[serde(rename = "type")]
    pub scope: Option<&'a str>,
    /// Reason text that selects this meaning, if any.
    pub reason: Option<&'a str>,
    /// The provider's documented message.
    pub provider_message: &'a str,
    /// What the code means, for support staff.
    pub text: &'a str,
    /// The provider's remedy, else the canonical one.
    pub how_to_fix: &'a str,
    /// Canonical code.
    pub canonical_code: &'a str,
    /// Category.
    pub category: payerr::Category,
    /// Outcome the entry decides.
    pub outcome: payerr::Outcome,
    /// Next action the entry decides.
    pub next_action: payerr::NextAction,
    /// Relevance; higher first.
    pub score: u32,
}

/// The form texts and queries are compared in: lowercase, `_` read as a space (so `expired_card`
/// and `expired card` are the same words).
fn fold(text: &str) -> String {
    text.to_lowercase().replace('_', " ")
}

fn both(text: &Text) -> [String; 2] {
    [fold(&text.en), fold(&text.zh)]
}

impl SearchIndex {
    /// Indexes every entry of every dialect of `engine`.
    pub fn build(engine: &Engine) -> SearchIndex {
        let mut docs = Vec::new();
        for dialect in engine.dialects() {
            for entry in &dialect.entries {
                let canonical: &CanonicalCode = &entry.canonical;
                let mut fields = vec![
                    (fold(&entry.code), weight::CODE),
                    (fold(&canonical.code), weight::CANONICAL),
                    (fold(&entry.message), weight::MESSAGE),
                ];
                let texts = [
                    (Some(&entry.text), weight::TEXT),
                    (Some(&canonical.message), weight::CUSTOMER_MESSAGE),
                    (entry.remedy.as_ref(), weight::REMEDY),
                    (Some(&canonical.how_to_fix), weight::REMEDY),
                ];
                for (text, w) in texts {
                    if let Some(text) = text {
                        fields.extend(both(text).into_iter().map(|t| (t, w)));
                    }
                }
                docs.push(Doc {
                    dialect: dialect.id.clone(),
                    entry: entry.clone(),
                    fields,
                });
            }
        }
        SearchIndex { docs }
    }

    /// Entries matching every word of `query` (case-insensitive substrings, so `insufficient` finds
    /// `insufficient_funds` and `余额不足` finds Chinese texts), best first, at most `limit`; with the
    /// number of matches in all.
    pub fn search(
        &self,
        query: &str,
        dialect: Option<&str>,
        lang: Lang,
        limit: usize,
    ) -> (usize, Vec<Hit<'_>>) {
        let query = query.trim();
        let folded = fold(query);
        let terms: Vec<&str> = folded.split_whitespace().collect();
        let mut scored: Vec<(u32, usize)> = self
            .docs
            .iter()
            .enumerate()
            .filter(|(_, d)| dialect.is_none_or(|id| &*d.dialect == id))
            .filter_map(|(i, d)| d.score(query, &terms).map(|s| (s, i)))
            .collect();
        // Best first; equal scores keep catalog order (dialect order, then document order).
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let total = scored.len();
        let hits = scored
            .into_iter()
            .take(limit)
            .map(|(score, i)| self.docs[i].hit(score, lang))
            .collect();
        (total, hits)
    }
}

impl Doc {
    /// `None` unless every term matches some field.
    fn score(&self, query: &str, terms: &[&str]) -> Option<u32> {
        if terms.is_empty() {
            return None;
        }
        let mut score = 0;
        for term in terms {
            // Every field the term appears in counts: a word that runs through the code, the
            // message and the texts describes the entry better than one that only brushes a code.
            let matched: u32 = self
                .fields
                .iter()
                .filter(|(text, _)| text.contains(term))
                .map(|(_, w)| *w)
                .sum();
            if matched == 0 {
                return None;
            }
            score += matched;
        }
        if self.entry.code.eq_ignore_ascii_case(query) {
            score += weight::CODE_EXACT;
        }
        // The whole query as one phrase in a field counts that field once more.
        if terms.len() > 1 {
            let phrase = terms.join(" ");
            score += self
                .fields
                .iter()
                .filter(|(text, _)| text.contains(&phrase))
                .map(|(_, w)| *w)
                .max()
                .unwrap_or(0);
        }
        Some(score)
    }

    fn hit(&self, score: u32, lang: Lang) -> Hit<'_> {
        let e = &self.entry;
        Hit {
            dialect: &self.dialect,
            code: &e.code,
            scope: e.scope.as_deref(),
            reason: e.reason.as_deref(),
            provider_message: &e.message,
            text: e.text.get(lang),
            how_to_fix: e
                .remedy
                .as_ref()
                .unwrap_or(&e.canonical.how_to_fix)
                .get(lang),
            canonical_code: &e.canonical.code,
            category: e.canonical.category,
            outcome: e.decision.outcome,
            next_action: e.decision.next_action,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payerr::Category;

    fn index() -> SearchIndex {
        SearchIndex::build(&Engine::builtin().unwrap())
    }

    #[test]
    fn english_and_chinese_both_find_every_balance_error() {
        let engine = Engine::builtin().unwrap();
        let index = SearchIndex::build(&engine);
        let balance: Vec<(&str, &str)> = engine
            .dialects()
            .flat_map(|d| d.entries.iter().map(move |e| (d, e)))
            .filter(|(_, e)| e.canonical.category == Category::InsufficientFunds)
            .map(|(d, e)| (&*d.id, &*e.code))
            .collect();
        assert!(balance.len() >= 10);
        for query in ["insufficient", "余额不足"] {
            let (_, hits) = index.search(query, None, Lang::En, 100);
            assert_eq!(hits[0].category, Category::InsufficientFunds, "{query}");
            for wanted in &balance {
                assert!(
                    hits.iter().any(|h| (h.dialect, h.code) == *wanted),
                    "{query} misses {wanted:?}"
                );
            }
        }
    }

    #[test]
    fn an_exact_code_ranks_first_and_words_must_all_match() {
        let index = index();
        let (_, hits) = index.search("expired_card", None, Lang::En, 3);
        assert_eq!(
            (hits[0].dialect, hits[0].code),
            ("typed-error", "expired_card")
        );
        let (_, hits) = index.search("1004", Some("pts"), Lang::Zh, 10);
        assert!(hits.iter().all(|h| h.dialect == "pts"));
        assert_eq!(hits[0].code, "1004");
        let (total, _) = index.search("insufficient zzzz", None, Lang::En, 10);
        assert_eq!(total, 0);
        assert_eq!(index.search("   ", None, Lang::En, 10).0, 0);
    }

    #[test]
    fn results_speak_the_language_asked_for() {
        let index = index();
        let (_, hits) = index.search("expired_card", Some("typed-error"), Lang::Zh, 1);
        assert!(hits[0]
            .text
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }
}
