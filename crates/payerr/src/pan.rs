//! Card-number masking: no full PAN leaves payerr in a verdict, a log line or a file.

/// Masks every run of 13–19 ASCII digits that passes the Luhn check to its first 6 and last 4 digits
/// (`411111******1111`). Spaces or dashes inside a card number are not joined: providers echo card
/// numbers as digit runs, and joining would mask order numbers and phone numbers too.
pub fn mask_pans(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let run = &bytes[start..i];
        if (13..=19).contains(&run.len()) && luhn_valid(run) {
            let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
            s.push_str(&text[copied..start]);
            s.push_str(&text[start..start + 6]);
            s.extend(std::iter::repeat_n('*', run.len() - 10));
            s.push_str(&text[i - 4..i]);
            copied = i;
        }
    }
    match out {
        Some(mut s) => {
            s.push_str(&text[copied..]);
            s.into()
        }
        None => text.into(),
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
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
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
        // Too short and too long runs are not card numbers.
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
}
