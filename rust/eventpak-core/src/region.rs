//! The read predicate shared by queries, cursors and workers.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::names::{check_name, MAX_COORDINATE_PART_BYTES, MAX_KIND_BYTES};
use crate::tags::validate_tag;

/// Which kinds a region accepts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KindFilter {
    /// Every kind.
    Any,
    /// Exactly these kinds (never empty).
    Exact(BTreeSet<String>),
    /// Kinds starting with this prefix.
    Prefix(String),
}

/// A filter over coordinates, kinds, per-entity clocks and tags, all optional; or a union
/// of such filters ([`Region::any_of`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Region {
    /// Entity filter. Namespace-aware unless `entity_exact`: `acct` matches `acct` and
    /// `acct:7`, not `acct2`.
    pub entity: Option<String>,
    /// The entity filter matches exactly `entity`, not its namespace.
    pub entity_exact: bool,
    /// Exact scope.
    pub scope: Option<String>,
    /// Kind filter.
    pub kinds: KindFilter,
    /// Inclusive range of `entity_sequence`.
    pub clock: Option<(u64, u64)>,
    /// Tags a matching event carries, every one of them.
    pub tags: BTreeSet<String>,
    /// A union: when not empty, the region matches the events any of these regions match
    /// (each a region without members of its own), and has no other filter.
    pub any_of: Vec<Region>,
}

fn check(what: &str, value: &str, max: usize) -> Result<()> {
    check_name(value, max).map_err(|reason| Error::InvalidRegion(format!("{what} {value:?} {reason}")))
}

/// Escapes a filter value for `checkpoint_identity`, so a value can never read as `*`,
/// a list separator, a field separator or a prefix marker. Names cannot hold `|` or `=` at
/// all; tags can, and their `|` is escaped (an `=` inside a value is harmless: only the
/// text before a field's first `=` names the field).
fn escape(value: &str, out: &mut String) {
    for ch in value.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '*' => out.push_str("%2A"),
            ',' => out.push_str("%2C"),
            '|' => out.push_str("%7C"),
            _ => out.push(ch),
        }
    }
}

/// Refuses a filter on a union: its members carry the filters.
fn plain(region: &Region, builder: &str) -> Result<()> {
    if region.any_of.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidRegion(format!(
        "{builder} on a union: a union takes no filter of its own, give it to its members"
    )))
}

impl Region {
    /// The region that matches every event.
    pub fn all() -> Self {
        Region {
            entity: None,
            entity_exact: false,
            scope: None,
            kinds: KindFilter::Any,
            clock: None,
            tags: BTreeSet::new(),
            any_of: Vec::new(),
        }
    }

