//! Card-number masking: no full PAN leaves payerr in a verdict, a log line or a file.

use std::borrow::Cow;
use std::ops::Range;

/// Masks every card number in `text` to its first 6 and last 4 digits (`411111******1111`).
///
/// A card number is 13–19 digits passing the Luhn check, written as one run or in groups separated by
/// single spaces, dashes or `+`, or by those percent-encoded (`%20`, `%2D`, `%2B`, either case):
/// `4111 1111 1111 1111`, `4111-1111-1111-1111`, and the ways a URL writes them. Within a longer sequence of groups (a card number followed by an
/// expiry year), the first contiguous groups that form a card number are masked. A card number
/// written with its expiry in one run of digits (`PAN` + `MMYY` or `YYMM`, as track data and some
/// forms do) is masked too, expiry kept. A card number right after a percent-escape whose hex digits
/// run into it (`card%204111…`, `user%404111…`, `caf%C3%A94111…`) is masked as well. Separators are
/// kept, so the text keeps its shape.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // Most texts hold too few digits to hide a card number, or hold them apart (a request id's
    // groups of hex digits, a date and an amount): answer them without scanning groups. A text
    // shorter than a card number (most of an event's fields) is answered before any counting.
    if bytes.len() < 13 || digit_count(bytes) < 13 || !has_joinable_digits(bytes) {
        return Cow::Borrowed(text);
    }
    scan(text)
}

/// [`mask_pans`] without its shortcuts: every sequence of digit groups looked at.
fn scan(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    // One buffer for every sequence of groups in the text.
    let mut groups = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = mask_sequence(bytes, i, &mut groups, &mut masked);
        if let Some(after) = after_escape(bytes, i) {
            // Both readings are masked: `%4111…` may be a literal `%` before a card number.
            mask_sequence(bytes, after, &mut groups, &mut masked);
        }
        i = end;
    }
    match masked {
        // Only ASCII digits were replaced by ASCII '*', so the bytes are still UTF-8.
        Some(out) => Cow::Owned(String::from_utf8(out).unwrap_or_default()),
        None => Cow::Borrowed(text),
    }
}

/// Masks the card numbers of the sequence of digit groups that starts at `start` (see
/// [`digit_groups`]) into `masked` (a copy of `bytes`, made on the first card); returns where the
/// sequence ends.
fn mask_sequence(
    bytes: &[u8],
    start: usize,
    groups: &mut Vec<Range<usize>>,
    masked: &mut Option<Vec<u8>>,
) -> usize {
    digit_groups(bytes, start, groups);
    let end = groups.last().map_or(start + 1, |g| g.end);
    if groups.iter().map(ExactSizeIterator::len).sum::<usize>() < 13 {
        // Too few digits for a card number, joined or with an expiry.
        return end;
    }
    let mut first = 0;
    while first < groups.len() {
        if let Some(last) = card_in(bytes, &groups[first..]) {
            let out = masked.get_or_insert_with(|| bytes.to_vec());
            mask(out, &groups[first..=first + last]);
            first += last + 1;
            continue;
        }
        if let Some(card) = card_before_expiry(bytes, &groups[first]) {
            let out = masked.get_or_insert_with(|| bytes.to_vec());
            mask(out, &[card]);
        }
        first += 1;
    }
    end
}

/// Where the digits after a percent-escape start, when the run of digits at `start` begins inside
/// one: the escape's hex digits run into a number written right after it (`card%204111…`,
/// `caf%C3%A94111…`), and that number must be read on its own too.
fn after_escape(bytes: &[u8], start: usize) -> Option<usize> {
    let escape_end = if start >= 1 && bytes[start - 1] == b'%' {
        start + 2
    } else if start >= 2 && bytes[start - 2] == b'%' && bytes[start - 1].is_ascii_hexdigit() {
        start + 1
    } else {
        return None;
    };
    let escape_in_run = bytes.get(start..escape_end)?.iter().all(u8::is_ascii_digit);
    (escape_in_run && bytes.get(escape_end).is_some_and(u8::is_ascii_digit)).then_some(escape_end)
}

