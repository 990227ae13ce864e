//! Naming rules shared by coordinates, kinds and checkpoint ids (`docs/design.md`, "Data model").

use crate::error::{Error, Result};

/// Longest entity or scope, in bytes.
pub const MAX_COORDINATE_PART_BYTES: usize = 1024;
/// Longest event kind, in bytes.
pub const MAX_KIND_BYTES: usize = 255;
/// Kinds with this prefix belong to the store itself.
pub const RESERVED_KIND_PREFIX: &str = "eventpak.";
/// The reserved kinds the store writes itself: a gate's recorded denial, the audit of a
/// gate bypass, a worker's dead letter. No other kind with the reserved prefix is ever
/// written, so a reader can rely on this list.
pub const RESERVED_KINDS: [&str; 3] = ["eventpak.denial", "eventpak.bypass", "eventpak.dead_letter"];

/// Checks one name against the shared rules; returns a human reason when it fails.
///
/// The rules keep names safe to embed in file names and in `checkpoint_identity`
/// strings: no control bytes, no path separators or `..`, no `|` or `=`.
pub fn check_name(value: &str, max_bytes: usize) -> std::result::Result<(), String> {
    // Every append checks three names, so the common case (a good name) is one pass over
    // the bytes; only a refused name takes the slower path that words the reason.
    if !value.is_empty() && value.len() <= max_bytes && !has_forbidden_bytes(value.as_bytes()) {
        return Ok(());
    }
    explain_bad_name(value, max_bytes)
}

/// Why `value` breaks the rules (the checks in the order their reasons are given), or
/// `Ok` when it does not.
#[cold]
#[inline(never)]
fn explain_bad_name(value: &str, max_bytes: usize) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max_bytes {
        return Err(format!("{} bytes, at most {max_bytes} allowed", value.len()));
    }
    if let Some(b) = value.bytes().find(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("contains control byte 0x{b:02x}"));
    }
    for forbidden in ['/', '|', '='] {
        if value.contains(forbidden) {
            return Err(format!("contains forbidden character {forbidden:?}"));
        }
    }
    if value.contains("..") {
        return Err("contains \"..\"".into());
    }
    Ok(())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Marks the bytes of `x` below `n` (`n` at most 0x80) in their high bit. Every such byte
/// is marked; a borrow can mark another byte only above a marked one, so "is any high bit
/// set" is an exact answer to "is any byte below `n`".
#[inline(always)]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(u64::from(n) * ONES) & !x
}

/// Marks the bytes of `x` equal to `c` the way [`below`] marks bytes below `n`: they are
/// the zero bytes of `x` xor `c` repeated.
#[inline(always)]
fn equal(x: u64, c: u8) -> u64 {
    below(x ^ (u64::from(c) * ONES), 1)
}

/// True when the eight bytes `x` (little-endian) hold a control byte, `/`, `|`, `=`, or
/// a dot right after a dot.
#[inline(always)]
fn word_is_suspect(x: u64) -> bool {
    let dots_are_zero = x ^ (u64::from(b'.') * ONES);
    // Byte i of `pairs` is zero when bytes i and i + 1 are both dots; the last byte has no
    // neighbour in the word and is set to non-zero.
    let pairs = dots_are_zero | (dots_are_zero >> 8) | (0xff << 56);
    let suspect = below(x, 0x20) | equal(x, 0x7f) | equal(x, b'/') | equal(x, b'|') | equal(x, b'=');
    (suspect | below(pairs, 1)) & HIGH_BITS != 0
}

/// True when `bytes` hold a control byte, `/`, `|`, `=` or two dots in a row: the one
/// pass [`check_name`] makes, eight bytes at a time.
#[inline]
fn has_forbidden_bytes(bytes: &[u8]) -> bool {
    let len = bytes.len();
    if len < 8 {
        // Padded with a letter, which is allowed and is not a dot.
        let mut word = [b'a'; 8];
        for (to, &from) in word.iter_mut().zip(bytes) {
            *to = from;
        }
        return word_is_suspect(u64::from_le_bytes(word));
    }
    let word_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    let mut previous_ends_in_dot = false;
    let mut at = 0;
    while at + 8 <= len {
        let x = word_at(at);
        if word_is_suspect(x) || (previous_ends_in_dot && x as u8 == b'.') {
            return true;
        }
        previous_ends_in_dot = (x >> 56) as u8 == b'.';
        at += 8;
    }
    // The last bytes, when the length is not a multiple of eight, as a word that overlaps
    // the one before: the pair across their boundary lies inside it.
    !len.is_multiple_of(8) && word_is_suspect(word_at(len - 8))
}

