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

/// Validates an entity or scope.
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
