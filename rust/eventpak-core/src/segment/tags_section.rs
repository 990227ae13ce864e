//! The tags section of an event body (format version 3): `count u8 | count x (len u8 |
//! tag)`, after the payload, present only when the body flag `BODY_FLAG_TAGS` is set.

use super::layout::{TAGS_COUNT_LEN, TAG_LEN_LEN};
use crate::tags::{label_problem, MAX_TAGS};

/// Bytes the tags section of `tags` takes in a frame: none without tags.
pub fn tags_section_len<S: AsRef<str>>(tags: &[S]) -> usize {
    if tags.is_empty() {
        return 0;
    }
    TAGS_COUNT_LEN + tags.iter().map(|t| TAG_LEN_LEN + t.as_ref().len()).sum::<usize>()
}

/// Appends the tags section of `tags` (already validated) to `out`; nothing without tags.
pub fn write_tags<S: AsRef<str>>(out: &mut Vec<u8>, tags: &[S]) {
    if tags.is_empty() {
        return;
    }
    out.push(tags.len() as u8);
    for tag in tags {
        let tag = tag.as_ref().as_bytes();
        out.push(tag.len() as u8);
        out.extend_from_slice(tag);
    }
}

/// The tags section of `tags` (empty without tags): what a frame stores and what the chain
/// hash covers.
#[inline]
pub fn encode_tags<S: AsRef<str>>(tags: &[S]) -> Vec<u8> {
    // Most events have no tags; that case stays inline in the append path.
    if tags.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(tags_section_len(tags));
    write_tags(&mut out, tags);
    out
}

/// Checks a tags section read from a frame: a count of 1 to [`MAX_TAGS`], then exactly
/// that many tags, each valid ([`crate::tags`]) and none twice, filling the section.
pub fn check_tags_section(section: &[u8]) -> Result<(), String> {
    let Some((&count, _)) = section.split_first() else { return Err("empty tags section".into()) };
    if count == 0 || count as usize > MAX_TAGS {
        return Err(format!("tags section holds {count} tags"));
    }
    let mut seen: Vec<&str> = Vec::with_capacity(count as usize);
    let mut tags = TagIter { rest: &section[TAGS_COUNT_LEN..], left: count };
    while tags.left > 0 {
        let tag = tags.next_checked().ok_or("tags section cut short or not UTF-8")?;
        if let Some(why) = label_problem(tag) {
            return Err(format!("stored tag {why}"));
        }
        if seen.contains(&tag) {
            return Err("a tag appears twice on one event".into());
        }
        seen.push(tag);
    }
    if !tags.rest.is_empty() {
        return Err("bytes after the tags section".into());
    }
    Ok(())
}

/// The tags of a section already checked by [`check_tags_section`], in stored order.
pub fn tags_of(section: &[u8]) -> TagIter<'_> {
    match section.split_first() {
        Some((&count, rest)) => TagIter { rest, left: count },
        None => TagIter { rest: &[], left: 0 },
    }
}

/// Iterates the tags of a section.
#[derive(Clone, Debug)]
pub struct TagIter<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> TagIter<'a> {
    fn next_checked(&mut self) -> Option<&'a str> {
        let (&len, rest) = self.rest.split_first()?;
        let tag = rest.get(..len as usize)?;
        self.rest = &rest[len as usize..];
        self.left -= 1;
        std::str::from_utf8(tag).ok()
    }
}

impl<'a> Iterator for TagIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        // A checked section never fails here; a forged one ends the iteration instead.
        let tag = self.next_checked();
        if tag.is_none() {
            self.left = 0;
        }
        tag
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_damage_is_refused() {
        let tags = ["course:c1", "student:s7", "é|="];
        let section = encode_tags(&tags);
        assert_eq!(section.len(), tags_section_len(&tags));
        assert_eq!(check_tags_section(&section), Ok(()));
        assert_eq!(tags_of(&section).collect::<Vec<_>>(), tags);
        assert!(encode_tags::<&str>(&[]).is_empty());
        assert!(check_tags_section(&[]).is_err());
        assert!(check_tags_section(&[0]).is_err());
        for cut in 1..section.len() {
            assert!(check_tags_section(&section[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = section.clone();
        longer.push(0);
        assert!(check_tags_section(&longer).is_err());
        assert!(check_tags_section(&encode_tags(&["a", "a"])).is_err());
        assert!(check_tags_section(&encode_tags(&["a\u{1}"])).is_err());
        assert!(check_tags_section(&[1, 2, 0xff, 0xfe]).is_err());
    }
}
