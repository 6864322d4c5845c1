//! What must never reach the database: full card numbers and card security codes.
//!
//! Every text field of an [`Event`] goes through [`sanitize_text`] on the writer thread, whoever built
//! the event: card numbers are masked to first 6 + last 4 by [`payerr::pan::mask_pans`] (13–19 digits
//! passing Luhn, also grouped with spaces, dashes or `+`, plain or percent-encoded, or followed by an expiry), and `name=value` pairs whose name looks like a
//! card security code are removed whole. The path is the obvious place for such a pair (a query
//! string), but an error text can quote the upstream URL, so every field is treated alike.

use std::borrow::Cow;

use payerr::pan::{mask_pans, JOINER_CHARS};

use crate::event::Event;

/// The event with every text field sanitized by [`sanitize_text`].
pub fn sanitize(mut event: Event) -> Event {
    for text in [
        &mut event.request_id,
        &mut event.provider,
        &mut event.dialect,
        &mut event.method,
        &mut event.path,
        &mut event.code,
    ] {
        clean_in_place(text);
    }
    for text in [
        &mut event.provider_code,
        &mut event.error,
        &mut event.operation_id,
    ]
    .into_iter()
    .flatten()
    {
        clean_in_place(text);
    }
    event
}

fn clean_in_place(text: &mut String) {
    if let Cow::Owned(clean) = sanitize_text(text) {
        *text = clean;
    }
}

/// `text` with card numbers masked and CVV-like `name=value` pairs removed (see the module docs).
/// Borrows when there was nothing to change, which is almost always.
pub fn sanitize_text(text: &str) -> Cow<'_, str> {
    // Removing a pair can join the digits around it into a card number (`4111 1111?cvv=1 …`);
    // masking only turns digits into `*`, so masking last leaves neither behind.
    match strip_security_codes(text) {
        Cow::Borrowed(text) => mask_pans(text),
        Cow::Owned(stripped) => Cow::Owned(mask_pans(&stripped).into_owned()),
    }
}

/// Removes every `name=value` pair whose name is CVV-like ([`is_security_code_name`]), with one of
/// the `&` around it, so a query keeps its shape: `/pay?a=1&cvv=123&b=2` becomes `/pay?a=1&b=2`,
/// `/pay?cvv=123` becomes `/pay`.
fn strip_security_codes(text: &str) -> Cow<'_, str> {
    if !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    // `text[..copied]` is decided: in `out`, or removed.
    let mut copied = 0;
    let mut search = 0;
    while let Some(offset) = text[search..].find('=') {
        let eq = search + offset;
        let start = text[..eq]
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = text[eq + 1..]
            .find(is_value_end)
            .map_or(text.len(), |i| eq + 1 + i);
        // A value may itself hold `=` (`a=b=c`): the next pair starts after it.
        search = end.max(eq + 1);
        if start == eq || start < copied || !is_security_code_name(&text[start..eq]) {
            continue;
        }
        out.push_str(&text[copied..start]);
        // The separator before the pair, as the result has it (an earlier removal may have moved it).
        let separated = matches!(out.chars().last(), Some('?' | '&'));
        copied = end;
        if separated && text[end..].starts_with('&') {
            // `?cvv=1&b=2` → `?b=2`: the `&` after the pair goes with it.
            copied += 1;
        } else if separated {
            // `a=1&cvv=1` → `a=1`, `/pay?cvv=1` → `/pay`: the separator before it goes.
            out.pop();
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Characters of a parameter name: `card[cvc]`, `payment.card.cvv`, `card%5Bcvc%5D`, `security-code`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '%')
}

/// Where a value ends: the next pair, the fragment, or the end of a word in free text.
fn is_value_end(c: char) -> bool {
    matches!(c, '&' | '#' | ';' | ',' | ')' | '"' | '\'' | '<' | '>') || c.is_whitespace()
}

/// Card-security-code tokens: CVV, CVC, CVV2, CVC2, CVN, CSC, CVD (Discover), CID is left out because
/// it far more often means a customer or client id.
const CODE_TOKENS: [&str; 8] = ["cvv", "cvc", "cvv2", "cvc2", "cvn", "cvn2", "csc", "cvd"];

