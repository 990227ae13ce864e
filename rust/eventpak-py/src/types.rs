//! Value types: `Coordinate` and `Region`.

use eventpak_core::validate_coordinate_part;
use eventpak_core::Region as CoreRegion;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::to_py;
use crate::names::{CoordinatePart, KindName, RegionName};

/// The address of a stream: an entity (hash chain and clock) and a scope (isolation label).
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Coordinate {
    pub entity: String,
    pub scope: String,
}

#[pymethods]
impl Coordinate {
    #[new]
    fn new(entity: CoordinatePart, scope: CoordinatePart) -> PyResult<Self> {
        let (entity, scope) = (entity.0, scope.0);
        validate_coordinate_part("entity", &entity)
            .and_then(|()| validate_coordinate_part("scope", &scope))
            .map_err(|e| to_py(e, ""))?;
        Ok(Coordinate { entity, scope })
    }

    /// The entity part.
    #[getter]
    fn entity(&self) -> &str {
        &self.entity
    }

    /// The scope part.
    #[getter]
    fn scope(&self) -> &str {
        &self.scope
    }

    fn __repr__(&self) -> String {
        format!("Coordinate({:?}, {:?})", self.entity, self.scope)
    }

    fn __getnewargs__(&self) -> (String, String) {
        (self.entity.clone(), self.scope.clone())
    }
}

/// Reads a coordinate argument: a `Coordinate` or an `(entity, scope)` tuple.
pub fn coordinate_parts(obj: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    if let Ok(c) = obj.downcast::<Coordinate>() {
        let c = c.get();
        return Ok((c.entity.clone(), c.scope.clone()));
    }
    if let Ok(t) = obj.downcast::<PyTuple>() {
        if t.len() == 2 {
            let part = |i| t.get_item(i)?.extract::<CoordinatePart>().map(|p| p.0);
            return Ok((part(0)?, part(1)?));
        }
    }
    Err(pyo3::exceptions::PyTypeError::new_err("coord must be an ep.Coordinate or an (entity, scope) tuple"))
}

/// The read predicate of queries, cursors and workers. Builders return new regions.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Region {
    pub inner: CoreRegion,
}

fn build(r: eventpak_core::Result<CoreRegion>) -> PyResult<Region> {
    r.map(|inner| Region { inner }).map_err(|e| to_py(e, ""))
}

#[pymethods]
impl Region {
    /// The region matching every event.
    #[staticmethod]
    fn all() -> Self {
        Region { inner: CoreRegion::all() }
    }

    /// Events of `prefix` and of entities in its namespace (`prefix:...`).
    #[staticmethod]
    fn entity(prefix: RegionName) -> PyResult<Self> {
        build(CoreRegion::all().with_entity(&prefix.0))
    }

    /// Events of one scope.
    #[staticmethod]
    fn scope(scope: RegionName) -> PyResult<Self> {
        build(CoreRegion::all().with_scope(&scope.0))
    }

    /// This region restricted to one scope.
    fn with_scope(&self, scope: RegionName) -> PyResult<Self> {
        build(self.inner.clone().with_scope(&scope.0))
    }

    /// This region accepting exactly one kind.
    fn with_kind(&self, kind: RegionName) -> PyResult<Self> {
        build(self.inner.clone().with_kinds(&[kind.0]))
    }

    /// This region accepting exactly these kinds.
    fn with_kinds(&self, kinds: Vec<RegionName>) -> PyResult<Self> {
        let kinds: Vec<String> = kinds.into_iter().map(|k| k.0).collect();
        build(self.inner.clone().with_kinds(&kinds))
    }

    /// This region accepting kinds that start with `prefix`.
    fn with_kind_prefix(&self, prefix: RegionName) -> PyResult<Self> {
        build(self.inner.clone().with_kind_prefix(&prefix.0))
    }

    /// This region restricted to entity clocks `start..=end`.
    fn with_clock_range(&self, start: u64, end: u64) -> PyResult<Self> {
        build(self.inner.clone().with_clock_range(start, end))
    }

    /// True when an event at `coord` with `kind` matches; the clock range is checked only
    /// when `entity_sequence` is given.
    #[pyo3(signature = (coord, kind, entity_sequence=None))]
    fn matches(
        &self,
        coord: &Bound<'_, PyAny>,
        kind: KindName,
        entity_sequence: Option<u64>,
    ) -> PyResult<bool> {
        let (entity, scope) = coordinate_parts(coord)?;
        Ok(self.inner.matches(&entity, &scope, &kind.0, entity_sequence))
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
