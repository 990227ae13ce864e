//! Name arguments (entities, scopes, kinds, region filters, checkpoint ids, tags). A value
//! that is not a `str` raises the name's typed error in a form that is a `TypeError` too
//! (`eventpak.errors.InvalidKindType`, "kind must be a str, not int"), so both the contract's
//! "bad input gets its typed error" and Python's "a wrong type is a `TypeError`" hold. A
//! Python str that is not valid UTF-8 (lone surrogates, e.g. from `os.fsdecode` of bad
//! bytes) is refused with the typed error of its kind of name, like any other bad name.

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::args::type_name;
use crate::errors::{
    InvalidCheckpointId, InvalidCheckpointIdType, InvalidCoordinate, InvalidCoordinateType, InvalidKind,
    InvalidKindType, InvalidRegion, InvalidRegionType, InvalidTag, InvalidTagType,
};

/// The text of a Python str, or why it has none: a str holding a lone surrogate is not
/// valid UTF-8 (the reason shows it with the surrogate replaced).
pub fn utf8_text<'a>(text: &'a Bound<'_, PyString>) -> Result<&'a str, String> {
    text.to_str().map_err(|_| format!("{:?} is not valid UTF-8 text", text.to_string_lossy()))
}

macro_rules! name_arg {
    ($(#[$doc:meta])* $name:ident => $error:ident / $type_error:ident, $label:literal) => {
        $(#[$doc])*
        pub struct $name(pub String);

        impl $name {
            /// Reads argument `label` (the name messages give it).
            pub fn named(ob: &Bound<'_, PyAny>, label: &str) -> PyResult<Self> {
                let Ok(text) = ob.downcast::<PyString>() else {
                    return Err($type_error::new_err((format!("{label} must be a str, not {}", type_name(ob)),)));
                };
                utf8_text(text).map(|s| $name(s.to_owned())).map_err(|reason| $error::new_err((reason,)))
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
    CoordinatePart => InvalidCoordinate / InvalidCoordinateType, "entity"
);
name_arg!(
    /// An event kind.
    KindName => InvalidKind / InvalidKindType, "kind"
);
name_arg!(
    /// A region filter value.
    RegionName => InvalidRegion / InvalidRegionType, "region filter"
);
name_arg!(
    /// A cursor checkpoint id.
    CheckpointId => InvalidCheckpointId / InvalidCheckpointIdType, "checkpoint_id"
);
name_arg!(
    /// A tag (or a tracking name, which follows the same rules).
    TagName => InvalidTag / InvalidTagType, "tag"
);

/// Reads a tags argument: a list, tuple or other sequence of str (not a bare str), each
/// read as a [`TagName`] labelled `label[i]`.
pub fn tag_list(tags: &Bound<'_, PyAny>, label: &str) -> PyResult<Vec<String>> {
    let Some(items) = crate::types::sequence_items(tags)? else {
        let shown = type_name(tags);
        return Err(InvalidTagType::new_err((format!("{label} must be a sequence of str, not {shown}"),)));
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
