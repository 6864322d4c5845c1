//! Finds the offending request field in a provider message. Seed 001 writes a snake_case field name
//! before or after the documented text ("card_number Invalid request parameter").

/// The field named in `message`, given the documented text of the code.
///
/// The documented text is removed first (case-insensitively, at the start or the end); what is left,
/// trimmed of punctuation, is the field when it is one identifier. When the documented text is not
/// there (another language, reworded), the first or last word is taken if it looks like a snake_case
/// field name (lowercase with an underscore), so that ordinary words are never reported as fields.
pub fn param_from_message(message: &str, documented: &str) -> Option<String> {
    // Trailing full stops differ between the document and live messages; they never hold a field.
    let message = message.trim().trim_end_matches(['.', '。']).trim_end();
    let documented = documented.trim().trim_end_matches('.');
    let rest = strip_affix(message, documented);
    if let Some(rest) = rest {
        let rest = rest.trim_matches(|c: char| c.is_whitespace() || is_separator(c));
        if is_identifier(rest) {
            return Some(rest.to_owned());
        }
    }
    let text = rest.unwrap_or(message);
    let mut words = text.split(|c: char| c.is_whitespace() || is_separator(c));
    let first = words.find(|w| !w.is_empty());
    let last = text
        .rsplit(|c: char| c.is_whitespace() || is_separator(c))
        .find(|w| !w.is_empty());
    [first, last]
        .into_iter()
        .flatten()
        .find(|w| is_identifier(w) && w.contains('_'))
        .map(str::to_owned)
}

/// `message` without `documented` at its start or end, compared ASCII-case-insensitively.
fn strip_affix<'m>(message: &'m str, documented: &str) -> Option<&'m str> {
    if documented.is_empty() || documented.len() >= message.len() {
        return None;
    }
    let n = documented.len();
    if message.is_char_boundary(n) && message[..n].eq_ignore_ascii_case(documented) {
        return Some(&message[n..]);
    }
    let m = message.len() - n;
    if message.is_char_boundary(m) && message[m..].eq_ignore_ascii_case(documented) {
        return Some(&message[..m]);
    }
    None
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        ':' | '：'
            | ','
            | '，'
            | ';'
            | '-'
            | '['
            | ']'
            | '('
            | ')'
            | '"'
            | '\''
            | '`'
            | '.'
            | '='
            | '/'
    )
}

/// A field name: lowercase ASCII letters, digits and underscores, starting with a letter; dots allowed
/// between parts for nested fields (`billing.postal_code`).
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_before_or_after_the_documented_text() {
        let doc = "Invalid request parameter";
        assert_eq!(
            param_from_message("card_number Invalid request parameter", doc).as_deref(),
            Some("card_number")
        );
        assert_eq!(
            param_from_message("Invalid request parameter: expiry_date", doc).as_deref(),
            Some("expiry_date")
        );
        assert_eq!(
            param_from_message("invalid request parameter [email]", doc).as_deref(),
            Some("email")
        );
        assert_eq!(
            param_from_message(
                "Only English is supported first_name",
                "Only English is supported"
            )
            .as_deref(),
            Some("first_name")
        );
    }

    #[test]
    fn other_languages_need_a_snake_case_word() {
        assert_eq!(
            param_from_message("expiry_date 请求参数无效", "Invalid request parameter").as_deref(),
            Some("expiry_date")
        );
        assert_eq!(
            param_from_message("请求参数无效：billing_address", "Invalid request parameter")
                .as_deref(),
            Some("billing_address")
        );
        assert_eq!(
            param_from_message("Invalid request parameter", "Invalid request parameter"),
            None
        );
        assert_eq!(
            param_from_message("something went wrong", "Invalid request parameter"),
            None
        );
        assert_eq!(param_from_message("", ""), None);
        assert_eq!(
            param_from_message(
                "address_line1 Please use English letters (e.g. - / #).",
                "Please use English letters (e.g. - / #)."
            )
            .as_deref(),
            Some("address_line1")
        );
    }
}
