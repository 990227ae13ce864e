//! Reading a region back from its `checkpoint_identity`: a checkpoint file names its region
//! only by that string, and listing checkpoints with their lag needs the region itself.

use crate::error::{Error, Result};
use crate::region::Region;

/// Undoes `region::escape`: `%25`, `%2A`, `%2C` and `%7C` become `%`, `*`, `,` and `|`. A
/// bare `*` or `,` (which `escape` never leaves) and any other `%` sequence are refused.
fn unescape(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['%', '*', ',']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (ch, len) = match tail.get(..3) {
            Some("%25") => ('%', 3),
            Some("%2A") => ('*', 3),
            Some("%2C") => (',', 3),
            Some("%7C") => ('|', 3),
            _ => return Err(format!("{text:?} holds an unescaped or unknown {:?}", &tail[..1])),
        };
        out.push(ch);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Region {
    /// The region whose [`Region::checkpoint_identity`] is `identity`.
    ///
    /// Only identities this version writes are accepted: the region found must render back
    /// to exactly `identity`, else [`Error::InvalidRegion`] says why.
    pub fn from_checkpoint_identity(identity: &str) -> Result<Region> {
        let bad = |why: String| Error::InvalidRegion(format!("region identity {identity:?}: {why}"));
        let region = match identity.split_once('|') {
            Some((head, members)) if head.starts_with("any=") => {
                // Each member opens with its `entity=` field; no value holds a bare `|`.
                let mut split: Vec<String> = Vec::new();
                for field in members.split('|') {
                    match split.last_mut() {
                        Some(member) if !field.starts_with("entity=") => {
                            member.push('|');
                            member.push_str(field);
                        }
                        _ => split.push(field.to_owned()),
                    }
                }
                let regions: Result<Vec<Region>> =
                    split.iter().map(|m| Self::plain_from_identity(m)).collect();
                Region::any_of(regions.map_err(|e| bad(format!("a member: {e}")))?)?
            }
            _ => Self::plain_from_identity(identity)?,
        };
        if region.checkpoint_identity() != identity {
            return Err(bad("not written the way this version writes identities".into()));
        }
        Ok(region)
    }

    /// The region (not a union) of `identity`, not yet checked to render back to it.
    fn plain_from_identity(identity: &str) -> Result<Region> {
        let bad = |why: String| Error::InvalidRegion(format!("region identity {identity:?}: {why}"));
        let parts: Vec<&str> = identity.split('|').collect();
        let field = |at: usize, name: &str| {
            let part = parts.get(at).copied().unwrap_or_default();
            part.strip_prefix(name)
                .and_then(|p| p.strip_prefix('='))
                .ok_or_else(|| bad(format!("expected {name}=... where it reads {part:?}")))
        };
        let (entity, scope, kinds, clock) =
            (field(0, "entity")?, field(1, "scope")?, field(2, "kind")?, field(3, "clock")?);
        let tags = match parts.get(4) {
            Some(part) if part.starts_with("tags=") => Some(field(4, "tags")?),
            _ => None,
        };
        if let Some(extra) = parts.get(4 + usize::from(tags.is_some())) {
            return Err(bad(format!("unknown field {extra:?}")));
        }
        let mut region = Region::all();
        if entity != "*" {
            region = match entity.strip_prefix('=') {
                Some(exact) => region.with_exact_entity(&unescape(exact).map_err(&bad)?)?,
                None => region.with_entity(&unescape(entity).map_err(&bad)?)?,
            };
        }
        if scope != "*" {
            region = region.with_scope(&unescape(scope).map_err(&bad)?)?;
        }
        if kinds != "*" {
            region = match kinds.strip_suffix('*') {
                Some(prefix) => region.with_kind_prefix(&unescape(prefix).map_err(&bad)?)?,
                None => {
                    let list: std::result::Result<Vec<String>, String> =
                        kinds.split(',').map(unescape).collect();
                    region.with_kinds(&list.map_err(&bad)?)?
                }
            };
        }
        if clock != "*" {
            let range =
                clock.split_once("..").and_then(|(lo, hi)| Some((lo.parse().ok()?, hi.parse().ok()?)));
            let Some((lo, hi)) = range else { return Err(bad(format!("clock {clock:?} is not lo..hi"))) };
            region = region.with_clock_range(lo, hi)?;
        }
        if let Some(tags) = tags {
            let list: std::result::Result<Vec<String>, String> = tags.split(',').map(unescape).collect();
            region = region.with_tags(&list.map_err(&bad)?).map_err(|e| bad(e.to_string()))?;
        }
        Ok(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<Region> {
        let all = Region::all();
        vec![
            all.clone(),
            all.clone().with_entity("acct:1").unwrap(),
            all.clone().with_exact_entity("acct").unwrap(),
            all.clone().with_entity("*").unwrap(),
            all.clone().with_entity("50%,*off").unwrap(),
            all.clone().with_scope("eu").unwrap().with_kinds(&["deposit"]).unwrap(),
            all.clone().with_kinds(&["a", "b,c", "d*"]).unwrap(),
            all.clone().with_kind_prefix("eventpak.").unwrap(),
            all.clone().with_kind_prefix("*").unwrap(),
            all.clone().with_clock_range(3, u64::MAX).unwrap(),
            all.clone()
                .with_exact_entity("é:x")
                .unwrap()
                .with_scope("s")
                .unwrap()
                .with_clock_range(0, 0)
                .unwrap(),
            all.clone().with_tags(&["course:c1"]).unwrap(),
            all.clone().with_tags(&["a|b", "50%,*", "entity=x", "any=2"]).unwrap(),
            all.clone().with_entity("acct").unwrap().with_kinds(&["k"]).unwrap().with_tags(&["t"]).unwrap(),
            Region::any_of([
                all.clone().with_tags(&["course:c1"]).unwrap(),
                all.clone().with_kinds(&["enrolled", "left"]).unwrap().with_tags(&["a|entity=b"]).unwrap(),
                all.clone().with_exact_entity("acct").unwrap().with_clock_range(1, 2).unwrap(),
            ])
            .unwrap(),
            Region::any_of([all.clone(), all.with_scope("eu").unwrap()]).unwrap(),
        ]
    }

    #[test]
    fn every_identity_reads_back_as_its_region() {
        for region in regions() {
            let identity = region.checkpoint_identity();
            assert_eq!(Region::from_checkpoint_identity(&identity).unwrap(), region, "{identity}");
        }
    }

    #[test]
    fn anything_this_version_does_not_write_is_refused() {
        for bad in [
            "",
            "entity=*",
            "entity=*|scope=*|kind=*",
            "entity=*|scope=*|kind=*|clock=*|tags=*",
            "entity=*|scope=*|kind=*|clock=*|tags=",
            "entity=*|scope=*|kind=*|clock=*|tags=b,a",
            "entity=*|scope=*|kind=*|clock=*|tags=a,a",
            "entity=*|scope=*|kind=*|clock=*|tags=a|tags=b",
            "entity=*|scope=*|kind=*|clock=*|tags=a%7c",
            "any=1|entity=*|scope=*|kind=*|clock=*",
            "any=2|entity=*|scope=*|kind=*|clock=*",
            "any=3|entity=*|scope=*|kind=*|clock=*|entity=*|scope=s|kind=*|clock=*",
            "any=2|entity=*|scope=s|kind=*|clock=*|entity=*|scope=*|kind=*|clock=*",
            "any=2|entity=*|scope=*|kind=*|clock=*|entity=*|scope=*|kind=*|clock=*",
            "any=2|scope=*|entity=*|scope=*|kind=*|clock=*",
            "any=2",
            "scope=*|entity=*|kind=*|clock=*",
            "entity=a*|scope=*|kind=*|clock=*",
            "entity=a%2a|scope=*|kind=*|clock=*",
            "entity=a%41|scope=*|kind=*|clock=*",
            "entity=a%|scope=*|kind=*|clock=*",
            "entity=*|scope=*|kind=b,a|clock=*",
            "entity=*|scope=*|kind=a,a|clock=*",
            "entity=*|scope=*|kind=a,|clock=*",
            "entity=*|scope=*|kind=*|clock=5..4",
            "entity=*|scope=*|kind=*|clock=1..",
            "entity=*|scope=*|kind=*|clock=01..2",
            "entity=a/b|scope=*|kind=*|clock=*",
            "entity=|scope=*|kind=*|clock=*",
        ] {
            assert!(
                matches!(Region::from_checkpoint_identity(bad), Err(Error::InvalidRegion(_))),
                "{bad:?} accepted"
            );
        }
    }
}
