//! Card-number masking: no full PAN leaves payerr in a verdict, a log line or a file.

use std::borrow::Cow;
use std::ops::Range;

/// Masks every card number in `text` to its first 6 and last 4 digits (`411111******1111`).
///
/// A card number is 13–19 digits passing the Luhn check, written as one run or in groups separated by
/// single spaces or dashes (`4111 1111 1111 1111`, `4111-1111-1111-1111`). Within a longer sequence of
/// groups (a card number followed by an expiry year), the first contiguous groups that form a card
/// number are masked. Separators are kept, so the text keeps its shape.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // Most texts hold too few digits to hide a card number: answer them without scanning groups.
    if bytes.iter().filter(|b| b.is_ascii_digit()).count() < 13 {
        return Cow::Borrowed(text);
    }
    let mut masked: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let groups = digit_groups(bytes, i);
        let end = groups.last().map_or(i + 1, |g| g.end);
        let mut first = 0;
        while first < groups.len() {
            match card_in(bytes, &groups[first..]) {
                Some(last) => {
                    let out = masked.get_or_insert_with(|| bytes.to_vec());
                    mask(out, &groups[first..=first + last]);
                    first += last + 1;
                }
                None => first += 1,
            }
        }
        i = end;
    }
    match masked {
        // Only ASCII digits were replaced by ASCII '*', so the bytes are still UTF-8.
        Some(out) => Cow::Owned(String::from_utf8(out).unwrap_or_default()),
        None => Cow::Borrowed(text),
    }
}

/// Runs of digits starting at `start`, joined by single spaces or dashes.
fn digit_groups(bytes: &[u8], start: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        groups.push(begin..i);
        let joined =
            i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit();
        if !joined {
            return groups;
        }
        i += 1;
    }
}

/// The index of the last group of the card number that starts at `groups[0]`, if one does.
fn card_in(bytes: &[u8], groups: &[Range<usize>]) -> Option<usize> {
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    for (k, g) in groups.iter().enumerate() {
        digits.extend_from_slice(&bytes[g.clone()]);
        if digits.len() > 19 {
            return None;
        }
        if digits.len() >= 13 && luhn_valid(&digits) {
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
        // Two spaces do not join groups; short groups alone are no card number.
        assert_eq!(mask_pans("4111  1111 1111 1111"), "4111  1111 1111 1111");
        assert_eq!(mask_pans("call 010-1234-5678"), "call 010-1234-5678");
    }
}
