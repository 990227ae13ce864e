//! Tags: free-form labels an event carries besides its coordinate and kind, matched
//! literally and indexed (`docs/design.md`, "Tags, conditions and tracking").

use crate::error::{Error, Result};

/// Most tags one event may carry.
pub const MAX_TAGS: usize = 64;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 255;

/// Why `value` is not a valid tag or tracking name (1-255 bytes of UTF-8, no control bytes
/// below 0x20 nor 0x7F), or `None` when it is one. Unlike entity names, any other character
/// is allowed: `|`, `=`, `/`, `:` and spaces included.
pub fn label_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".into());
    }
    if value.len() > MAX_TAG_BYTES {
        return Some(format!("{} bytes, at most {MAX_TAG_BYTES} allowed", value.len()));
    }
    value.bytes().find(|&b| b < 0x20 || b == 0x7f).map(|b| format!("contains control byte 0x{b:02x}"))
}

/// Checks one tag.
pub fn validate_tag(tag: &str) -> Result<()> {
    match label_problem(tag) {
        Some(why) => Err(Error::InvalidTag(format!("tag {tag:?} {why}"))),
        None => Ok(()),
    }
}

/// Checks the tags of one event: each valid, at most [`MAX_TAGS`], none twice.
#[inline]
pub fn validate_tags<S: AsRef<str>>(tags: &[S]) -> Result<()> {
    // Most events have no tags; that check stays inline in the append path.
    if tags.is_empty() {
        return Ok(());
    }
    validate_some_tags(tags)
}

fn validate_some_tags<S: AsRef<str>>(tags: &[S]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::InvalidTag(format!(
            "{} tags on one event, at most {MAX_TAGS} allowed",
            tags.len()
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        validate_tag(tag.as_ref())?;
        if tags[..i].iter().any(|t| t.as_ref() == tag.as_ref()) {
            return Err(Error::InvalidTag(format!("tag {:?} appears twice on one event", tag.as_ref())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        for good in ["a", "course:c1", "a|b=c/d e", "é", &"x".repeat(MAX_TAG_BYTES)] {
            assert!(validate_tag(good).is_ok(), "{good:?}");
        }
        for bad in ["", "a\nb", "\u{7f}", &"x".repeat(MAX_TAG_BYTES + 1)] {
            assert!(matches!(validate_tag(bad), Err(Error::InvalidTag(_))), "{bad:?}");
        }
        assert!(validate_tags(&["a", "b"]).is_ok());
        assert!(matches!(validate_tags(&["a", "a"]), Err(Error::InvalidTag(_))));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert!(matches!(validate_tags(&many), Err(Error::InvalidTag(_))));
        assert!(validate_tags(&many[..MAX_TAGS]).is_ok());
    }
}
