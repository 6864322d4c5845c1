//! Language selection (SPEC §6): English and Simplified Chinese; anything else falls back to English.

use serde::{Deserialize, Serialize};

/// A language payerr has texts in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// English, the fallback.
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// Reads one language tag in any usual spelling: `zh`, `zh-CN`, `zh_CN`, `zh-Hans`, `en_US`, `EN`.
    /// Every Chinese tag selects Simplified Chinese, the only Chinese payerr has. `None` for others.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// Picks from an `Accept-Language` value: the supported tag with the highest quality, the first on
    /// ties; `None` when none is supported.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The language for a request: an explicit choice (`--lang`, `?lang=`) first, then a seed-001 style
    /// `Language` header, then `Accept-Language`, then English.
    pub fn negotiate(
        explicit: Option<&str>,
        language_header: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        explicit
            .and_then(Lang::parse)
            .or_else(|| language_header.and_then(Lang::parse))
            .or_else(|| accept_language.and_then(Lang::from_accept_language))
            .unwrap_or_default()
    }

    /// The short tag: `en` or `zh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        for tag in ["zh", "zh_CN", "zh-CN", "ZH-cn", "zh-Hans", "zh-TW"] {
            assert_eq!(Lang::parse(tag), Some(Lang::Zh), "{tag}");
        }
        for tag in ["en", "en_US", "en-GB", " EN "] {
            assert_eq!(Lang::parse(tag), Some(Lang::En), "{tag}");
        }
        for tag in ["fr", "", "de-DE", "*"] {
            assert_eq!(Lang::parse(tag), None, "{tag}");
        }
    }

    #[test]
    fn accept_language_takes_the_best_supported_quality() {
        assert_eq!(
            Lang::from_accept_language("fr-FR, zh-CN;q=0.9, en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.5, zh;q=0.7"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr, de"), None);
        assert_eq!(Lang::from_accept_language("zh;q=abc"), Some(Lang::Zh));
    }

    #[test]
    fn explicit_beats_headers_and_unknown_falls_back_to_english() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("zh_CN"), Some("zh")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(None, Some("zh_CN"), Some("en")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("fr"), None, Some("zh-CN")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("fr"), Some("de"), None), Lang::En);
    }
}
