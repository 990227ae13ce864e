//! Value types: `Coordinate` and `Region`, and the readers of their arguments.

mod region;
mod region_pickle;

pub use region::Region;

use eventpak_core::validate_coordinate_part;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyIterator, PyList, PySequence, PyString, PyTuple};

use crate::args::type_name;
use crate::errors::{to_py, InvalidCoordinateType};
use crate::names::CoordinatePart;

/// The address of a stream: an entity (hash chain and clock) and a scope (isolation label).
/// It unpacks like the `(entity, scope)` pair it stands for.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Coordinate {
    pub entity: String,
    pub scope: String,
}

impl Coordinate {
    fn pair<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [&self.entity, &self.scope])
    }
}

#[pymethods]
impl Coordinate {
    #[new]
    fn new(entity: &Bound<'_, PyAny>, scope: &Bound<'_, PyAny>) -> PyResult<Self> {
        let entity = CoordinatePart::named(entity, "entity")?.0;
        let scope = CoordinatePart::named(scope, "scope")?.0;
        check_coordinate(&entity, &scope)?;
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

    fn __len__(&self) -> usize {
        2
    }

    /// `coord[0]` is the entity, `coord[1]` the scope; indexes and slices as on a tuple.
    fn __getitem__<'py>(&self, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.pair(index.py())?.as_any().get_item(index)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.pair(py)?.as_any().try_iter()
    }

    fn __repr__(&self) -> String {
        format!("Coordinate({:?}, {:?})", self.entity, self.scope)
    }

    fn __getnewargs__(&self) -> (String, String) {
        (self.entity.clone(), self.scope.clone())
    }
}

/// The items of a sequence argument: a list, a tuple or another `collections.abc.Sequence`,
/// but not a str or bytes (sequences too, whose items would be read as separate names).
/// `None` for anything else.
pub fn sequence_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    if let Ok(list) = obj.downcast::<PyList>() {
        return Ok(Some(list.iter().collect()));
    }
    if let Ok(tuple) = obj.downcast::<PyTuple>() {
        return Ok(Some(tuple.iter().collect()));
    }
    if obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
    {
        return Ok(None);
    }
    match obj.downcast::<PySequence>() {
        Ok(seq) => Ok(Some(seq.try_iter()?.collect::<PyResult<_>>()?)),
        Err(_) => Ok(None),
    }
}

/// Checks an entity and a scope against the coordinate naming rules (`InvalidCoordinate`).
pub fn check_coordinate(entity: &str, scope: &str) -> PyResult<()> {
    validate_coordinate_part("entity", entity)
        .and_then(|()| validate_coordinate_part("scope", scope))
        .map_err(|e| to_py(e, ""))
}

/// Reads a coordinate argument: a `Coordinate` or an `(entity, scope)` pair of str (a
/// tuple, a list or another sequence).
pub fn coordinate_parts(obj: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    if let Ok(c) = obj.downcast::<Coordinate>() {
        let c = c.get();
        return Ok((c.entity.clone(), c.scope.clone()));
    }
    let expected = "coord must be an ep.Coordinate or an (entity, scope) pair";
    match sequence_items(obj)? {
        Some(items) if items.len() == 2 => Ok((
            CoordinatePart::named(&items[0], "coord entity")?.0,
            CoordinatePart::named(&items[1], "coord scope")?.0,
        )),
        Some(items) => Err(InvalidCoordinateType::new_err((format!(
            "{expected}, not a {} of length {}",
            type_name(obj),
            items.len()
        ),))),
        None => Err(InvalidCoordinateType::new_err((format!("{expected}, not {}", type_name(obj)),))),
    }
}

/// Reads a bool argument strictly: `1` or `None` is not a flag.
pub fn bool_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    match value.downcast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!("{name} must be a bool, not {}", type_name(value)))),
    }
}