    /// The union of `regions`: the events any of them matches. Nested unions are
    /// flattened and members kept once, in the order of their identities, so a union's
    /// identity does not depend on how it was written; a union of one region is that
    /// region. At least one region is needed.
    pub fn any_of(regions: impl IntoIterator<Item = Region>) -> Result<Self> {
        let mut members: Vec<Region> = Vec::new();
        for region in regions {
            if region.any_of.is_empty() {
                members.push(region);
            } else {
                members.extend(region.any_of);
            }
        }
        let mut keyed: Vec<(String, Region)> =
            members.into_iter().map(|r| (r.checkpoint_identity(), r)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        match keyed.len() {
            0 => Err(Error::InvalidRegion("any_of needs at least one region".into())),
            1 => Ok(keyed.pop().expect("one member").1),
            _ => Ok(Region { any_of: keyed.into_iter().map(|(_, r)| r).collect(), ..Region::all() }),
        }
    }

    /// Returns a copy restricted to events carrying every one of `tags` (besides the tags
    /// it already requires). A bad tag raises [`Error::InvalidTag`]; no tags change nothing.
    pub fn with_tags<S: AsRef<str>>(mut self, tags: &[S]) -> Result<Self> {
        plain(&self, "with_tags")?;
        for tag in tags {
            validate_tag(tag.as_ref())?;
            self.tags.insert(tag.as_ref().to_owned());
        }
        Ok(self)
    }

    /// Returns a copy restricted to entities under `prefix` (the entity and its namespace).
    pub fn with_entity(mut self, prefix: &str) -> Result<Self> {
        plain(&self, "an entity filter")?;
        check("entity prefix", prefix, MAX_COORDINATE_PART_BYTES)?;
        self.entity = Some(prefix.to_owned());
        self.entity_exact = false;
        Ok(self)
    }

    /// Returns a copy restricted to exactly `entity` (not its namespace).
    pub fn with_exact_entity(mut self, entity: &str) -> Result<Self> {
        plain(&self, "an entity filter")?;
        check("entity", entity, MAX_COORDINATE_PART_BYTES)?;
        self.entity = Some(entity.to_owned());
        self.entity_exact = true;
        Ok(self)
    }

    /// Returns a copy restricted to one scope.
    pub fn with_scope(mut self, scope: &str) -> Result<Self> {
        plain(&self, "with_scope")?;
        check("scope", scope, MAX_COORDINATE_PART_BYTES)?;
        self.scope = Some(scope.to_owned());
        Ok(self)
    }

    /// Returns a copy accepting exactly `kinds` (replacing any earlier kind filter).
    pub fn with_kinds<S: AsRef<str>>(mut self, kinds: &[S]) -> Result<Self> {
        plain(&self, "a kind filter")?;
        if kinds.is_empty() {
            return Err(Error::InvalidRegion("with_kinds needs at least one kind".into()));
        }
        let mut set = BTreeSet::new();
        for kind in kinds {
            check("kind", kind.as_ref(), MAX_KIND_BYTES)?;
            set.insert(kind.as_ref().to_owned());
        }
        self.kinds = KindFilter::Exact(set);
        Ok(self)
    }

    /// Returns a copy accepting kinds that start with `prefix` (replacing any kind filter).
    pub fn with_kind_prefix(mut self, prefix: &str) -> Result<Self> {
        plain(&self, "a kind filter")?;
        check("kind prefix", prefix, MAX_KIND_BYTES)?;
        self.kinds = KindFilter::Prefix(prefix.to_owned());
        Ok(self)
    }

    /// Returns a copy restricted to entity clocks in `start..=end`.
    pub fn with_clock_range(mut self, start: u64, end: u64) -> Result<Self> {
        plain(&self, "with_clock_range")?;
        if start > end {
            return Err(Error::InvalidRegion(format!("clock range start {start} > end {end}")));
        }
        self.clock = Some((start, end));
        Ok(self)
    }

    /// True when `entity` lies in the namespace of `prefix`.
    pub fn entity_in_namespace(prefix: &str, entity: &str) -> bool {
        entity.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
    }

    /// True when the entity filter accepts `entity`.
    pub fn entity_matches(&self, entity: &str) -> bool {
        match &self.entity {
            None => true,
            Some(exact) if self.entity_exact => exact == entity,
            Some(prefix) => Self::entity_in_namespace(prefix, entity),
        }
    }

    /// True when the kind filter accepts `kind` (for a union: a member's does).
    pub fn kind_matches(&self, kind: &str) -> bool {
        if !self.any_of.is_empty() {
            return self.any_of.iter().any(|m| m.kind_matches(kind));
        }
        match &self.kinds {
            KindFilter::Any => true,
            KindFilter::Exact(set) => set.contains(kind),
            KindFilter::Prefix(prefix) => kind.starts_with(prefix.as_str()),
        }
    }

    /// True when an event at this coordinate and kind, carrying `tags` (and at this clock,
    /// when known) matches. With `clock = None` the clock range is not checked.
    pub fn matches(&self, entity: &str, scope: &str, kind: &str, clock: Option<u64>, tags: &[&str]) -> bool {
        if !self.any_of.is_empty() {
            return self.any_of.iter().any(|m| m.matches(entity, scope, kind, clock, tags));
        }
        self.entity_matches(entity)
            && self.scope.as_deref().is_none_or(|s| s == scope)
            && self.kind_matches(kind)
            && match (self.clock, clock) {
                (Some((lo, hi)), Some(c)) => lo <= c && c <= hi,
                _ => true,
            }
            && self.tags.iter().all(|t| tags.contains(&t.as_str()))
    }

    /// A stable, injective name of every filter, bound into durable cursor checkpoints.
    ///
    /// Durable checkpoints on disk carry it, so the identity of a region must never change
    /// between versions. An exact entity is written `entity==name`: names cannot hold `=`,
    /// so no namespace filter's identity can start that way. Tags add a last field
    /// `|tags=a,b` (sorted; absent without tags, so older identities are unchanged). A union
    /// is `any=<n>` followed by its members' identities, each opening with its `entity=`
    /// field, joined by `|`.
    pub fn checkpoint_identity(&self) -> String {
        if !self.any_of.is_empty() {
            let mut out = format!("any={}", self.any_of.len());
            for member in &self.any_of {
                out.push('|');
                out.push_str(&member.checkpoint_identity());
            }
            return out;
        }
        let mut out = String::from("entity=");
        match &self.entity {
            None => out.push('*'),
            Some(entity) => {
                if self.entity_exact {
                    out.push('=');
                }
                escape(entity, &mut out);
            }
        }
        out.push_str("|scope=");
        match &self.scope {
            Some(s) => escape(s, &mut out),
            None => out.push('*'),
        }
        out.push_str("|kind=");
        match &self.kinds {
            KindFilter::Any => out.push('*'),
            KindFilter::Exact(set) => {
                for (i, kind) in set.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape(kind, &mut out);
                }
            }
            KindFilter::Prefix(prefix) => {
                escape(prefix, &mut out);
                out.push('*');
            }
        }
        out.push_str("|clock=");
        match self.clock {
            Some((lo, hi)) => {
                let _ = write!(out, "{lo}..{hi}");
            }
            None => out.push('*'),
        }
        for (i, tag) in self.tags.iter().enumerate() {
            out.push_str(if i == 0 { "|tags=" } else { "," });
            escape(tag, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_prefix_is_namespace_aware() {
        let r = Region::all().with_entity("alice").unwrap();
        assert!(r.matches("alice", "s", "k", None, &[]));
        assert!(r.matches("alice:x", "s", "k", None, &[]));
        assert!(!r.matches("alice2", "s", "k", None, &[]));
        assert!(!r.matches("ali", "s", "k", None, &[]));
    }

    #[test]
    fn exact_entity_matches_only_itself() {
        let r = Region::all().with_exact_entity("alice").unwrap();
        assert!(r.matches("alice", "s", "k", None, &[]));
        assert!(!r.matches("alice:x", "s", "k", None, &[]));
        assert!(!r.matches("alice2", "s", "k", None, &[]));
        assert!(matches!(Region::all().with_exact_entity("a|b"), Err(Error::InvalidRegion(_))));
    }

    #[test]
    fn exact_and_namespace_identities_differ() {
        let exact = Region::all().with_exact_entity("alice").unwrap();
        assert_eq!(exact.checkpoint_identity(), "entity==alice|scope=*|kind=*|clock=*");
        let prefix = Region::all().with_entity("alice").unwrap();
        assert_eq!(prefix.checkpoint_identity(), "entity=alice|scope=*|kind=*|clock=*");
        assert_ne!(exact, prefix);
    }

    #[test]
    fn identity_names_every_filter() {
        assert_eq!(Region::all().checkpoint_identity(), "entity=*|scope=*|kind=*|clock=*");
        let r = Region::all().with_entity("acct:1").unwrap();
        assert_eq!(r.checkpoint_identity(), "entity=acct:1|scope=*|kind=*|clock=*");
        let star = Region::all().with_entity("*").unwrap();
        assert_ne!(star.checkpoint_identity(), Region::all().checkpoint_identity());
        let two = Region::all().with_kinds(&["a", "b"]).unwrap();
        let comma = Region::all().with_kinds(&["a,b"]).unwrap();
        assert_ne!(two.checkpoint_identity(), comma.checkpoint_identity());
        let prefix = Region::all().with_kind_prefix("a").unwrap();
        let exact = Region::all().with_kinds(&["a*"]).unwrap();
        assert_ne!(prefix.checkpoint_identity(), exact.checkpoint_identity());
    }

    #[test]
    fn inverted_clock_range_is_refused() {
        assert!(matches!(Region::all().with_clock_range(5, 4), Err(Error::InvalidRegion(_))));
        let r = Region::all().with_clock_range(2, 3).unwrap();
        assert!(r.matches("e", "s", "k", Some(2), &[]) && !r.matches("e", "s", "k", Some(4), &[]));
    }

    #[test]
    fn tags_are_required_together_and_named_last() {
        let r = Region::all().with_kinds(&["k"]).unwrap().with_tags(&["b|c", "a"]).unwrap();
        assert!(r.matches("e", "s", "k", None, &["x", "a", "b|c"]));
        assert!(!r.matches("e", "s", "k", None, &["a"]));
        assert_eq!(r.checkpoint_identity(), "entity=*|scope=*|kind=k|clock=*|tags=a,b%7Cc");
        let more = r.clone().with_tags(&["d"]).unwrap();
        assert!(more.tags.len() == 3 && more != r);
        assert_eq!(Region::all().with_tags::<&str>(&[]).unwrap(), Region::all());
        assert!(matches!(Region::all().with_tags(&[""]), Err(Error::InvalidTag(_))));
        let comma = Region::all().with_tags(&["a,b"]).unwrap();
        let two = Region::all().with_tags(&["a", "b"]).unwrap();
        assert_ne!(comma.checkpoint_identity(), two.checkpoint_identity());
    }

    #[test]
    fn unions_are_flat_sorted_and_match_any_member() {
        let a = Region::all().with_tags(&["a"]).unwrap();
        let b = Region::all().with_kinds(&["k"]).unwrap();
        let ab = Region::any_of([a.clone(), b.clone()]).unwrap();
        assert_eq!(ab, Region::any_of([b.clone(), a.clone(), a.clone()]).unwrap());
        assert_eq!(Region::any_of([ab.clone(), a.clone()]).unwrap(), ab);
        assert_eq!(Region::any_of([a.clone()]).unwrap(), a);
        assert!(matches!(Region::any_of([]), Err(Error::InvalidRegion(_))));
        assert!(ab.matches("e", "s", "other", None, &["a"]) && ab.matches("e", "s", "k", None, &[]));
        assert!(!ab.matches("e", "s", "other", None, &[]));
        assert_eq!(
            ab.checkpoint_identity(),
            "any=2|entity=*|scope=*|kind=*|clock=*|tags=a|entity=*|scope=*|kind=k|clock=*"
        );
        assert!(matches!(ab.clone().with_scope("s"), Err(Error::InvalidRegion(_))));
        assert!(matches!(ab.with_tags(&["t"]), Err(Error::InvalidRegion(_))));
    }
}
