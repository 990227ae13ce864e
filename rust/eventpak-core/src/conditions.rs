//! What an append may carry besides its events: a condition that must still hold when it
//! commits, and a tracking record that commits with it (`docs/design.md`, "Tags,
//! conditions and tracking").

use crate::error::{Error, Result};
use crate::region::Region;
use crate::tags::label_problem;

/// Fails an append when a visible event matching `fail_if_events_match` was committed
/// after `after` (at all, when `after` is `None`). The check and the append are one atomic
/// step, across processes sharing the data dir too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppendCondition {
    /// The events that must not exist after `after`.
    pub fail_if_events_match: Region,
    /// A global sequence: only events strictly after it count (`None`: every event).
    pub after: Option<u64>,
}

/// A consumer's position in its input (`name` is typically the upstream it reads),
/// recorded atomically with the batch that processed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tracking {
    /// The tracking name: 1-255 bytes of UTF-8 without control bytes.
    pub name: String,
    /// The position reached; it must be past the one recorded before for `name`.
    pub position: u64,
}

impl Tracking {
    /// A tracking record, its name checked ([`Error::InvalidTrackingName`]).
    pub fn new(name: &str, position: u64) -> Result<Self> {
        validate_tracking_name(name)?;
        Ok(Tracking { name: name.to_owned(), position })
    }
}

/// Checks a tracking name: the rules of a tag.
pub fn validate_tracking_name(name: &str) -> Result<()> {
    match label_problem(name) {
        Some(why) => Err(Error::InvalidTrackingName(format!("{name:?} {why}"))),
        None => Ok(()),
    }
}

/// The condition and tracking record of one append (both optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitGuards {
    /// Checked atomically with the append.
    pub condition: Option<AppendCondition>,
    /// Written atomically with the append.
    pub tracking: Option<Tracking>,
}

impl CommitGuards {
    /// Guards with neither a condition nor a tracking record.
    pub fn none() -> Self {
        CommitGuards::default()
    }

    /// True when there is nothing to check or record.
    pub fn is_empty(&self) -> bool {
        self.condition.is_none() && self.tracking.is_none()
    }
}
