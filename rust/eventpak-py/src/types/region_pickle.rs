//! Pickling `Region`: its filters as plain values, rebuilt through the builders.

use eventpak_core::{KindFilter, Region as CoreRegion};
use pyo3::prelude::*;
use pyo3::types::PyType;

use super::region::{build, Region};

/// What pickling keeps of a region: entity, exact flag, scope, exact kinds, kind prefix,
/// clock range, tags and union members. A region is rebuilt from it through the builders,
/// which check it again.
type State = (
    Option<String>,
    bool,
    Option<String>,
    Option<Vec<String>>,
    Option<String>,
    Option<(u64, u64)>,
    Vec<String>,
    Vec<Region>,
);

#[pymethods]
impl Region {
    /// Pickles as `Region._restore(*state)`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, State)> {
        let r = &slf.get().inner;
        let (kinds, prefix) = match &r.kinds {
            KindFilter::Any => (None, None),
            KindFilter::Exact(set) => (Some(set.iter().cloned().collect()), None),
            KindFilter::Prefix(prefix) => (None, Some(prefix.clone())),
        };
        let tags = r.tags.iter().cloned().collect();
        let members = r.any_of.iter().map(|inner| Region { inner: inner.clone() }).collect();
        let state =
            (r.entity.clone(), r.entity_exact, r.scope.clone(), kinds, prefix, r.clock, tags, members);
        Ok((slf.get_type().getattr("_restore")?, state))
    }

    /// Rebuilds a pickled region (a pickle made before tags and unions has neither).
    #[classmethod]
    #[pyo3(signature = (entity, entity_exact, scope, kinds, kind_prefix, clock, tags=Vec::new(), members=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn _restore(
        _cls: &Bound<'_, PyType>,
        entity: Option<String>,
        entity_exact: bool,
        scope: Option<String>,
        kinds: Option<Vec<String>>,
        kind_prefix: Option<String>,
        clock: Option<(u64, u64)>,
        tags: Vec<String>,
        members: Vec<Region>,
    ) -> PyResult<Self> {
        if !members.is_empty() {
            return build(CoreRegion::any_of(members.into_iter().map(|m| m.inner)));
        }
        let rebuilt = || {
            let mut r = CoreRegion::all();
            if let Some(entity) = &entity {
                r = if entity_exact { r.with_exact_entity(entity) } else { r.with_entity(entity) }?;
            }
            if let Some(scope) = &scope {
                r = r.with_scope(scope)?;
            }
            if let Some(kinds) = &kinds {
                r = r.with_kinds(kinds)?;
            }
            if let Some(prefix) = &kind_prefix {
                r = r.with_kind_prefix(prefix)?;
            }
            if let Some((start, end)) = clock {
                r = r.with_clock_range(start, end)?;
            }
            r.with_tags(&tags)
        };
        build(rebuilt())
    }
}
