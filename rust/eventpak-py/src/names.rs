//! Name arguments (entities, scopes, kinds, region filters, checkpoint ids). A value that is
//! not a `str` raises a `TypeError` naming the argument ("kind must be a str, not int"). A
//! Python str that is not valid UTF-8 (lone surrogates, e.g. from `os.fsdecode` of bad
//! bytes) is refused with the typed error of its kind of name, like any other bad name.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::args::type_name;
use crate::errors::{InvalidCheckpointId, InvalidCoordinate, InvalidKind, InvalidRegion, InvalidTag};

macro_rules! name_arg {
    ($(#[$doc:meta])* $name:ident => $error:ident, $label:literal) => {
        $(#[$doc])*
        pub struct $name(pub String);

        impl $name {
            /// Reads argument `label` (the name messages give it).
            pub fn named(ob: &Bound<'_, PyAny>, label: &str) -> PyResult<Self> {
                let Ok(text) = ob.downcast::<PyString>() else {
                    return Err(PyTypeError::new_err(format!("{label} must be a str, not {}", type_name(ob))));
                };
                match text.to_str() {
                    Ok(s) => Ok($name(s.to_owned())),
                    Err(_) => {
                        let shown = text.to_string_lossy().into_owned();
                        Err($error::new_err((format!("{shown:?} is not valid UTF-8 text"),)))
                    }
                }
            }
        }

        /// Extraction as a function argument: messages call it by its usual label.
        impl<'py> FromPyObject<'py> for $name {
            fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
                Self::named(ob, $label)
            }
        }
    };
}

name_arg!(
    /// An entity or scope.
    CoordinatePart => InvalidCoordinate, "entity"
);
name_arg!(
    /// An event kind.
    KindName => InvalidKind, "kind"
);
name_arg!(
    /// A region filter value.
    RegionName => InvalidRegion, "region filter"
);
name_arg!(
    /// A cursor checkpoint id.
    CheckpointId => InvalidCheckpointId, "checkpoint_id"
);
name_arg!(
    /// A tag (or a tracking name, which follows the same rules).
    TagName => InvalidTag, "tag"
);

/// Reads a tags argument: a list, tuple or other sequence of str (not a bare str), each
/// read as a [`TagName`] labelled `label[i]`.
pub fn tag_list(tags: &Bound<'_, PyAny>, label: &str) -> PyResult<Vec<String>> {
    let Some(items) = crate::types::sequence_items(tags)? else {
        let shown = type_name(tags);
        return Err(PyTypeError::new_err(format!("{label} must be a sequence of str, not {shown}")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, tag)| TagName::named(tag, &format!("{label}[{i}]")).map(|t| t.0))
        .collect()
}

/// Raises `ep.InvalidKind` unless `kind` may be appended (naming rules, no reserved
/// `eventpak.` prefix): the rule `@ep.event_type` and `ep.Upcasters` apply to their kinds.
#[pyfunction]
pub fn validate_kind(kind: KindName) -> PyResult<()> {
    eventpak_core::validate_kind(&kind.0).map_err(|e| crate::errors::to_py(e, ""))
}
