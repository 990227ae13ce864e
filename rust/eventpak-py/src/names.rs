//! Name arguments (entities, scopes, kinds, region filters, checkpoint ids). A Python str
//! that is not valid UTF-8 (lone surrogates, e.g. from `os.fsdecode` of bad bytes) is
//! refused with the typed error of its kind of name, like any other bad name.

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::{InvalidCheckpointId, InvalidCoordinate, InvalidKind, InvalidRegion};

macro_rules! name_arg {
    ($(#[$doc:meta])* $name:ident => $error:ident) => {
        $(#[$doc])*
        pub struct $name(pub String);

        impl<'py> FromPyObject<'py> for $name {
            fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
                let text = ob.downcast::<PyString>()?;
                match text.to_str() {
                    Ok(s) => Ok($name(s.to_owned())),
                    Err(_) => {
                        let shown = text.to_string_lossy().into_owned();
                        Err($error::new_err((format!("{shown:?} is not valid UTF-8 text"),)))
                    }
                }
            }
        }
    };
}

name_arg!(
    /// An entity or scope.
    CoordinatePart => InvalidCoordinate
);
name_arg!(
    /// An event kind.
    KindName => InvalidKind
);
name_arg!(
    /// A region filter value.
    RegionName => InvalidRegion
);
name_arg!(
    /// A cursor checkpoint id.
    CheckpointId => InvalidCheckpointId
);