/// How many ASCII digits `bytes` holds. Counted in byte-wide sums over blocks of at most 255 bytes
/// (a sum that cannot overflow), which the compiler turns into vector instructions: every verdict
/// counts the digits of what the provider said.
fn digit_count(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|block| {
            usize::from(
                block
                    .iter()
                    .fold(0u8, |n, b| n + u8::from(b.is_ascii_digit())),
            )
        })
        .sum()
}

/// Whether some stretch of `bytes` made only of digits and [`JOINER_CHARS`] holds 13 digits or
/// more: a card number, joined, escaped or followed by its expiry, lies within one such stretch,
/// so without one there is nothing to mask. (A joiner's own digits, `%20`, count too: counting
/// more than the card's digits only sends a text to the full scan.)
fn has_joinable_digits(bytes: &[u8]) -> bool {
    let mut digits = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= 13 {
                return true;
            }
        } else if !is_joiner_char(b) {
            digits = 0;
        }
    }
    false
}

/// Whether `b` is one of [`JOINER_CHARS`] (a test keeps the two alike).
fn is_joiner_char(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'+' | b'%' | b'B' | b'b' | b'D' | b'd')
}

/// Every character, besides digits, of the joiners between a card number's groups: a space, `-`,
/// `+`, and the letters of their percent-encodings `%20`, `%2D`, `%2B` (either case). For scanners
/// that look for what [`mask_pans`] masks in other bytes.
pub const JOINER_CHARS: [char; 8] = [' ', '-', '+', '%', 'B', 'b', 'D', 'd'];

/// Runs of digits starting at `start`, joined by a single space, dash or `+`, or one of those
/// percent-encoded, into `groups` (emptied first).
fn digit_groups(bytes: &[u8], start: usize, groups: &mut Vec<Range<usize>>) {
    groups.clear();
    let mut i = start;
    loop {
        let begin = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        groups.push(begin..i);
        let joiner = match bytes.get(i..) {
            Some([b' ' | b'-' | b'+', ..]) => 1,
            Some([b'%', b'2', b'0' | b'D' | b'd' | b'B' | b'b', ..]) => 3,
            _ => 0,
        };
        if joiner == 0 || !bytes.get(i + joiner).is_some_and(u8::is_ascii_digit) {
            return;
        }
        i += joiner;
    }
}

/// In a run of 17–23 digits, a card number followed by its expiry (`MMYY` or `YYMM`): the card's
/// digits, if the run is one.
fn card_before_expiry(bytes: &[u8], run: &Range<usize>) -> Option<Range<usize>> {
    if !(17..=23).contains(&run.len()) {
        return None;
    }
    let card = run.start..run.end - 4;
    let expiry = &bytes[card.end..run.end];
    let month = |pair: &[u8]| {
        matches!(
            u32::from(pair[0] - b'0') * 10 + u32::from(pair[1] - b'0'),
            1..=12
        )
    };
    let is_expiry = month(&expiry[..2]) || month(&expiry[2..]);
    (is_expiry && luhn_valid(&bytes[card.clone()])).then_some(card)
}

/// The index of the last group of the card number that starts at `groups[0]`, if one does.
fn card_in(bytes: &[u8], groups: &[Range<usize>]) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut len = 0;
    for (k, g) in groups.iter().enumerate() {
        let group = &bytes[g.clone()];
        let Some(slot) = digits.get_mut(len..len + group.len()) else {
            return None; // more than 19 digits
        };
        slot.copy_from_slice(group);
        len += group.len();
        if len >= 13 && luhn_valid(&digits[..len]) {
            return Some(k);
        }
    }
    None
}

/// Replaces all digits of `groups` but the first 6 and the last 4 with '*'.
fn mask(out: &mut [u8], groups: &[Range<usize>]) {
    let total: usize = groups.iter().map(|g| g.len()).sum();
    let mut n = 0;
    for g in groups {
        for b in &mut out[g.clone()] {
            if n >= 6 && n < total - 4 {
                *b = b'*';
            }
            n += 1;
        }
    }
}

