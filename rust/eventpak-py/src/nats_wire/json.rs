//! The small JSON and hex texts of the `Eventpak-*` headers: strings escaped the way
//! Python's `json.dumps` writes them (pure ASCII), read back strictly, and ids in hex.

use std::fmt::Write;

pub(super) fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// `s` as a JSON string the way Python's `json.dumps` writes it (`ensure_ascii`): quotes,
/// backslashes, control and non-ASCII characters escaped, so the value is pure ASCII.
pub(super) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The end of a JSON string starting at `s[0]` (a quote): its value and the rest of `s`.
fn parse_json_str(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    let rest = s.get(1..)?;
    let mut high: Option<u32> = None; // a UTF-16 high surrogate waiting for its low half
    while let Some((i, c)) = chars.next() {
        let unit = match c {
            '"' if high.is_none() => return Some((out, &rest[i + 1..])),
            '\\' => match chars.next()?.1 {
                'u' => {
                    let digits: String =
                        (0..4).map(|_| chars.next().map(|(_, d)| d)).collect::<Option<_>>()?;
                    u32::from_str_radix(&digits, 16).ok()?
                }
                e => {
                    let c = match e {
                        '"' | '\\' | '/' => e,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        _ => return None,
                    };
                    c as u32
                }
            },
            c if (c as u32) < 0x20 => return None,
            c => c as u32,
        };
        match (high.take(), unit) {
            (None, 0xD800..=0xDBFF) => high = Some(unit),
            (Some(h), 0xDC00..=0xDFFF) => {
                out.push(char::from_u32(0x10000 + ((h - 0xD800) << 10) + (unit - 0xDC00))?)
            }
            (None, _) => out.push(char::from_u32(unit)?),
            (Some(_), _) => return None, // a lone surrogate: no Python str the core could take
        }
    }
    None
}

pub(super) fn json_string(s: &str) -> Option<String> {
    let (value, rest) = parse_json_str(s.trim())?;
    rest.is_empty().then_some(value)
}

pub(super) fn json_string_list(s: &str) -> Option<Vec<String>> {
    let mut rest = s.trim().strip_prefix('[')?.trim_start();
    let mut out = Vec::new();
    if let Some(after) = rest.strip_prefix(']') {
        return after.trim().is_empty().then_some(out);
    }
    loop {
        let (value, after) = parse_json_str(rest)?;
        out.push(value);
        let after = after.trim_start();
        if let Some(end) = after.strip_prefix(']') {
            return end.trim().is_empty().then_some(out);
        }
        rest = after.strip_prefix(',')?.trim_start();
    }
}

pub(super) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    if s.len() != 2 * N {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