/// Validates an entity or scope.
#[inline]
pub fn validate_coordinate_part(what: &str, value: &str) -> Result<()> {
    check_name(value, MAX_COORDINATE_PART_BYTES)
        .map_err(|reason| Error::InvalidCoordinate(format!("{what} {value:?} {reason}")))
}

/// Validates an event kind for appending (reserved prefix refused).
pub fn validate_kind(kind: &str) -> Result<()> {
    validate_kind_as(kind, false)
}

/// Validates an event kind; `store_written` events (written by the store itself) may also
/// have one of the [`RESERVED_KINDS`]. Any other kind with the reserved prefix is refused.
pub fn validate_kind_as(kind: &str, store_written: bool) -> Result<()> {
    check_name(kind, MAX_KIND_BYTES)
        .map_err(|reason| Error::InvalidKind(format!("kind {kind:?} {reason}")))?;
    if kind.starts_with(RESERVED_KIND_PREFIX) && !(store_written && RESERVED_KINDS.contains(&kind)) {
        let only =
            if store_written { format!("; of those, only {RESERVED_KINDS:?} exist") } else { String::new() };
        return Err(Error::InvalidKind(format!(
            "kind {kind:?} uses the reserved prefix {RESERVED_KIND_PREFIX:?}{only}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        assert!(check_name("acct:1", 1024).is_ok());
        assert!(check_name("été-ünïcode", 1024).is_ok());
        assert!(check_name(".hidden.", 1024).is_ok());
    }

    #[test]
    fn refuses_dangerous_names() {
        for bad in ["", "a/b", "..", "a..b", "a|b", "a=b", "a\0b", "a\nb", "a\x7fb"] {
            assert!(check_name(bad, 1024).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(1025), 1024).is_err());
        assert!(check_name(&"x".repeat(1024), 1024).is_ok());
    }

    #[test]
    fn the_one_pass_agrees_with_the_worded_checks() {
        // Every byte class the rules care about, alone and before a dot, at every position
        // of names that span word boundaries; then random mixes of them.
        let alphabet: &[u8] = b"a.Z/|=\x00\x1f\x20\x7f\x7e\x80\xc3\xa9\xff-";
        let mut rng = crate::rng::SplitMix64(7);
        for len in 1..=40 {
            for position in 0..len {
                for &b in alphabet {
                    let mut name = vec![b'x'; len];
                    name[position] = b;
                    agree(&name);
                    if position + 1 < len {
                        name[position + 1] = b'.';
                        agree(&name);
                    }
                }
            }
            for _ in 0..200 {
                let name: Vec<u8> =
                    (0..len).map(|_| alphabet[rng.next_u64() as usize % alphabet.len()]).collect();
                agree(&name);
            }
        }
    }

    fn agree(bytes: &[u8]) {
        let forbidden = |b: &u8| *b < 0x20 || b"\x7f/|=".contains(b);
        let expected = bytes.iter().any(forbidden) || bytes.windows(2).any(|w| w == b"..");
        assert_eq!(has_forbidden_bytes(bytes), expected, "{bytes:?}");
        if let Ok(name) = std::str::from_utf8(bytes) {
            assert_eq!(check_name(name, 1024), explain_bad_name(name, 1024), "{name:?}");
        }
    }

    #[test]
    fn reserved_kinds_are_refused() {
        assert!(matches!(validate_kind("eventpak.internal"), Err(Error::InvalidKind(_))));
        assert!(validate_kind("eventpakx").is_ok());
        for kind in RESERVED_KINDS {
            assert!(matches!(validate_kind(kind), Err(Error::InvalidKind(_))), "{kind} accepted");
        }
    }

    #[test]
    fn the_store_may_write_exactly_the_listed_reserved_kinds() {
        for kind in RESERVED_KINDS {
            assert!(validate_kind_as(kind, true).is_ok(), "{kind} refused");
        }
        assert!(validate_kind_as("deposit", true).is_ok());
        for kind in ["eventpak.internal", "eventpak.denial.x", "eventpak.", "eventpak.a/b"] {
            assert!(matches!(validate_kind_as(kind, true), Err(Error::InvalidKind(_))), "{kind} accepted");
        }
        assert!(matches!(validate_kind_as("a|b", true), Err(Error::InvalidKind(_))));
    }
}