/// The Luhn checksum over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            match (i % 2 == 1, d * 2) {
                (true, x) if x > 9 => x - 9,
                (true, x) => x,
                (false, _) => d,
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_luhn_valid_runs_only() {
        assert_eq!(
            mask_pans("card 4111111111111111 refused"),
            "card 411111******1111 refused"
        );
        assert_eq!(mask_pans("5500005555555559"), "550000******5559");
        // 16 digits failing Luhn: an order number, left alone.
        assert_eq!(
            mask_pans("order 4111111111111112"),
            "order 4111111111111112"
        );
        assert_eq!(mask_pans("123456789012"), "123456789012");
        assert_eq!(
            mask_pans("41111111111111111111111"),
            "41111111111111111111111"
        );
        assert_eq!(mask_pans("no digits"), "no digits");
        assert_eq!(
            mask_pans("卡号4111111111111111无效"),
            "卡号411111******1111无效"
        );
    }

    #[test]
    fn a_card_number_after_a_percent_escape_is_masked() {
        for (text, masked) in [
            ("card%204111111111111111", "card%20411111******1111"),
            ("user%404111111111111111&x", "user%40411111******1111&x"),
            ("caf%C3%A94111111111111111", "caf%C3%A9411111******1111"),
            ("%2D4111111111111111", "%2D411111******1111"),
            // A literal `%` before a card number: read as it is, too.
            ("5%4111111111111111", "5%411111******1111"),
            // Escapes before digits that are no card number change nothing.
            ("a%2012345678901234", "a%2012345678901234"),
        ] {
            assert_eq!(mask_pans(text), masked, "{text}");
        }
    }

    #[test]
    fn digits_are_counted_across_blocks_without_overflow() {
        // A card number across the first block boundary (byte 255), in a long text.
        let text = "x".repeat(250) + "4111111111111111" + &"y".repeat(300);
        assert_eq!(digit_count(text.as_bytes()), 16);
        assert_eq!(
            mask_pans(&text),
            "x".repeat(250) + "411111******1111" + &"y".repeat(300)
        );
        // Whole blocks of digits: each block's byte-wide sum reaches 255 and no more.
        assert_eq!(digit_count("7".repeat(1000).as_bytes()), 1000);
        assert_eq!(digit_count("a1".repeat(300).as_bytes()), 300);
        assert_eq!(digit_count(b""), 0);
    }

    #[test]
    fn every_joiner_is_made_of_digits_and_joiner_chars() {
        // Asked of the group scanner itself: `mask_pans` skips it for texts without joinable
        // digits, by `is_joiner_char`, which is what this test keeps honest.
        let joined = |joiner: &str| {
            let text = ["4111", "1111", "1111", "1111"].join(joiner);
            let mut groups = Vec::new();
            digit_groups(text.as_bytes(), 0, &mut groups);
            groups.len() == 4
        };
        let mut joiners: Vec<String> = (0x20u8..0x7f).map(|b| char::from(b).to_string()).collect();
        joiners.extend(["%20", "%2D", "%2d", "%2B", "%2b", "%2F", "%41"].map(str::to_owned));
        for joiner in joiners.iter().filter(|j| joined(j)) {
            assert!(
                joiner
                    .chars()
                    .all(|c| c.is_ascii_digit() || JOINER_CHARS.contains(&c)),
                "{joiner:?} joins groups but is not in JOINER_CHARS"
            );
        }
        assert!(joined(" ") && joined("%2d") && !joined("%2F"));
        for b in 0..=u8::MAX {
            assert_eq!(
                is_joiner_char(b),
                JOINER_CHARS.contains(&char::from(b)),
                "{b:#04x}"
            );
        }
    }

    /// A card number cut into groups joined by one of `joiners`, between `before` and `after`.
    fn card_text(
        card: &str,
        cuts: &[usize],
        joiners: &[&str],
        before: &str,
        after: &str,
    ) -> String {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % card.len()).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut text = before.to_owned();
        let mut from = 0;
        for (cut, joiner) in cuts.iter().zip(joiners.iter().cycle()) {
            text.push_str(&card[from..*cut]);
            text.push_str(joiner);
            from = *cut;
        }
        text.push_str(&card[from..]);
        text.push_str(after);
        text
    }

    proptest::proptest! {
        #[test]
        fn the_shortcuts_never_change_what_is_masked(
            card in proptest::sample::select(vec![
                "4111111111111111", "5500005555555559", "378282246310005", "6011111111111117",
            ]),
            cuts in proptest::collection::vec(0usize..19, 0..5),
            joiners in proptest::collection::vec(
                proptest::sample::select(vec![
                    " ", "-", "+", "%20", "%2D", "%2b", "%2F", "_", "/", "x", "  ", "",
                ]),
                1..4,
            ),
            before in proptest::sample::select(vec!["", "card ", "%", "5%", "id_", "12-", "/pay?n="]),
            after in proptest::sample::select(vec!["", " exp 1225", "1225", "-9", "_x", "%20"]),
            noise in proptest::collection::vec(
                proptest::sample::select(vec![
                    "4111", "1111", "0", "12", " ", "-", "%20", "%", "_", "/", "x", "é",
                ]),
                0..12,
            ),
        ) {
            let text = card_text(card, &cuts, &joiners, before, after);
            proptest::prop_assert_eq!(mask_pans(&text), scan(&text));
            let noise = noise.concat();
            proptest::prop_assert_eq!(mask_pans(&noise), scan(&noise));
        }
    }

    #[test]
    fn texts_without_13_joinable_digits_are_not_scanned() {
        for (text, long) in [
            ("req_8f3a9c12_40e11b7d_0001a3f9", false),
            ("2026-11-21 amount 1234567 ref 998877", false),
            ("4111 1111 1111 1", true),
            ("41%2011111111111", true),
            ("411111111111_1111", false),
            ("4111111111111", true),
        ] {
            assert_eq!(has_joinable_digits(text.as_bytes()), long, "{text}");
        }
    }

    #[test]
    fn masks_grouped_card_numbers_and_keeps_their_shape() {
        assert_eq!(mask_pans("4111 1111 1111 1111"), "4111 11** **** 1111");
        assert_eq!(
            mask_pans("pan=4111-1111-1111-1111."),
            "pan=4111-11**-****-1111."
        );
        // A card number followed by an expiry year: the card is masked, the year kept.
        assert_eq!(
            mask_pans("4111 1111 1111 1111 2029"),
            "4111 11** **** 1111 2029"
        );
        // The ways a URL writes a space join groups too.
        assert_eq!(
            mask_pans("/pay?card=4111+1111+1111+1111&x=1"),
            "/pay?card=4111+11**+****+1111&x=1"
        );
        assert_eq!(
            mask_pans("/pay?card=4111%201111%201111%201111"),
            "/pay?card=4111%2011**%20****%201111"
        );
        // And a dash or a `+` percent-encoded, in either case.
        assert_eq!(
            mask_pans("/pay?card=4111%2D1111%2d1111%2D1111"),
            "/pay?card=4111%2D11**%2d****%2D1111"
        );
        assert_eq!(
            mask_pans("card=5500%2B0055%2b5555%2B5559"),
            "card=5500%2B00**%2b****%2B5559"
        );
        // Two spaces do not join groups; short groups alone are no card number.
        assert_eq!(mask_pans("4111  1111 1111 1111"), "4111  1111 1111 1111");
        assert_eq!(mask_pans("call 010-1234-5678"), "call 010-1234-5678");
    }

    #[test]
    fn a_card_number_run_together_with_its_expiry_is_masked_expiry_kept() {
        // PAN + MMYY and PAN + YYMM (track data).
        assert_eq!(mask_pans("41111111111111111229"), "411111******11111229");
        assert_eq!(
            mask_pans("d=41111111111111112912;"),
            "d=411111******11112912;"
        );
        assert_eq!(mask_pans("3782822463100051229"), "378282*****00051229");
        // Not an expiry (month 13 both ways), or no card before it: left alone.
        assert_eq!(mask_pans("41111111111111111313"), "41111111111111111313");
        assert_eq!(mask_pans("41111111111111121229"), "41111111111111121229");
    }
}