/// Two-word spellings: `security_code`, `card_verification_value`, `cardSecurityCode`, `x_card_code`.
const CODE_PHRASES: [[&str; 2]; 4] = [
    ["security", "code"],
    ["verification", "value"],
    ["verification", "code"],
    ["card", "code"],
];

/// Whether a parameter name names a card security code: one of its words (split at punctuation,
/// brackets and camelCase, after percent-decoding, case-insensitive) is a CVV-like token, or two
/// consecutive words form one of the phrases above.
pub fn is_security_code_name(name: &str) -> bool {
    let words = words(&percent_decode(name));
    words.iter().any(|w| CODE_TOKENS.contains(&w.as_str()))
        || words.windows(2).any(|pair| {
            CODE_PHRASES
                .iter()
                .any(|p| pair[0] == p[0] && pair[1] == p[1])
        })
}

/// Lower-case words of a name: `card[securityCode]` → `card`, `security`, `code`.
fn words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            words.extend((!current.is_empty()).then(|| std::mem::take(&mut current)));
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    words.extend((!current.is_empty()).then_some(current));
    words
}

/// `%5B` → `[`; anything that is not a valid escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every card number in `bytes` (a database file, a log), as the text around it: empty when there
/// is none. After [`EventLog`](crate::EventLog) wrote, `find_card_numbers` of the database file and of
/// its `-wal` file is empty (what the gateway's tests check).
///
/// A card number is what [`mask_pans`] masks: 13–19 digits passing Luhn, in one run (alone or with
/// its expiry) or in groups joined by a single space, dash or `+`, plain or percent-encoded (`%20`,
/// `%2D`, `%2B`), also right after a percent-escape (`%A94111…`). The definition is the sanitizer's
/// own, so the scan checks what
/// the sanitizer promises, and an id of 20 digits or more (which it keeps) is not reported. In a
/// binary file a stored text can sit next to bytes that happen to be ASCII digits (a SQLite record
/// header, an integer) and lengthen its run; a sanitizer bypassed by mistake shows up all the same,
/// because then every card number of the data is stored, most with other neighbours.
pub fn find_card_numbers(bytes: &[u8]) -> Vec<String> {
    // Card numbers consist of digits and their joiners only, so the candidates are the maximal runs
    // of those bytes and of hex digits (a percent-escape before a card number, `%A9`, is part of
    // what mask_pans reads); it sees the same digit groups and escapes in a run as in the
    // surrounding text.
    let in_run = |b: u8| b.is_ascii_hexdigit() || JOINER_CHARS.contains(&char::from(b));
    let around = |c: char| JOINER_CHARS.contains(&c) || c.is_ascii_alphabetic();
    bytes
        .split(|&b| !in_run(b))
        .filter(|run| run.iter().filter(|b| b.is_ascii_digit()).count() >= 13)
        .filter_map(|run| std::str::from_utf8(run).ok())
        .filter(|run| matches!(mask_pans(run), Cow::Owned(_)))
        .map(|run| run.trim_matches(around).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{event, Scratch};
    use crate::{EventLog, EventLogOptions};

    const PAN: &str = "4111111111111111";

    #[test]
    fn removes_cvv_like_query_parameters_and_keeps_the_rest() {
        let cases = [
            ("/pay?cvv=123", "/pay"),
            ("/pay?cvv=123&amount=10", "/pay?amount=10"),
            ("/pay?amount=10&cvv=123", "/pay?amount=10"),
            ("/pay?a=1&CVC2=123&b=2", "/pay?a=1&b=2"),
            ("/pay?a=1&cvv=1&cvc=2&csc=3&b=2", "/pay?a=1&b=2"),
            ("/pay?card[cvc]=123&x=1", "/pay?x=1"),
            ("/pay?card%5Bcvc%5D=123", "/pay"),
            ("/pay?cardSecurityCode=123&x=1", "/pay?x=1"),
            (
                "/pay?security_code=1&card_verification_value=2&card_security_code=3",
                "/pay",
            ),
            ("/pay?x_card_code=123&cvn=1&cvv2=2&cvd=3", "/pay"),
            ("/pay?payment.card.cvv=123", "/pay"),
            ("/pay?cvv=&a=1", "/pay?a=1"),
            // Names that only look alike stay.
            (
                "/pay?cvvx=1&discount=2&code=3&security=4&cid=5",
                "/pay?cvvx=1&discount=2&code=3&security=4&cid=5",
            ),
            ("/payments/cvv", "/payments/cvv"),
            ("/pay?a=b=c", "/pay?a=b=c"),
        ];
        for (path, want) in cases {
            assert_eq!(sanitize_text(path), want, "{path}");
        }
    }

    #[test]
    fn removes_security_codes_quoted_in_free_text() {
        assert_eq!(
            sanitize_text(
                "error sending request for url (http://psp/pay?amount=1&cvv=123): timed out"
            ),
            "error sending request for url (http://psp/pay?amount=1): timed out"
        );
        assert_eq!(sanitize_text("bad cvc=999 given"), "bad  given");
        // Names next to non-ASCII text.
        assert_eq!(sanitize_text("é=1&cvv=2"), "é=1");
        assert_eq!(sanitize_text("卡cvv=123 无效"), "卡 无效");
        // The removal joins two digit groups into a card number, which is then masked.
        assert_eq!(
            sanitize_text("4111 1111 1111?cvv=1 1111"),
            "4111 11** **** 1111"
        );
    }

    #[test]
    fn masks_card_numbers_everywhere_and_borrows_clean_text() {
        assert_eq!(
            sanitize_text("/pay?pan=4111111111111111&cvv=123"),
            "/pay?pan=411111******1111"
        );
        assert_eq!(
            sanitize_text("card 4111-1111-1111-1111 refused"),
            "card 4111-11**-****-1111 refused"
        );
        assert!(matches!(sanitize_text("/pay?amount=10"), Cow::Borrowed(_)));
        assert!(matches!(
            sanitize_text("order 4111111111111112"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn sanitizes_every_text_field_of_an_event() {
        let mut e = event(0, "r", "acme", 1);
        e.request_id = format!("req-{PAN}");
        e.path = format!("/cards/{PAN}/charge?cvv=123&pan={PAN}");
        e.provider_code = Some(format!("CARD_{PAN}"));
        e.error = Some(format!("connect to http://psp/{PAN}?cvc=999 failed"));
        e.operation_id = Some(PAN.to_owned());
        let e = sanitize(e);
        assert_eq!(e.request_id, "req-411111******1111");
        assert_eq!(
            e.path,
            "/cards/411111******1111/charge?pan=411111******1111"
        );
        assert_eq!(e.provider_code.as_deref(), Some("CARD_411111******1111"));
        assert_eq!(
            e.error.as_deref(),
            Some("connect to http://psp/411111******1111 failed")
        );
        assert_eq!(e.operation_id.as_deref(), Some("411111******1111"));
    }

    #[test]
    fn finds_card_numbers_in_raw_bytes_as_the_sanitizer_defines_them() {
        let mut bytes = b"\x00\x01hdr 4111111111111111\x05".to_vec();
        bytes.extend_from_slice(b"x 5500-0055-5555-5559 y\xff");
        bytes.extend_from_slice(b"?p=4012+8888+8888+1881&q=4111%201111%201111%201111\x00");
        bytes.extend_from_slice(b"t=41111111111111111229;");
        bytes.extend_from_slice(b"&c=4111%2D1111%2d1111%2D1111&");
        bytes.extend_from_slice(b"&u=user%404111111111111111&n=caf%C3%A95500005555555559&");
        // Not card numbers: masked, failing Luhn, too long to be one.
        bytes.extend_from_slice(b"411111******1111 4111111111111112 12345678901234567890123456");
        assert_eq!(
            find_card_numbers(&bytes),
            [
                "4111111111111111",
                "5500-0055-5555-5559",
                "4012+8888+8888+1881",
                "4111%201111%201111%201111",
                "41111111111111111229",
                "4111%2D1111%2d1111%2D1111",
                "404111111111111111",
                "3%A95500005555555559"
            ]
        );
        assert!(find_card_numbers(b"").is_empty());
    }

    /// The database file (and its WAL) never holds a card number, whichever field carried it.
    #[test]
    fn no_card_number_reaches_the_database_file() {
        let dir = Scratch::new("scan");
        let log = EventLog::open(dir.path(), EventLogOptions::default()).expect("opens");
        let pans = [
            PAN,
            "5500-0055-5555-5559",
            "4012 8888 8888 1881",
            "378282246310005",
            "4111+1111+1111+1111",
            "5500%200055%205555%205559",
            "41111111111111111229",
            "4012%2D8888%2D8888%2D1881",
        ];
        for (i, pan) in pans.into_iter().enumerate() {
            let mut e = event(1, &format!("req-{pan}"), &format!("acme{pan}"), 1);
            e.dialect = format!("{pan}-dialect");
            e.method = pan.to_owned();
            e.path = format!("/v1/cards/{pan}/charge?pan={pan}&cvv=737&card%5Bcvc%5D=737");
            e.code = format!("code_{pan}");
            e.provider_code = Some(pan.to_owned());
            e.error = Some(format!(
                "connect error for http://psp/pay?pan={pan}&cvc=737"
            ));
            e.operation_id = Some(format!("op{pan}"));
            e.attempt = i as u32 + 1;
            log.record(e);
        }
        // Scanned while the log is open (events in the WAL) and after close (checkpointed).
        assert!(eventually_written(&log, pans.len() as u64));
        let scan = |dir: &std::path::Path| {
            let mut found = Vec::new();
            let mut bytes = Vec::new();
            for suffix in ["", "-wal"] {
                let file = format!("{}{suffix}", crate::db_path(dir).display());
                let content = std::fs::read(file).unwrap_or_default();
                found.extend(find_card_numbers(&content));
                bytes.extend(content);
            }
            (found, bytes)
        };
        assert_eq!(scan(dir.path()).0, Vec::<String>::new());
        log.close().expect("closes");
        let (found, bytes) = scan(dir.path());
        assert_eq!(found, Vec::<String>::new());
        // The masked forms are there: the scan looked at the stored text.
        let masked = b"411111******1111";
        assert!(bytes.windows(masked.len()).any(|w| w == masked));
        assert!(!bytes.windows(3).any(|w| w == b"737"));
    }

    /// The scan itself finds a card number stored in a SQLite file without sanitizing.
    #[test]
    fn the_scan_finds_a_card_number_in_a_raw_database_file() {
        let dir = Scratch::new("rawscan");
        std::fs::create_dir_all(dir.path()).expect("creates the directory");
        let path = dir.path().join("raw.sqlite3");
        rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.execute_batch("CREATE TABLE t (a TEXT, b INTEGER, c TEXT)")?;
                let a = format!("pan {PAN}.");
                c.execute(
                    "INSERT INTO t VALUES (?1, 42, ?2)",
                    [&a, "x 4012 8888 8888 1881"],
                )
            })
            .expect("writes");
        assert_eq!(
            find_card_numbers(&std::fs::read(&path).expect("reads")),
            [PAN, "4012 8888 8888 1881"]
        );
    }

    fn eventually_written(log: &EventLog, n: u64) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while log.written() < n && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        log.written() == n
    }

    /// Any text, however odd, comes out without a panic and without a card number.
    #[test]
    fn arbitrary_text_never_panics() {
        let alphabet: Vec<char> = "=&?#%5Bc vCV-_.[]é卡4111 0123456789".chars().collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let len = (state % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    // xorshift: deterministic, no dependency.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let clean = sanitize_text(&text);
            assert!(find_card_numbers(clean.as_bytes()).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn security_code_names() {
        for name in [
            "cvv",
            "CVV",
            "cvc2",
            "card[cvv]",
            "cardCvc",
            "card-security-code",
            "CSC",
        ] {
            assert!(is_security_code_name(name), "{name}");
        }
        for name in [
            "cid",
            "code",
            "discount",
            "cvvx",
            "securities",
            "card",
            "verification",
        ] {
            assert!(!is_security_code_name(name), "{name}");
        }
    }
}
