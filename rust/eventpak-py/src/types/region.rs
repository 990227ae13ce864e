//! `Region`: the read predicate of queries, cursors and workers.

use eventpak_core::Region as CoreRegion;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::{bool_arg, check_coordinate, coordinate_parts, sequence_items};
use crate::args::{int_arg, opt_int_arg, type_name};
use crate::errors::{to_py, InvalidRegionType};
use crate::names::{tag_list, KindName, RegionName};

/// The read predicate of queries, cursors and workers. Builders return new regions.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Region {
    pub inner: CoreRegion,
}

pub(super) fn build(r: eventpak_core::Result<CoreRegion>) -> PyResult<Region> {
    r.map(|inner| Region { inner }).map_err(|e| to_py(e, ""))
}

#[pymethods]
impl Region {
    /// The region matching every event.
    #[staticmethod]
    fn all() -> Self {
        Region { inner: CoreRegion::all() }
    }

    /// Events of entity `name` and of entities in its namespace (`name:...`); with
    /// `exact=True`, of that entity only.
    #[staticmethod]
    #[pyo3(signature = (name, *, exact = None), text_signature = "(name, *, exact=False)")]
    fn entity(name: &Bound<'_, PyAny>, exact: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let name = RegionName::named(name, "name")?.0;
        let exact = exact.map(|e| bool_arg(e, "exact")).transpose()?.unwrap_or(false);
        let region = CoreRegion::all();
        build(if exact { region.with_exact_entity(&name) } else { region.with_entity(&name) })
    }

    /// The union of `regions` (a sequence of `Region`): the events any of them matches.
    #[staticmethod]
    fn any_of(regions: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Some(items) = sequence_items(regions)? else {
            let shown = type_name(regions);
            return Err(PyTypeError::new_err(format!(
                "regions must be a sequence of ep.Region, not {shown}"
            )));
        };
        let members = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.downcast::<Region>().map(|r| r.get().inner.clone()).map_err(|_| {
                    let shown = type_name(item);
                    PyTypeError::new_err(format!("regions[{i}] must be an ep.Region, not {shown}"))
                })
            })
            .collect::<PyResult<Vec<CoreRegion>>>()?;
        build(CoreRegion::any_of(members))
    }

    /// Events of one scope.
    #[staticmethod]
    fn scope(scope: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(CoreRegion::all().with_scope(&RegionName::named(scope, "scope")?.0))
    }

    /// This region restricted to one scope.
    fn with_scope(&self, scope: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(self.inner.clone().with_scope(&RegionName::named(scope, "scope")?.0))
    }

    /// This region accepting exactly one kind.
    fn with_kind(&self, kind: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(self.inner.clone().with_kinds(&[RegionName::named(kind, "kind")?.0]))
    }

    /// This region accepting exactly these kinds (a sequence of str).
    fn with_kinds(&self, kinds: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Some(items) = sequence_items(kinds)? else {
            let shown = type_name(kinds);
            return Err(InvalidRegionType::new_err((format!(
                "kinds must be a sequence of str, not {shown}"
            ),)));
        };
        let kinds = items
            .iter()
            .enumerate()
            .map(|(i, kind)| RegionName::named(kind, &format!("kinds[{i}]")).map(|k| k.0))
            .collect::<PyResult<Vec<String>>>()?;
        build(self.inner.clone().with_kinds(&kinds))
    }

    /// This region accepting kinds that start with `prefix`.
    fn with_kind_prefix(&self, prefix: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(self.inner.clone().with_kind_prefix(&RegionName::named(prefix, "prefix")?.0))
    }

    /// This region restricted to entity clocks `start..=end`.
    fn with_clock_range(&self, start: &Bound<'_, PyAny>, end: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(self.inner.clone().with_clock_range(int_arg(start, "start")?, int_arg(end, "end")?))
    }

    /// This region restricted to events carrying every one of `tags` (a sequence of str),
    /// besides the tags it already requires.
    fn with_tags(&self, tags: &Bound<'_, PyAny>) -> PyResult<Self> {
        build(self.inner.clone().with_tags(&tag_list(tags, "tags")?))
    }

    /// True when an event at `coord` with `kind` and `tags` matches; the clock range is
    /// checked only when `entity_sequence` is given.
    #[pyo3(signature = (coord, kind, entity_sequence=None, *, tags=None))]
    fn matches(
        &self,
        coord: &Bound<'_, PyAny>,
        kind: &Bound<'_, PyAny>,
        entity_sequence: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (entity, scope) = coordinate_parts(coord)?;
        let kind = KindName::named(kind, "kind")?.0;
        // A name no event can have is a mistake in the call, not a region that misses it;
        // the kinds the store writes itself are names events do have.
        check_coordinate(&entity, &scope)?;
        eventpak_core::validate_kind_as(&kind, true).map_err(|e| to_py(e, ""))?;
        let clock = opt_int_arg(entity_sequence, "entity_sequence")?;
        let tags = tags.map(|t| tag_list(t, "tags")).transpose()?.unwrap_or_default();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Ok(self.inner.matches(&entity, &scope, &kind, clock, &tags))
    }

    /// The tags every matching event carries, sorted (empty for a union).
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.inner.tags.iter().cloned().collect()
    }

    /// The members of a union, in the order of their identities; empty for a region that
    /// is not one.
    #[getter]
    fn members(&self) -> Vec<Region> {
        self.inner.any_of.iter().map(|inner| Region { inner: inner.clone() }).collect()
    }

    /// Stable, injective name of every filter; bound into durable cursor checkpoints.
    #[getter]
    fn checkpoint_identity(&self) -> String {
        self.inner.checkpoint_identity()
    }

    fn __repr__(&self) -> String {
        format!("Region({:?})", self.inner.checkpoint_identity())
    }
}
