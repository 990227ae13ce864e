//! Reading a region back from its `checkpoint_identity`: a checkpoint file names its region
//! only by that string, and listing checkpoints with their lag needs the region itself.

use crate::error::{Error, Result};
use crate::region::Region;

/// Undoes `region::escape`: `%25`, `%2A` and `%2C` become `%`, `*` and `,`. A bare `*` or
/// `,` (which `escape` never leaves) and any other `%` sequence are refused.
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
        let mut parts = identity.split('|');
        let mut field = |name: &str| {
            let part = parts.next().unwrap_or_default();
            part.strip_prefix(name)
                .and_then(|p| p.strip_prefix('='))
                .ok_or_else(|| bad(format!("expected {name}=... where it reads {part:?}")))
        };
        let (entity, scope, kinds, clock) =
            (field("entity")?, field("scope")?, field("kind")?, field("clock")?);
        if let Some(extra) = parts.next() {
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
        if region.checkpoint_identity() != identity {
            return Err(bad("not written the way this version writes identities".into()));
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
            all.with_exact_entity("é:x").unwrap().with_scope("s").unwrap().with_clock_range(0, 0).unwrap(),
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
